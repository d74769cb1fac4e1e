"""Application layer of sales: each command runs in the caller's unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.common.v1 import types_pb2
from crm.sales.v1 import events_pb2, pipelines_pb2
from crm_kit import caller
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import FailedPrecondition
from crm_kit.protoconv import to_timestamp
from crm_sales import domain, pipelines, queries
from crm_sales.db import deal_items, deal_stage_history, deals, pipeline_stages
from crm_sales.db import pipelines as pipelines_table
from crm_sales.metrics import CLOSED_FROM_STAGE, DEALS_CLOSED, DEALS_OPENED, OPEN_PIPELINE_VALUE, STAGE_CHANGES
from crm_sales.queries import DealView, PipelineView, deal_not_found, get_deal

# The width of deal_stage_history.actor.
_ACTOR_MAX = 200


async def _opening_stage(uow: UnitOfWork, pipeline_id: str) -> tuple[str, str]:
    """(pipeline, its first open stage) of a new deal: the named active pipeline, or the default."""
    pipeline = await queries.get_pipeline(uow, pipeline_id or pipelines.DEFAULT_PIPELINE_ID)
    if not pipeline.row.active:
        raise FailedPrecondition(
            f"pipeline {pipeline_id} is inactive",
            reason="PIPELINE_INACTIVE",
            field_violations=[("pipeline_id", "must be an active pipeline")],
        )
    return pipeline.row.id, await queries.first_open_stage(uow, pipeline.row.id)


async def _history_row(uow: UnitOfWork, deal_id: str, from_stage: Any, to_stage: str, now: datetime) -> None:
    """`from_stage` is the row of the deal before the move (None: its first stage)."""
    who = caller.current()
    await uow.conn.execute(
        deal_stage_history.insert().values(
            deal_id=deal_id,
            from_stage_id=from_stage.stage_id if from_stage else None,
            to_stage_id=to_stage,
            actor=(who.actor if who else caller.UNKNOWN_ACTOR)[:_ACTOR_MAX],
            moved_at=now,
            seconds_in_previous=domain.seconds_in_stage(from_stage.stage_entered_at if from_stage else None, now),
        )
    )


def _money(minor: int | None, currency: str | None) -> types_pb2.Money | None:
    return types_pb2.Money(amount_minor=minor, currency_code=currency or "") if minor is not None else None


async def _enter_stage(uow: UnitOfWork, deal: Any, to_stage: str, now: datetime) -> None:
    """The deal (its row before the move) enters to_stage: history, DealStageChanged, metric."""
    await _history_row(uow, deal.id, deal, to_stage, now)
    stage = (
        await uow.conn.execute(
            select(pipeline_stages.c.name, pipeline_stages.c.outcome).where(pipeline_stages.c.id == to_stage)
        )
    ).one()
    changed = events_pb2.DealStageChanged(
        deal_id=deal.id,
        lead_id=deal.lead_id,
        pipeline_id=deal.pipeline_id,
        from_stage_id=deal.stage_id,
        to_stage_id=to_stage,
        owner_rep_id=deal.owner_rep_id or "",
        owner_team_id=deal.owner_team_id or "",
        amount=_money(deal.amount_minor, deal.amount_currency),
        move_time=to_timestamp(now),
        to_stage_name=stage.name,
        to_stage_outcome=pipelines_pb2.StageOutcome.Value(f"STAGE_OUTCOME_{stage.outcome.upper()}"),
    )
    await uow.record_event(changed, time=now)
    uow.after_commit(STAGE_CHANGES.labels(deal.pipeline_id).inc)


async def open_deal(uow: UnitOfWork, new: domain.NewDeal) -> DealView:
    """Open the deal a lead's conversion named, in the first stage of its pipeline; opening it
    again (the gateway's call and the LeadConverted event both ask) returns it as it is now. A
    different deal for the same lead is refused: leads records one conversion per lead, so that
    would be a bug upstream. Audited as sales.OpenDeal under the caller, whichever path opened it
    (the handler acts as the converter)."""
    new = domain.validate_new_deal(new)
    pipeline_id, stage_id = await _opening_stage(uow, new.pipeline_id)
    now = datetime.now(UTC)
    inserted = (
        await uow.conn.execute(
            pg_insert(deals)
            .values(
                id=new.deal_id,
                lead_id=new.lead_id,
                lead_since=new.lead_since or now,
                title=new.title,
                owner_rep_id=new.owner_rep_id or None,
                owner_team_id=new.owner_team_id or None,
                source=new.source,
                campaign=new.campaign,
                status=domain.DealStatus.OPEN.value,
                pipeline_id=pipeline_id,
                stage_id=stage_id,
                stage_entered_at=now,
            )
            .on_conflict_do_nothing()
            .returning(deals.c.id)
        )
    ).scalar()
    if inserted is None:
        lead_deal = (await uow.conn.execute(select(deals.c.id).where(deals.c.lead_id == new.lead_id))).scalar()
        if lead_deal is not None and lead_deal != new.deal_id:
            raise FailedPrecondition(
                f"lead {new.lead_id} already has deal {lead_deal}",
                reason="LEAD_HAS_DEAL",
                metadata={"lead_id": new.lead_id, "deal_id": lead_deal},
            )
        return await get_deal(uow, new.deal_id)
    await _history_row(uow, new.deal_id, None, stage_id, now)
    details = {"lead_id": new.lead_id, "owner_rep_id": new.owner_rep_id, "pipeline_id": pipeline_id}
    uow.audit("sales.OpenDeal", "deal", new.deal_id, details)
    uow.after_commit(DEALS_OPENED.inc)
    return await get_deal(uow, new.deal_id)


def _closed_event(deal: Any, items: list[domain.Item], now: datetime, product_line: str) -> events_pb2.DealClosed:
    """DealClosed from the closed deal's row; product_line is its pipeline's (reporting's targets)."""
    return events_pb2.DealClosed(
        deal_id=deal.id,
        lead_id=deal.lead_id,
        won=deal.status == domain.DealStatus.WON.value,
        items=[
            types_pb2.LineItem(
                sku=i.sku,
                description=i.description,
                quantity=i.quantity,
                unit_price=types_pb2.Money(amount_minor=i.unit_price_minor, currency_code=i.currency_code),
            )
            for i in items
        ],
        total=types_pb2.Money(amount_minor=deal.total_minor, currency_code=deal.currency_code),
        owner_rep_id=deal.owner_rep_id or "",
        source=deal.source,
        campaign=deal.campaign,
        close_time=to_timestamp(now),
        lost_reason=deal.lost_reason,
        owner_team_id=deal.owner_team_id or "",
        pipeline_id=deal.pipeline_id,
        product_line=product_line,
    )


async def _locked_deal(uow: UnitOfWork, deal_id: str, etag: str) -> Any:
    """The deal's row, locked for the change, after checking the caller's etag against it."""
    deal = (await uow.conn.execute(select(deals).where(deals.c.id == deal_id).with_for_update())).first()
    if deal is None:
        raise deal_not_found(deal_id)
    domain.check_etag(etag, deal.version, f"deal {deal_id}")
    return deal


async def close_deal(
    uow: UnitOfWork,
    deal_id: str,
    *,
    won: bool,
    items: list[domain.Item],
    lost_reason: str,
    lost_reason_code: str = "",
    etag: str = "",
) -> DealView:
    """Close an open deal as won (with what was sold) or lost, moving it to its pipeline's won or
    lost stage, and publish DealStageChanged and DealClosed in the same transaction. The row lock
    makes one of two concurrent closes win; the other sees it closed."""
    deal = await _locked_deal(uow, deal_id, etag)
    total, currency = domain.validate_close(domain.DealStatus(deal.status), won, items)
    domain.check_lost_reason(won, lost_reason_code, [r.code for r in await queries.list_lost_reasons(uow)])
    sold = [domain.clean_item(i) for i in items] if won else []
    now = datetime.now(UTC)
    status = domain.DealStatus.WON if won else domain.DealStatus.LOST
    stage_id = await queries.closing_stage(uow, deal.pipeline_id, domain.StageOutcome(status.value))
    await _enter_stage(uow, deal, stage_id, now)
    closed = (
        await uow.conn.execute(
            update(deals)
            .where(deals.c.id == deal_id)
            .values(
                status=status.value,
                total_minor=total,
                currency_code=currency,
                lost_reason=lost_reason,
                lost_reason_code=lost_reason_code or None,
                closed_at=now,
                stage_id=stage_id,
                stage_entered_at=now,
                version=deals.c.version + 1,
            )
            .returning(deals)
        )
    ).one()
    if sold:
        await uow.conn.execute(
            deal_items.insert(), [{"deal_id": deal_id, "position": n, **vars(item)} for n, item in enumerate(sold)]
        )
    product_line = (await queries.get_pipeline(uow, closed.pipeline_id)).row.product_line
    await uow.record_event(_closed_event(closed, sold, now, product_line), time=now)
    details: dict[str, Any] = {
        "outcome": status.value,
        "total": {"amount_minor": total, "currency_code": currency},
        "stage_id": stage_id,
    }
    if lost_reason:
        details["lost_reason"] = lost_reason
    if lost_reason_code:
        details["lost_reason_code"] = lost_reason_code
    uow.audit("sales.CloseDeal", "deal", deal_id, details)
    uow.after_commit(DEALS_CLOSED.labels(status.value).inc)
    uow.after_commit(CLOSED_FROM_STAGE.labels(deal.pipeline_id, deal.stage_id, status.value).inc)
    return await get_deal(uow, deal_id)


def _fields(deal: Any) -> domain.DealFields:
    return domain.DealFields(deal.title, deal.expected_close_date, deal.amount_minor, deal.amount_currency)


async def move_deal_stage(uow: UnitOfWork, deal_id: str, stage_id: str, *, etag: str = "") -> DealView:
    """Move an open deal to another open stage of its pipeline (forward or back: a deal that
    slipped goes back); moving it to the stage it is in changes nothing."""
    deal = await _locked_deal(uow, deal_id, etag)
    if deal.stage_id == stage_id and deal.status == domain.DealStatus.OPEN.value:
        return await get_deal(uow, deal_id)
    target = await queries.get_stage(uow, stage_id)
    target = domain.validate_move(domain.DealStatus(deal.status), deal.pipeline_id, target, _fields(deal))
    now = datetime.now(UTC)
    await _enter_stage(uow, deal, target.id, now)
    await uow.conn.execute(
        update(deals)
        .where(deals.c.id == deal_id)
        .values(stage_id=target.id, stage_entered_at=now, version=deals.c.version + 1)
    )
    details = {"pipeline_id": deal.pipeline_id, "from_stage_id": deal.stage_id, "to_stage_id": target.id}
    uow.audit("sales.MoveDealStage", "deal", deal_id, details)
    return await get_deal(uow, deal_id)


async def update_deal(
    uow: UnitOfWork, deal_id: str, requested: domain.DealFields, mask: Sequence[str], *, etag: str = ""
) -> DealView:
    """Set the fields of `mask` on an open deal; a change that changes nothing keeps its etag."""
    deal = await _locked_deal(uow, deal_id, etag)
    stage = await queries.get_stage(uow, deal.stage_id)
    if stage is None:  # deals.stage_id is a foreign key: only a bug gets here
        raise RuntimeError(f"deal {deal_id} is in unknown stage {deal.stage_id}")
    current = _fields(deal)
    updated = domain.apply_deal_update(domain.DealStatus(deal.status), stage, current, requested, mask)
    if updated == current:
        return await get_deal(uow, deal_id)
    await uow.conn.execute(
        update(deals).where(deals.c.id == deal_id).values(**vars(updated), version=deals.c.version + 1)
    )
    changed = {
        "title": updated.title,
        "expected_close_date": updated.expected_close_date.isoformat() if updated.expected_close_date else None,
        "amount": {"amount_minor": updated.amount_minor, "currency_code": updated.amount_currency},
    }
    uow.audit("sales.UpdateDeal", "deal", deal_id, {path: changed[path] for path in dict.fromkeys(mask)})
    return await get_deal(uow, deal_id)


async def move_deal_to_lead(
    uow: UnitOfWork, deal_id: str, *, merged_lead_id: str, survivor_lead_id: str, merged_at: datetime
) -> domain.MergeOrder:
    """A merge in leads moved the deal from merged_lead_id to survivor_lead_id. Applied only from
    the lead it merged away (domain.merge_order); WAIT tells the caller to retry later (the deal's
    LeadConverted, or an earlier merge of it, is still on its way)."""
    query = select(deals.c.lead_id, deals.c.lead_since).where(deals.c.id == deal_id).with_for_update()
    deal = (await uow.conn.execute(query)).first()
    order = domain.merge_order(
        deal_lead=deal.lead_id if deal else None,
        deal_lead_since=deal.lead_since if deal else None,
        merged_lead=merged_lead_id,
        merged_at=merged_at,
    )
    if order is domain.MergeOrder.APPLY:
        await uow.conn.execute(
            update(deals)
            .where(deals.c.id == deal_id)
            .values(lead_id=survivor_lead_id, lead_since=merged_at, version=deals.c.version + 1)
        )
        details = {"lead_id": survivor_lead_id, "merged_lead_id": merged_lead_id}
        uow.audit("sales.LeadsMerged", "deal", deal_id, details)
    return order


async def refresh_pipeline_metrics(db: Database) -> None:
    """Read the open pipeline's value into the metrics (a periodic job: one aggregate per interval
    and replica, however often Prometheus scrapes), and start every open stage's close counters at 0."""
    async with db.unit_of_work() as uow:
        stages = [(row.pipeline_id, row.id) for row in await queries.open_stages(uow)]
        values = await queries.open_value(uow)
    OPEN_PIPELINE_VALUE.publish(stages, values)
    for pipeline_id, stage_id in stages:
        for outcome in domain.DealStatus.WON, domain.DealStatus.LOST:
            CLOSED_FROM_STAGE.labels(pipeline_id, stage_id, outcome.value)


# ---------------------------------------------------------------- pipelines


def _stage_rows(pipeline_id: str, stages: Sequence[pipelines.StageDraft]) -> list[dict[str, Any]]:
    """Rows of a stage list in its order; a new stage gets its id here."""
    return [
        {
            "id": stage.id or str(uuid.uuid4()),
            "pipeline_id": pipeline_id,
            "position": n,
            "name": stage.name,
            "probability": stage.probability,
            "required_fields": list(stage.required_fields),
            "outcome": stage.outcome.value if stage.outcome else "",
            "forecast_category": (stage.forecast_category or pipelines.ForecastCategory.PIPELINE).value,
        }
        for n, stage in enumerate(stages)
    ]


def _pipeline_details(draft: pipelines.PipelineDraft, fields: Sequence[str]) -> dict[str, Any]:
    details: dict[str, Any] = {f: getattr(draft, f) for f in fields if f != "stages"}
    if "stages" in fields:
        details["stages"] = [
            {"id": s.id, "name": s.name, "probability": s.probability, "forecast_category": s.forecast_category}
            for s in draft.stages
        ]
    return details


async def create_pipeline(uow: UnitOfWork, draft: pipelines.PipelineDraft, *, request_id: str = "") -> PipelineView:
    """Create a pipeline with its stages; a repeated request_id returns the first one (AIP-155)."""
    draft = pipelines.validate_new_pipeline(draft)
    pipeline_id = str(uuid.uuid4())
    inserted = (
        await uow.conn.execute(
            pg_insert(pipelines_table)
            .values(
                id=pipeline_id,
                name=draft.name,
                product_line=draft.product_line,
                active=draft.active,
                request_id=request_id or None,
            )
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(pipelines_table.c.id)
        )
    ).scalar()
    if inserted is None:
        first = await queries.find_pipeline_by_request_id(uow, request_id)
        if first is None:  # the conflicting row is committed (ON CONFLICT waited for it): a bug
            raise RuntimeError(f"request {request_id} conflicted but its pipeline is not there")
        return first
    rows = _stage_rows(pipeline_id, draft.stages)
    await uow.conn.execute(pipeline_stages.insert(), rows)
    uow.audit("sales.CreatePipeline", "pipeline", pipeline_id, _pipeline_details(draft, pipelines.PIPELINE_FIELDS))
    return await queries.get_pipeline(uow, pipeline_id)


async def _replace_stages(uow: UnitOfWork, pipeline_id: str, stages: Sequence[pipelines.StageDraft]) -> None:
    rows = _stage_rows(pipeline_id, stages)
    kept = [row["id"] for row in rows]
    await uow.conn.execute(
        delete(pipeline_stages).where(pipeline_stages.c.pipeline_id == pipeline_id, pipeline_stages.c.id.not_in(kept))
    )
    upsert = pg_insert(pipeline_stages).values(rows)
    columns = ("position", "name", "probability", "required_fields", "outcome", "forecast_category")
    await uow.conn.execute(
        upsert.on_conflict_do_update(index_elements=["id"], set_={c: upsert.excluded[c] for c in columns})
    )


async def update_pipeline(
    uow: UnitOfWork, pipeline_id: str, draft: pipelines.PipelineDraft, mask: Sequence[str], *, etag: str = ""
) -> PipelineView:
    """Change the fields of `mask`; the pipeline's row lock orders concurrent updates, and the etag
    refuses one decided on an older version."""
    current = await queries.get_pipeline(uow, pipeline_id, lock=True)
    domain.check_etag(etag, current.row.version, f"pipeline {pipeline_id}")
    occupied = await queries.deals_per_stage(uow, pipeline_id) if "stages" in mask else {}
    outcomes = {s.id: domain.StageOutcome(s.outcome) for s in current.stages}
    categories = {s.id: pipelines.ForecastCategory(s.forecast_category) for s in current.stages}
    draft = pipelines.validate_pipeline_update(pipeline_id, draft, mask, outcomes, occupied, categories)
    if "stages" in mask:
        await _replace_stages(uow, pipeline_id, draft.stages)
    values = {f: getattr(draft, f) for f in mask if f != "stages"}
    await uow.conn.execute(
        update(pipelines_table)
        .where(pipelines_table.c.id == pipeline_id)
        .values(**values, version=pipelines_table.c.version + 1, updated_at=datetime.now(UTC))
    )
    uow.audit("sales.UpdatePipeline", "pipeline", pipeline_id, _pipeline_details(draft, mask))
    return await queries.get_pipeline(uow, pipeline_id)
