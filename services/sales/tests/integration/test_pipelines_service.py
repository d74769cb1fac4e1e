"""Pipelines and stage moves in the sales service, in process against real PostgreSQL and NATS
JetStream: pipelines created and replaced under their etag, deals moved stage by stage with their
history, required fields, closes into the won and lost stages, DealStageChanged on the bus, and
migration 0002's backfill of the deals already there."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import grpc
import nats
import pytest
from alembic import command
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from nats.errors import TimeoutError as NatsTimeoutError
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2 as leads_events
from crm.sales.v1 import deals_pb2, pipelines_pb2
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit import caller
from crm_kit.migrations import alembic_config
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, publish_event, violated_fields
from crm_sales.main import MIGRATIONS_DIR

if TYPE_CHECKING:
    from conftest import Sales  # the fixture's type (conftest.py)

pytestmark = pytest.mark.integration

OPEN, WON, LOST = pipelines_pb2.STAGE_OUTCOME_OPEN, pipelines_pb2.STAGE_OUTCOME_WON, pipelines_pb2.STAGE_OUTCOME_LOST


def reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def furniture() -> pipelines_pb2.Pipeline:
    return pipelines_pb2.Pipeline(
        name="ריהוט לעסקים",
        product_line="office",
        active=True,
        stages=[
            pipelines_pb2.Stage(name="ליד חם", probability=20, outcome=OPEN),
            pipelines_pb2.Stage(name="הצעת מחיר", probability=60, outcome=OPEN, required_fields=["amount"]),
            pipelines_pb2.Stage(
                name="משא ומתן", probability=80, outcome=OPEN, required_fields=["amount", "expected_close_date"]
            ),
            pipelines_pb2.Stage(name="נסגר בהצלחה", probability=100, outcome=WON),
            pipelines_pb2.Stage(name="אבד", probability=0, outcome=LOST),
        ],
    )


async def open_deal(sales: Sales, pipeline_id: str = "") -> deals_pb2.Deal:
    request = deals_pb2.OpenDealRequest(
        deal_id=str(uuid.uuid4()),
        lead_id=f"lead-{uuid.uuid4().hex[:8]}",
        title="ספה",
        owner_rep_id="rep-dana",
        owner_team_id="team-media",
        pipeline_id=pipeline_id,
    )
    return (await sales.deals.OpenDeal(request)).deal


async def sql(sales: Sales, statement: str, **params: Any) -> list[Any]:
    async with sales.service.db.engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def stage_events(nats_url: str, deal_id: str) -> list[sales_events.DealStageChanged]:
    nc = await nats.connect(nats_url)
    try:
        subject = "crm.sales.deal_stage_changed"
        sub = await nc.jetstream().pull_subscribe(subject, durable=f"t-{uuid.uuid4().hex[:8]}")
        found: list[sales_events.DealStageChanged] = []
        while True:
            try:
                found += [sales_events.DealStageChanged.FromString(m.data) for m in await sub.fetch(50, timeout=0.5)]
            except (NatsTimeoutError, TimeoutError):
                return [e for e in found if e.deal_id == deal_id]
    finally:
        await nc.close()


async def test_a_pipeline_is_created_once_per_request_and_changed_only_under_its_etag(sales: Sales) -> None:
    create = pipelines_pb2.CreatePipelineRequest(pipeline=furniture(), request_id="req-furniture")
    with caller.acting_as("manager-noa", "req-furniture"):
        made = (await sales.pipelines.CreatePipeline(create)).pipeline
        again = (await sales.pipelines.CreatePipeline(create)).pipeline
    assert again == made and made.product_line == "office" and made.etag
    assert (made.stages[0].name, made.stages[0].probability) == ("ליד חם", 20)
    listed = (await sales.pipelines.ListPipelines(pipelines_pb2.ListPipelinesRequest())).pipelines
    assert [p.id for p in listed] == ["default", made.id]
    assert [s.id for s in listed[0].stages] == [
        "default-new",
        "default-qualified",
        "default-proposal",
        "default-negotiation",
        "default-won",
        "default-lost",
    ]

    # Rename and insert a stage, keeping the others by id.
    stages = list(made.stages)
    demo = pipelines_pb2.Stage(name="הדגמה", probability=40, outcome=OPEN)
    changed = pipelines_pb2.Pipeline(id=made.id, name="ריהוט משרדי", stages=[stages[0], demo, *stages[1:]])
    update = pipelines_pb2.UpdatePipelineRequest(
        pipeline=changed, update_mask=FieldMask(paths=["name", "stages"]), etag=made.etag
    )
    updated = (await sales.pipelines.UpdatePipeline(update)).pipeline
    assert updated.name == "ריהוט משרדי" and updated.etag != made.etag
    assert [s.name for s in updated.stages][:3] == ["ליד חם", "הדגמה", "הצעת מחיר"]
    assert updated.stages[0].id == made.stages[0].id

    # The same change on the old etag is refused and changes nothing.
    stale = pipelines_pb2.UpdatePipelineRequest(
        pipeline=pipelines_pb2.Pipeline(id=made.id, name="other"), update_mask=FieldMask(paths=["name"]), etag=made.etag
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await sales.pipelines.UpdatePipeline(stale)
    assert refused.value.code() == grpc.StatusCode.ABORTED and reason(refused.value) == "STALE_ETAG"
    assert (
        await sales.pipelines.GetPipeline(pipelines_pb2.GetPipelineRequest(pipeline_id=made.id))
    ).pipeline == updated

    # A bad stage list names the field.
    bad = pipelines_pb2.Pipeline(id=made.id, stages=[pipelines_pb2.Stage(name="x", probability=120, outcome=OPEN)])
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await sales.pipelines.UpdatePipeline(
            pipelines_pb2.UpdatePipelineRequest(pipeline=bad, update_mask=FieldMask(paths=["stages"]))
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"stages[0].probability", "stages"} <= violated_fields(invalid.value)
    audit = await sql(sales, "SELECT action, actor FROM audit_log WHERE record_id = :id ORDER BY id", id=made.id)
    assert [tuple(a) for a in audit] == [("sales.CreatePipeline", "manager-noa"), ("sales.UpdatePipeline", "unknown")]


async def test_a_deal_moves_stage_by_stage_once_its_required_fields_are_set(sales: Sales) -> None:
    pipeline = (
        await sales.pipelines.CreatePipeline(pipelines_pb2.CreatePipelineRequest(pipeline=furniture()))
    ).pipeline
    hot, quote, negotiation = (s.id for s in pipeline.stages[:3])
    deal = await open_deal(sales, pipeline.id)
    assert (deal.pipeline_id, deal.stage_id, deal.probability) == (pipeline.id, hot, 20)
    # It sat an hour in its first stage.
    await sql(sales, "UPDATE deals SET stage_entered_at = now() - interval '1 hour' WHERE id = :id", id=deal.id)

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await sales.deals.MoveDealStage(deals_pb2.MoveDealStageRequest(deal_id=deal.id, stage_id=quote, etag=deal.etag))
    assert missing.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(missing.value) == "REQUIRED_FIELDS_MISSING" and violated_fields(missing.value) == {"amount"}

    ils = types_pb2.Money(amount_minor=1250000, currency_code="ils")
    with caller.acting_as("rep-dana", "req-amount"):
        filled = (
            await sales.deals.UpdateDeal(
                deals_pb2.UpdateDealRequest(
                    deal=deals_pb2.Deal(id=deal.id, amount=ils), update_mask=FieldMask(paths=["amount"]), etag=deal.etag
                )
            )
        ).deal
        moved = (
            await sales.deals.MoveDealStage(
                deals_pb2.MoveDealStageRequest(deal_id=deal.id, stage_id=quote, etag=filled.etag)
            )
        ).deal
    assert (filled.amount.amount_minor, filled.amount.currency_code) == (1250000, "ILS") and filled.etag != deal.etag
    assert (moved.stage_id, moved.probability) == (quote, 60) and moved.etag != filled.etag

    # A move decided on the deal before the amount was set is stale.
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await sales.deals.MoveDealStage(deals_pb2.MoveDealStageRequest(deal_id=deal.id, stage_id=hot, etag=deal.etag))
    assert stale.value.code() == grpc.StatusCode.ABORTED and reason(stale.value) == "STALE_ETAG"
    # Negotiation also needs the expected close date; a won stage is reached only by closing.
    with pytest.raises(grpc.aio.AioRpcError) as no_date:
        await sales.deals.MoveDealStage(deals_pb2.MoveDealStageRequest(deal_id=deal.id, stage_id=negotiation))
    assert violated_fields(no_date.value) == {"expected_close_date"}
    with pytest.raises(grpc.aio.AioRpcError) as to_won:
        await sales.deals.MoveDealStage(deals_pb2.MoveDealStageRequest(deal_id=deal.id, stage_id=pipeline.stages[4].id))
    assert to_won.value.code() == grpc.StatusCode.INVALID_ARGUMENT and violated_fields(to_won.value) == {"stage_id"}

    history = (await sales.deals.ListDealStageHistory(deals_pb2.ListDealStageHistoryRequest(deal_id=deal.id))).entries
    assert [(h.from_stage_id, h.to_stage_id) for h in history] == [("", hot), (hot, quote)]
    assert history[1].actor == "rep-dana" and history[1].seconds_in_previous_stage >= 3600
    [event] = await stage_events(sales.nats_url, deal.id)
    assert (event.pipeline_id, event.from_stage_id, event.to_stage_id) == (pipeline.id, hot, quote)
    assert (event.owner_rep_id, event.owner_team_id, event.amount.amount_minor) == ("rep-dana", "team-media", 1250000)
    actions = await sql(sales, "SELECT action FROM audit_log WHERE record_id = :id ORDER BY id", id=deal.id)
    assert [a for (a,) in actions] == ["sales.OpenDeal", "sales.UpdateDeal", "sales.MoveDealStage"]

    # A stage with a deal in it stays.
    kept = [s for s in pipeline.stages if s.id != quote]
    with pytest.raises(grpc.aio.AioRpcError) as occupied:
        await sales.pipelines.UpdatePipeline(
            pipelines_pb2.UpdatePipelineRequest(
                pipeline=pipelines_pb2.Pipeline(id=pipeline.id, stages=kept), update_mask=FieldMask(paths=["stages"])
            )
        )
    assert occupied.value.code() == grpc.StatusCode.FAILED_PRECONDITION and violated_fields(occupied.value) == {
        "stages"
    }


async def test_closing_lands_in_the_won_or_lost_stage_with_a_reason_from_the_list(sales: Sales) -> None:
    reasons = (await sales.pipelines.ListLostReasons(pipelines_pb2.ListLostReasonsRequest())).lost_reasons
    assert [r.code for r in reasons] == ["price", "competitor", "no_budget", "no_response", "timing", "other"]
    assert reasons[0].names == {"he": "מחיר", "en": "Price", "fa": "قیمت"}

    lost = await open_deal(sales)
    assert (lost.pipeline_id, lost.stage_id, lost.probability) == ("default", "default-new", 10)

    def close(code: str) -> deals_pb2.CloseDealRequest:
        lost_as = deals_pb2.DEAL_OUTCOME_LOST
        return deals_pb2.CloseDealRequest(
            deal_id=lost.id, outcome=lost_as, lost_reason="יקר מדי", lost_reason_code=code
        )

    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await sales.deals.CloseDeal(close("weather"))
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(unknown.value) == {"lost_reason_code"}
    closed = (await sales.deals.CloseDeal(close("price"))).deal
    assert (closed.status, closed.stage_id, closed.probability) == (deals_pb2.DEAL_STATUS_LOST, "default-lost", 0)
    assert (closed.lost_reason_code, closed.lost_reason) == ("price", "יקר מדי")

    won = await open_deal(sales)
    item = types_pb2.LineItem(
        sku="SOFA", quantity=1, unit_price=types_pb2.Money(amount_minor=459900, currency_code="ILS")
    )
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await sales.deals.CloseDeal(
            deals_pb2.CloseDealRequest(deal_id=won.id, outcome=deals_pb2.DEAL_OUTCOME_WON, items=[item], etag='"0"')
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    sold = (
        await sales.deals.CloseDeal(
            deals_pb2.CloseDealRequest(deal_id=won.id, outcome=deals_pb2.DEAL_OUTCOME_WON, items=[item], etag=won.etag)
        )
    ).deal
    assert (sold.status, sold.stage_id, sold.probability) == (deals_pb2.DEAL_STATUS_WON, "default-won", 100)
    with pytest.raises(grpc.aio.AioRpcError) as moved:
        await sales.deals.MoveDealStage(deals_pb2.MoveDealStageRequest(deal_id=won.id, stage_id="default-new"))
    assert reason(moved.value) == "DEAL_ALREADY_CLOSED"

    for deal, stage in ((lost, "default-lost"), (won, "default-won")):
        entries = (
            await sales.deals.ListDealStageHistory(deals_pb2.ListDealStageHistoryRequest(deal_id=deal.id))
        ).entries
        assert [(e.from_stage_id, e.to_stage_id) for e in entries] == [("", "default-new"), ("default-new", stage)]
        [event] = await stage_events(sales.nats_url, deal.id)
        assert (event.from_stage_id, event.to_stage_id) == ("default-new", stage)


async def test_a_deal_opens_only_in_an_active_pipeline(sales: Sales) -> None:
    pipeline = (
        await sales.pipelines.CreatePipeline(pipelines_pb2.CreatePipelineRequest(pipeline=furniture()))
    ).pipeline
    await sales.pipelines.UpdatePipeline(
        pipelines_pb2.UpdatePipelineRequest(
            pipeline=pipelines_pb2.Pipeline(id=pipeline.id, active=False), update_mask=FieldMask(paths=["active"])
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as inactive:
        await open_deal(sales, pipeline.id)
    assert inactive.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert violated_fields(inactive.value) == {"pipeline_id"}
    with pytest.raises(grpc.aio.AioRpcError) as default:
        await sales.pipelines.UpdatePipeline(
            pipelines_pb2.UpdatePipelineRequest(
                pipeline=pipelines_pb2.Pipeline(id="default", active=False), update_mask=FieldMask(paths=["active"])
            )
        )
    assert violated_fields(default.value) == {"active"}
    active = (await sales.pipelines.ListPipelines(pipelines_pb2.ListPipelinesRequest())).pipelines
    every = (await sales.pipelines.ListPipelines(pipelines_pb2.ListPipelinesRequest(show_inactive=True))).pipelines
    assert [p.id for p in active] == ["default"] and [p.id for p in every] == ["default", pipeline.id]


async def test_migration_0002_puts_every_existing_deal_in_the_default_pipeline(fresh_database: Any) -> None:
    url = await fresh_database("sales")
    config = alembic_config(MIGRATIONS_DIR, url)
    await asyncio.to_thread(command.upgrade, config, "0001")
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO deals (id, lead_id, title, status, created_at, closed_at) VALUES"
                    " ('d-open', 'l-1', 'ספה', 'open', '2026-11-01T09:00:00Z', NULL),"
                    " ('d-won', 'l-2', 'כורסה', 'won', '2026-11-02T09:00:00Z', '2026-11-20T12:00:00Z'),"
                    " ('d-lost', 'l-3', 'שולחן', 'lost', '2026-11-03T09:00:00Z', '2026-11-21T12:00:00Z')"
                )
            )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as conn:
            deals = await conn.execute(
                text(
                    "SELECT d.id, d.pipeline_id, d.stage_id, d.version, h.from_stage_id, h.to_stage_id, h.actor,"
                    " h.moved_at = d.stage_entered_at, d.stage_entered_at = COALESCE(d.closed_at, d.created_at)"
                    " FROM deals d JOIN deal_stage_history h ON h.deal_id = d.id ORDER BY d.id"
                )
            )
            assert [tuple(r) for r in deals] == [
                ("d-lost", "default", "default-lost", 1, None, "default-lost", "migration", True, True),
                ("d-open", "default", "default-new", 1, None, "default-new", "migration", True, True),
                ("d-won", "default", "default-won", 1, None, "default-won", "migration", True, True),
            ]
        await asyncio.to_thread(command.downgrade, config, "0001")
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM deals"))).scalar_one() == 3
    finally:
        await engine.dispose()


async def test_a_converted_lead_opens_in_the_pipeline_its_conversion_names(sales: Sales) -> None:
    """LeadConverted carries the pipeline chosen at conversion; one deactivated since (the gateway
    checked it was active) still gets its deal, in the default pipeline rather than none."""
    kitchens = (
        await sales.pipelines.CreatePipeline(pipelines_pb2.CreatePipelineRequest(pipeline=furniture()))
    ).pipeline
    retired = (await sales.pipelines.CreatePipeline(pipelines_pb2.CreatePipelineRequest(pipeline=furniture()))).pipeline
    await sales.pipelines.UpdatePipeline(
        pipelines_pb2.UpdatePipelineRequest(
            pipeline=pipelines_pb2.Pipeline(id=retired.id, active=False), update_mask=FieldMask(paths=["active"])
        )
    )
    ids = {name: str(uuid.uuid4()) for name in ("kitchens", "retired")}
    for name, pipeline_id in (("kitchens", kitchens.id), ("retired", retired.id)):
        event = leads_events.LeadConverted(
            lead_id=f"lead-{name}",
            deal_id=ids[name],
            title="מטבח",
            owner_rep_id="rep-dana",
            owner_team_id="team-media",
            source="radio",
            convert_time=to_timestamp(datetime.now(UTC)),
            pipeline_id=pipeline_id,
        )
        await publish_event(sales.nats_url, event)

    async def opened(deal_id: str) -> deals_pb2.Deal | None:
        try:
            return (await sales.deals.GetDeal(deals_pb2.GetDealRequest(deal_id=deal_id))).deal
        except grpc.aio.AioRpcError:
            return None

    in_kitchens = await eventually(lambda: opened(ids["kitchens"]), timeout=30)
    fallback = await eventually(lambda: opened(ids["retired"]), timeout=30)
    assert (in_kitchens.pipeline_id, in_kitchens.stage_id) == (kitchens.id, kitchens.stages[0].id)
    assert (fallback.pipeline_id, fallback.stage_id) == ("default", "default-new")
