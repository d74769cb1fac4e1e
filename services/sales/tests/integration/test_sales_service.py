"""The sales service in process against real PostgreSQL and NATS JetStream: deals opened from
conversions (by the call and by the event, once), closed with DealClosed, moved by merges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import nats
import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from sqlalchemy import func, select

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2 as leads_events
from crm.sales.v1 import deals_pb2, pipelines_pb2
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit import caller
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, publish_event, violated_fields
from crm_sales.db import deals, messaging

if TYPE_CHECKING:
    from conftest import Sales  # the fixture's type (conftest.py)

pytestmark = pytest.mark.integration


def open_request(lead_id: str, deal_id: str | None = None, **facts: str) -> deals_pb2.OpenDealRequest:
    return deals_pb2.OpenDealRequest(
        deal_id=deal_id or str(uuid.uuid4()),
        lead_id=lead_id,
        title=facts.get("title", "ספה"),
        owner_rep_id=facts.get("owner_rep_id", "rep-dana"),
        owner_team_id=facts.get("owner_team_id", "team-media"),
        source=facts.get("source", "radio"),
        campaign=facts.get("campaign", "spring"),
    )


def converted(request: deals_pb2.OpenDealRequest, **who: str) -> leads_events.LeadConverted:
    return leads_events.LeadConverted(
        **who,
        lead_id=request.lead_id,
        deal_id=request.deal_id,
        title=request.title,
        owner_rep_id=request.owner_rep_id,
        owner_team_id=request.owner_team_id,
        source=request.source,
        campaign=request.campaign,
        convert_time=request.lead_since,
    )


async def deal_count(sales: Sales, **where: str) -> int:
    async with sales.service.db.engine.connect() as conn:
        query = select(func.count()).select_from(deals)
        for column, value in where.items():
            query = query.where(deals.c[column] == value)
        return int((await conn.execute(query)).scalar_one())


async def audit_entries(sales: Sales, deal_id: str) -> list[tuple[str, str, str]]:
    table = messaging.audit_log
    query = select(table.c.action, table.c.actor, table.c.request_id).where(table.c.record_id == deal_id)
    async with sales.service.db.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(query.order_by(table.c.id))]


async def audit_actions(sales: Sales, deal_id: str) -> list[str]:
    return [action for action, _, _ in await audit_entries(sales, deal_id)]


async def closed_events(nats_url: str) -> list[sales_events.DealClosed]:
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe("crm.sales.deal_closed", durable=f"t-{uuid.uuid4().hex[:8]}")
        found: list[sales_events.DealClosed] = []
        while True:
            try:
                found += [sales_events.DealClosed.FromString(m.data) for m in await sub.fetch(50, timeout=0.5)]
            except (NatsTimeoutError, TimeoutError):
                return found
    finally:
        await nc.close()


async def test_the_call_and_the_event_open_one_deal_audited_under_the_converter(sales: Sales) -> None:
    request = open_request("lead-1", title="  ספה תלת  ")
    with caller.acting_as("rep-dana", "req-1"):
        opened = (await sales.deals.OpenDeal(request)).deal
        again = (await sales.deals.OpenDeal(request)).deal
    assert (opened.id, opened.lead_id, opened.title) == (request.deal_id, "lead-1", "ספה תלת")
    assert (opened.owner_rep_id, opened.owner_team_id, opened.status) == (
        "rep-dana",
        "team-media",
        deals_pb2.DEAL_STATUS_OPEN,
    )
    assert again == opened
    # The event arrives after the call: handled, and still one deal audited once.
    event_id = await publish_event(sales.nats_url, converted(request, actor="rep-dana", request_id="req-1"))
    await eventually(lambda: _handled(sales, event_id))
    assert await deal_count(sales, lead_id="lead-1") == 1
    # An event that arrives first opens the deal, audited under the person who converted.
    later = open_request("lead-later")
    await publish_event(sales.nats_url, converted(later, actor="rep-moshe", request_id="req-2"))
    await eventually(lambda: _has_deal(sales, later.deal_id))
    assert await audit_entries(sales, request.deal_id) == [("sales.OpenDeal", "rep-dana", "req-1")]
    assert await audit_entries(sales, later.deal_id) == [("sales.OpenDeal", "rep-moshe", "req-2")]
    fetched = (await sales.deals.GetDeal(deals_pb2.GetDealRequest(deal_id=later.deal_id))).deal
    assert fetched.lead_id == "lead-later" and fetched.owner_team_id == "team-media"


async def _handled(sales: Sales, event_id: str) -> bool:
    table = messaging.inbox
    async with sales.service.db.engine.connect() as conn:
        return bool((await conn.execute(select(func.count()).where(table.c.event_id == event_id))).scalar_one())


async def _has_deal(sales: Sales, deal_id: str) -> bool:
    return await deal_count(sales, id=deal_id) == 1


async def test_a_second_deal_for_one_lead_and_bad_input_are_refused(sales: Sales) -> None:
    await sales.deals.OpenDeal(open_request("lead-2"))
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await sales.deals.OpenDeal(open_request("lead-2"))
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await sales.deals.OpenDeal(open_request("", title=""))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(bad.value) == {"lead_id", "title"}
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await sales.deals.GetDeal(deals_pb2.GetDealRequest(deal_id="nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert await deal_count(sales) == 1


async def test_close_won_publishes_deal_closed_with_attribution_then_a_second_close_fails(sales: Sales) -> None:
    deal = (await sales.deals.OpenDeal(open_request("lead-3", source="tv", campaign="winter"))).deal
    ils = types_pb2.Money(amount_minor=459900, currency_code="ils")
    closed = (
        await sales.deals.CloseDeal(
            deals_pb2.CloseDealRequest(
                deal_id=deal.id,
                outcome=deals_pb2.DEAL_OUTCOME_WON,
                items=[
                    types_pb2.LineItem(sku=" SOFA ", description="ספה", quantity=1, unit_price=ils),
                    types_pb2.LineItem(sku="PILLOW", description="כרית", quantity=2, unit_price=ils),
                ],
            )
        )
    ).deal
    assert closed.status == deals_pb2.DEAL_STATUS_WON
    assert (closed.total.amount_minor, closed.total.currency_code) == (3 * 459900, "ILS")
    assert [i.sku for i in closed.items] == ["SOFA", "PILLOW"] and closed.owner_team_id == "team-media"
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await sales.deals.CloseDeal(deals_pb2.CloseDealRequest(deal_id=deal.id, outcome=deals_pb2.DEAL_OUTCOME_LOST))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as no_outcome:
        await sales.deals.CloseDeal(deals_pb2.CloseDealRequest(deal_id=deal.id))
    assert no_outcome.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    [event] = await eventually(lambda: _closed_of(sales, deal.id))
    assert event.won and (event.source, event.campaign, event.lead_id) == ("tv", "winter", "lead-3")
    assert [i.unit_price.currency_code for i in event.items] == ["ILS", "ILS"]
    assert event.total.amount_minor == 3 * 459900 and event.owner_rep_id == "rep-dana"
    assert await audit_actions(sales, deal.id) == ["sales.OpenDeal", "sales.CloseDeal"]


async def _closed_of(sales: Sales, deal_id: str) -> list[sales_events.DealClosed]:
    return [e for e in await closed_events(sales.nats_url) if e.deal_id == deal_id]


async def test_close_lost_keeps_the_reason_and_sells_nothing(sales: Sales) -> None:
    deal = (await sales.deals.OpenDeal(open_request("lead-4"))).deal
    lost = (
        await sales.deals.CloseDeal(
            deals_pb2.CloseDealRequest(deal_id=deal.id, outcome=deals_pb2.DEAL_OUTCOME_LOST, lost_reason="price")
        )
    ).deal
    assert lost.status == deals_pb2.DEAL_STATUS_LOST and lost.lost_reason == "price" and not lost.items
    [event] = await eventually(lambda: _closed_of(sales, deal.id))
    assert not event.won and event.lost_reason == "price" and not event.items


def merged(duplicate: str, survivor: str, deal_id: str, at: datetime) -> leads_events.LeadsMerged:
    return leads_events.LeadsMerged(
        survivor_lead_id=survivor, merged_lead_id=duplicate, moved_deal_id=deal_id, merge_time=to_timestamp(at)
    )


async def test_merges_move_the_deal_down_their_chain_whatever_order_they_arrive_in(sales: Sales) -> None:
    request = open_request("lead-a")
    converted_at = datetime.now(UTC) - timedelta(minutes=10)
    request.lead_since.CopyFrom(to_timestamp(converted_at))
    # A was merged into B, then B into C; both merges reach sales before the deal's opening, the
    # later one first.
    await publish_event(
        sales.nats_url, merged("lead-b", "lead-c", request.deal_id, converted_at + timedelta(minutes=2))
    )
    await publish_event(
        sales.nats_url, merged("lead-a", "lead-b", request.deal_id, converted_at + timedelta(minutes=1))
    )
    await publish_event(sales.nats_url, converted(request))
    await eventually(lambda: _deal_of(sales, request.deal_id, "lead-c"), timeout=30)
    assert await audit_actions(sales, request.deal_id) == ["sales.OpenDeal", "sales.LeadsMerged", "sales.LeadsMerged"]


async def test_a_merge_already_in_the_deals_lead_changes_nothing(sales: Sales) -> None:
    """A deal opened (or copied) on the surviving lead, after the merge: the merge is in it already."""
    request = open_request("lead-survivor-2")  # lead_since: now, after the merge below
    await sales.deals.OpenDeal(request)
    event_id = await publish_event(
        sales.nats_url, merged("lead-gone", "lead-survivor-2", request.deal_id, datetime.now(UTC) - timedelta(hours=1))
    )
    await eventually(lambda: _handled(sales, event_id))
    assert await _deal_of(sales, request.deal_id, "lead-survivor-2")
    assert await audit_actions(sales, request.deal_id) == ["sales.OpenDeal"]


async def _deal_of(sales: Sales, deal_id: str, lead_id: str) -> bool:
    return await deal_count(sales, id=deal_id, lead_id=lead_id) == 1


async def test_deal_closed_names_the_owner_team_the_pipeline_and_its_product_line(sales: Sales) -> None:
    """Reporting counts targets per team and product line from these fields."""
    stage = pipelines_pb2.Stage
    sofas = pipelines_pb2.Pipeline(
        name="ספות",
        product_line="sofas",
        active=True,
        stages=[
            stage(name="חדש", probability=20, outcome=pipelines_pb2.STAGE_OUTCOME_OPEN),
            stage(name="נסגר", probability=100, outcome=pipelines_pb2.STAGE_OUTCOME_WON),
            stage(name="אבד", probability=0, outcome=pipelines_pb2.STAGE_OUTCOME_LOST),
        ],
    )
    pipeline = (await sales.pipelines.CreatePipeline(pipelines_pb2.CreatePipelineRequest(pipeline=sofas))).pipeline
    request = open_request("lead-product-line", owner_team_id="team-north")
    request.pipeline_id = pipeline.id
    deal = (await sales.deals.OpenDeal(request)).deal
    ils = types_pb2.Money(amount_minor=459900, currency_code="ILS")
    await sales.deals.CloseDeal(
        deals_pb2.CloseDealRequest(
            deal_id=deal.id,
            outcome=deals_pb2.DEAL_OUTCOME_WON,
            items=[types_pb2.LineItem(sku="SOFA", quantity=1, unit_price=ils)],
        )
    )
    [event] = await eventually(lambda: _closed_of(sales, deal.id))
    assert (event.owner_rep_id, event.owner_team_id) == ("rep-dana", "team-north")
    assert (event.pipeline_id, event.product_line) == (pipeline.id, "sofas")
