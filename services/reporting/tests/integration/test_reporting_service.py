"""The reporting service in process against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import nats
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from crm.common.v1 import types_pb2
from crm.customers.v1 import events_pb2 as customer_events
from crm.leads.v1 import events_pb2 as lead_events
from crm.notifications.v1 import events_pb2 as notification_events
from crm.orders.v1 import events_pb2 as order_events
from crm.reporting.v1 import reporting_pb2, reporting_pb2_grpc, retention_pb2, retention_pb2_grpc
from crm.sales.v1 import events_pb2 as sales_events
from crm.support.v1 import events_pb2 as support_events
from crm.support.v1 import support_pb2
from crm_kit import caller
from crm_kit.protoconv import to_timestamp
from crm_kit.service import Service
from crm_kit.testing import eventually, free_port, local_channel, publish_event, reset_stream, running_service
from crm_reporting.db import (
    customer_facts,
    deal_facts,
    event_log,
    lead_facts,
    messaging,
    notification_facts,
    order_facts,
    purchase_facts,
    ticket_facts,
)
from crm_reporting.main import MIGRATIONS_DIR, ReportingSettings, setup

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
ILS = "ILS"

# source → (leads, won_deals, lost_deals, [(currency, revenue)])
Summary = dict[str, tuple[int, int, int, list[tuple[str, int]]]]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Reporting:
    stub: reporting_pb2_grpc.ReportingServiceStub
    service: Service
    retention: retention_pb2_grpc.RetentionServiceStub

    async def summary(self, start: datetime | None = None, end: datetime | None = None) -> Summary:
        response = await self.stub.GetSourceReport(
            reporting_pb2.GetSourceReportRequest(start_time=to_timestamp(start), end_time=to_timestamp(end))
        )
        return {
            r.source: (r.leads, r.won_deals, r.lost_deals, [(m.currency_code, m.amount_minor) for m in r.revenue])
            for r in response.rows
        }

    async def wait_for(self, expected: Summary, start: datetime | None = None, end: datetime | None = None) -> None:
        last: Summary = {}

        async def check() -> bool:
            nonlocal last
            last = await self.summary(start, end)
            return last == expected

        try:
            await eventually(check)
        except AssertionError as exc:
            raise AssertionError(f"report never became {expected}; last: {last}") from exc

    async def fetch(self, query: Any) -> list[Any]:
        async with self.service.db.unit_of_work() as uow:
            return list((await uow.conn.execute(query)).all())


@pytest.fixture
async def reporting(fresh_database, nats_server) -> AsyncIterator[Reporting]:
    await reset_stream(nats_server)
    port = free_port()
    settings = ReportingSettings(
        database_url=await fresh_database("reporting"),
        nats_url=nats_server,
        grpc_port=port,
        metrics_port=free_port(),
        consumer_backoff_seconds=[0.1],
        consumer_max_deliver=3,
        # A test decides leads and asks for a score at once.
        lead_score_refresh_seconds=1.0,
        cross_sell_refresh_seconds=1.0,
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup) as service:
        ch = local_channel(port)
        yield Reporting(
            reporting_pb2_grpc.ReportingServiceStub(ch), service, retention_pb2_grpc.RetentionServiceStub(ch)
        )
        await ch.close()


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def captured(lead_id: str, source: str, at: datetime, campaign: str = "") -> lead_events.LeadCaptured:
    return lead_events.LeadCaptured(
        lead_id=lead_id, full_name="דנה כהן", source=source, campaign=campaign, capture_time=to_timestamp(at)
    )


def won_deal(lead_id: str, source: str, at: datetime) -> sales_events.DealClosed:
    sofa = types_pb2.Money(amount_minor=459900, currency_code=ILS)
    pillow = types_pb2.Money(amount_minor=5000, currency_code=ILS)
    return sales_events.DealClosed(
        deal_id=new_id("deal"),
        lead_id=lead_id,
        won=True,
        items=[
            types_pb2.LineItem(sku="SOFA", description="ספה", quantity=1, unit_price=sofa),
            types_pb2.LineItem(sku="PILLOW", description="کوسن", quantity=2, unit_price=pillow),
        ],
        total=types_pb2.Money(amount_minor=469900, currency_code=ILS),
        source=source,
        close_time=to_timestamp(at),
    )


def lost_deal(lead_id: str, source: str, at: datetime) -> sales_events.DealClosed:
    return sales_events.DealClosed(
        deal_id=new_id("deal"),
        lead_id=lead_id,
        won=False,
        source=source,
        close_time=to_timestamp(at),
        lost_reason="too expensive",
    )


async def test_source_report_counts_leads_by_capture_and_deals_by_close(reporting, nats_server) -> None:
    radio_1, radio_2, tv_1 = new_id("lead"), new_id("lead"), new_id("lead")
    await publish_event(nats_server, captured(radio_1, "radio", T0, campaign="spring-sale"))
    await publish_event(nats_server, captured(radio_2, "radio", T0 + timedelta(minutes=5)))
    await publish_event(nats_server, captured(tv_1, "tv", T0 + timedelta(minutes=10)))
    closed_at = T0 + timedelta(days=1)
    await publish_event(nats_server, won_deal(radio_1, "radio", closed_at))
    await publish_event(nats_server, lost_deal(tv_1, "tv", closed_at))

    everything = {"radio": (2, 1, 0, [(ILS, 469900)]), "tv": (1, 0, 1, [])}
    await reporting.wait_for(everything)
    assert await reporting.summary(T0, T0 + timedelta(days=2)) == everything
    # The capture day alone has the leads but not the deals, which closed the next day.
    assert await reporting.summary(T0, T0 + timedelta(hours=1)) == {"radio": (2, 0, 0, []), "tv": (1, 0, 0, [])}
    assert await reporting.summary(closed_at, None) == {"radio": (0, 1, 0, [(ILS, 469900)]), "tv": (0, 0, 1, [])}
    assert await reporting.summary(T0 + timedelta(days=3), T0 + timedelta(days=4)) == {}
    assert await reporting.summary(None, T0) == {}


async def test_a_redelivered_event_is_counted_once(reporting, nats_server) -> None:
    lead_id = new_id("lead")
    lead_event, deal_event = new_id("evt"), new_id("evt")
    events_before = sample("crm_reporting_events_total", {"event_type": "crm.leads.v1.LeadCaptured"})
    for nats_msg_id in (lead_event, "other-" + lead_event):
        await publish_event(
            nats_server, captured(lead_id, "radio", T0), event_id=lead_event, **{"Nats-Msg-Id": nats_msg_id}
        )
    deal = won_deal(lead_id, "radio", T0 + timedelta(hours=2))
    for nats_msg_id in (deal_event, "other-" + deal_event):
        await publish_event(nats_server, deal, event_id=deal_event, **{"Nats-Msg-Id": nats_msg_id})
    # Sentinels behind the duplicates on the same consumers: once they show, the copies were handled.
    tv_lead = new_id("lead")
    await publish_event(nats_server, captured(tv_lead, "tv", T0))
    await publish_event(nats_server, lost_deal(tv_lead, "tv", T0 + timedelta(hours=2)))

    await reporting.wait_for({"radio": (1, 1, 0, [(ILS, 469900)]), "tv": (1, 0, 1, [])})
    nc = await nats.connect(nats_server)
    try:
        js = nc.jetstream()
        for durable in ("reporting-from-leads", "reporting-from-sales"):
            info = await js.consumer_info("CRM", durable)
            assert info.delivered.consumer_seq >= 3, f"{durable} never received the duplicate"
    finally:
        await nc.close()
    assert (await reporting.fetch(select(func.count()).select_from(event_log)))[0][0] == 4
    events_after = sample("crm_reporting_events_total", {"event_type": "crm.leads.v1.LeadCaptured"})
    assert events_after - events_before == 2


async def test_assignment_before_capture_keeps_both(reporting, nats_server) -> None:
    lead_id = new_id("lead")
    speed_count = sample("crm_speed_to_lead_seconds_count")
    speed_sum = sample("crm_speed_to_lead_seconds_sum")
    await publish_event(
        nats_server,
        lead_events.LeadAssigned(
            lead_id=lead_id,
            rep_id="rep-dana",
            team_id="team-media",
            assign_time=to_timestamp(T0 + timedelta(seconds=90)),
        ),
    )
    fact_query = select(lead_facts).where(lead_facts.c.lead_id == lead_id)

    async def assigned() -> bool:
        rows = await reporting.fetch(fact_query)
        return bool(rows) and rows[0].rep_id == "rep-dana"

    await eventually(assigned)
    assert await reporting.summary() == {}  # not a lead until its capture is known
    assert sample("crm_speed_to_lead_seconds_count") == speed_count

    await publish_event(nats_server, captured(lead_id, "referral", T0, campaign="friend-brings-friend"))
    await reporting.wait_for({"referral": (1, 0, 0, [])})
    fact = (await reporting.fetch(fact_query))[0]
    assert (fact.source, fact.campaign, fact.rep_id) == ("referral", "friend-brings-friend", "rep-dana")
    assert (fact.captured_at, fact.assigned_at) == (T0, T0 + timedelta(seconds=90))
    assert fact.speed_to_assign_seconds == 90.0
    assert sample("crm_speed_to_lead_seconds_count") == speed_count + 1
    assert sample("crm_speed_to_lead_seconds_sum") == pytest.approx(speed_sum + 90.0)


async def test_order_and_notification_facts_converge_out_of_order(reporting, nats_server) -> None:
    order_id, deal_id, lead_id, message_id = new_id("order"), new_id("deal"), new_id("lead"), new_id("msg")
    shipped_at = T0 + timedelta(days=2)
    await publish_event(
        nats_server,
        order_events.OrderShipped(
            order_id=order_id,
            carrier="Israel Post",
            estimated_delivery_date=types_pb2.Date(year=2026, month=3, day=15),
            ship_time=to_timestamp(shipped_at),
        ),
    )
    order_query = select(order_facts).where(order_facts.c.order_id == order_id)
    await eventually(lambda: reporting.fetch(order_query))
    await publish_event(
        nats_server,
        order_events.OrderCreated(
            order_id=order_id, deal_id=deal_id, lead_id=lead_id, create_time=to_timestamp(T0 + timedelta(days=1))
        ),
    )
    await publish_event(
        nats_server,
        notification_events.NotificationSent(
            message_id=message_id,
            channel="sms",
            lead_id=lead_id,
            order_id=order_id,
            send_time=to_timestamp(shipped_at + timedelta(minutes=5)),
        ),
    )
    await eventually(lambda: reporting.fetch(select(notification_facts)))
    # An earlier failed attempt reported late must not overwrite the later success.
    await publish_event(
        nats_server,
        notification_events.NotificationFailed(
            message_id=message_id,
            channel="sms",
            order_id=order_id,
            reason="timeout",
            fail_time=to_timestamp(shipped_at + timedelta(minutes=1)),
        ),
    )
    await publish_event(nats_server, customer_events.CustomerCreated(customer_id=new_id("cust"), lead_id=lead_id))

    async def all_recorded() -> bool:
        return (await reporting.fetch(select(func.count()).select_from(event_log)))[0][0] == 5

    await eventually(all_recorded)
    order = (await reporting.fetch(order_query))[0]
    assert (order.deal_id, order.lead_id) == (deal_id, lead_id)
    assert (order.created_at, order.shipped_at) == (T0 + timedelta(days=1), shipped_at)
    assert order.estimated_delivery_date == date(2026, 3, 15)
    note = (await reporting.fetch(select(notification_facts)))[0]
    assert (note.message_id, note.status, note.lead_id, note.order_id) == (message_id, "sent", lead_id, order_id)


async def test_a_period_that_ends_before_it_starts_is_invalid(reporting) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await reporting.summary(T0 + timedelta(days=1), T0)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_time" in (err.value.details() or "")


async def test_ticket_events_reach_the_source_report_once_each(reporting, nats_server) -> None:
    """Support's ticket events and customers' CustomerCreated travel the bus into reporting (the
    NATS permission table lets reporting consume them); a redelivered breach counts once."""
    lead_id, customer_id, ticket_id = new_id("lead"), new_id("cust"), new_id("ticket")
    await publish_event(nats_server, captured(lead_id, "exhibition", T0))
    await publish_event(nats_server, customer_events.CustomerCreated(customer_id=customer_id, lead_id=lead_id))
    await publish_event(
        nats_server,
        support_events.TicketOpened(
            ticket_id=ticket_id,
            number=1001,
            customer_id=customer_id,
            kind=support_pb2.TICKET_KIND_COMPLAINT,
            occur_time=to_timestamp(T0 + timedelta(days=1)),
        ),
    )
    breach = support_events.TicketSlaBreached(ticket_id=ticket_id, customer_id=customer_id, level=2)
    breach_event = new_id("evt")
    for nats_msg_id in (breach_event, "other-" + breach_event):
        await publish_event(nats_server, breach, event_id=breach_event, **{"Nats-Msg-Id": nats_msg_id})
    await publish_event(
        nats_server, support_events.SurveyAnswered(ticket_id=ticket_id, customer_id=customer_id, score=3)
    )

    async def reported() -> bool:
        rows = (await reporting.stub.GetSourceReport(reporting_pb2.GetSourceReportRequest())).rows
        row = next((r for r in rows if r.source == "exhibition"), None)
        facts = await reporting.fetch(select(ticket_facts).where(ticket_facts.c.ticket_id == ticket_id))
        return (
            row is not None
            and (row.leads, row.tickets, row.complaints) == (1, 1, 1)
            and bool(facts)
            and facts[0].score == 3
        )

    await eventually(reported)
    nc = await nats.connect(nats_server)
    try:
        info = await nc.jetstream().consumer_info("CRM", "reporting-from-support")
        assert info.delivered.consumer_seq >= 2, "the duplicate breach was never delivered"
    finally:
        await nc.close()
    # Handled after the duplicate was delivered: still one breach.
    await eventually(lambda: _acked_all(nats_server, "reporting-from-support"))
    facts = await reporting.fetch(select(ticket_facts.c.breaches).where(ticket_facts.c.ticket_id == ticket_id))
    assert facts[0].breaches == 1


async def _acked_all(nats_url: str, durable: str) -> bool:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info("CRM", durable)
    finally:
        await nc.close()
    return info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_promotions_results_count_what_its_recipients_bought_within_the_window(reporting, nats_server) -> None:
    """Two recipients of a promotion: one wins a deal 3 days after her message (counted), the other
    40 days after (outside 30 days); a customer it never reached buys too (not counted)."""
    promotion = new_id("promo")
    people = [(new_id("lead"), new_id("cust")) for _ in range(3)]
    for lead_id, customer_id in people:
        await publish_event(nats_server, captured(lead_id, "radio", T0))
        await publish_event(nats_server, customer_events.CustomerCreated(customer_id=customer_id, lead_id=lead_id))
    for (_, customer_id), variant in zip(people[:2], ("A", "B"), strict=True):
        await publish_event(
            nats_server,
            notification_events.NotificationSent(
                message_id=new_id("msg"),
                channel="sms",
                recipient="+972500000000",
                customer_id=customer_id,
                promotion_id=promotion,
                send_time=to_timestamp(T0 + timedelta(days=1)),
                variant=variant,
            ),
        )
    # The second recipient comes in again (a web form) two days after her message: a lead it brought.
    await publish_event(
        nats_server,
        lead_events.LeadTouched(
            lead_id=people[1][0],
            touch_id=new_id("touch"),
            source="web_form",
            touch_time=to_timestamp(T0 + timedelta(days=3)),
        ),
    )
    await publish_event(nats_server, won_deal(people[0][0], "radio", T0 + timedelta(days=4)))
    await publish_event(nats_server, won_deal(people[1][0], "radio", T0 + timedelta(days=41)))
    await publish_event(nats_server, won_deal(people[2][0], "radio", T0 + timedelta(days=2)))

    async def results() -> reporting_pb2.GetPromotionResultsResponse | None:
        found = await reporting.stub.GetPromotionResults(
            reporting_pb2.GetPromotionResultsRequest(promotion_id=promotion)
        )
        deals = await reporting.fetch(select(func.count()).select_from(deal_facts))
        return found if deals[0][0] >= 3 and found.recipients == 2 and found.leads == 1 else None

    found = await eventually(results)
    assert (found.window_days, found.recipients, found.buyers, found.deals_won) == (30, 2, 1, 1)
    assert [(m.currency_code, m.amount_minor) for m in found.revenue] == [(ILS, 469900)]
    wider = await reporting.stub.GetPromotionResults(
        reporting_pb2.GetPromotionResultsRequest(promotion_id=promotion, window_days=60)
    )
    assert (wider.buyers, wider.deals_won, wider.revenue[0].amount_minor) == (2, 2, 939800)
    # Per A/B variant: A's recipient bought within 30 days, B's only within 60.
    per_variant = {
        v.variant: (v.recipients, v.leads, v.buyers, [m.amount_minor for m in v.revenue]) for v in found.variants
    }
    assert per_variant == {"A": (1, 0, 1, [469900]), "B": (1, 1, 0, [])}
    assert {v.variant: v.buyers for v in wider.variants} == {"A": 1, "B": 1}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await reporting.stub.GetPromotionResults(
            reporting_pb2.GetPromotionResultsRequest(promotion_id=promotion, window_days=400)
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_lead_is_scored_from_the_decided_leads_its_events_made_and_says_when_too_few(
    reporting, nats_server
) -> None:
    """Below 20 of an outcome: too_little_data with the counts. From the events of 20 won radio
    leads and 20 lost tv leads (the model retrains a second after the last training here): a radio
    lead scores above a tv lead, the source the first reason, and the holdout's AUC is reported."""
    early = await reporting.stub.ScoreLead(reporting_pb2.ScoreLeadRequest(lead_id="new-1", source="radio"))
    assert early.status == "too_little_data" and (early.model.won, early.model.lost) == (0, 0)
    assert early.model.needed_per_outcome == 20 and not early.reasons

    for i in range(20):
        radio, tv = new_id("lead"), new_id("lead")
        at = T0 + timedelta(hours=i)
        await publish_event(nats_server, captured(radio, "radio", at))
        await publish_event(nats_server, captured(tv, "tv", at))
        await publish_event(nats_server, won_deal(radio, "radio", at + timedelta(days=1)))
        await publish_event(nats_server, lost_deal(tv, "tv", at + timedelta(days=1, minutes=30)))
    await reporting.wait_for({"radio": (20, 20, 0, [(ILS, 20 * 469900)]), "tv": (20, 0, 20, [])})

    async def scored() -> reporting_pb2.ScoreLeadResponse | None:
        reply = await reporting.stub.ScoreLead(reporting_pb2.ScoreLeadRequest(lead_id="new-2", source="radio"))
        return reply if reply.status == "scored" else None

    radio_score = await eventually(scored, timeout=15)
    tv_score = await reporting.stub.ScoreLead(reporting_pb2.ScoreLeadRequest(lead_id="new-3", source="tv"))
    assert radio_score.probability > 0.9 and tv_score.probability < 0.1
    assert (radio_score.reasons[0].field, radio_score.reasons[0].value) == ("source", "radio")
    assert radio_score.reasons[0].factor > 1 > tv_score.reasons[0].factor
    assert (radio_score.model.won, radio_score.model.lost, radio_score.model.holdout_leads) == (20, 20, 8)
    assert radio_score.model.has_holdout_auc and radio_score.model.holdout_auc == 1.0
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await reporting.stub.ScoreLead(reporting_pb2.ScoreLeadRequest(source="radio"))
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def bought(lead_id: str, skus: list[str], at: datetime, deal_id: str = "") -> sales_events.DealClosed:
    price = types_pb2.Money(amount_minor=10000, currency_code=ILS)
    return sales_events.DealClosed(
        deal_id=deal_id or new_id("deal"),
        lead_id=lead_id,
        won=True,
        items=[
            *(types_pb2.LineItem(sku=sku, description=sku.lower(), quantity=1, unit_price=price) for sku in skus),
            types_pb2.LineItem(description="delivery", quantity=1, unit_price=price),
        ],
        total=types_pb2.Money(amount_minor=10000 * (len(skus) + 1), currency_code=ILS),
        source="web",
        close_time=to_timestamp(at),
    )


async def test_cross_sell_suggests_what_buyers_of_the_same_product_bought_and_tracks_offers(
    reporting, nats_server
) -> None:
    """From won deals' lines: 12 buyers of a sofa and a rug, 8 of a sofa alone, 10 of a lamp. A
    customer with a sofa is offered the rug (60 % of sofa buyers, lift 1.5); an offer's answer is
    recorded once per request; the report counts offers, answers, and the purchase that followed.
    Lines without a SKU are not products; a redelivered close adds no line."""
    early = await reporting.stub.SuggestProducts(
        reporting_pb2.SuggestProductsRequest(customer_id="c-1", lead_ids=["x"])
    )
    assert early.status == "too_little_data" and early.model.needed_buyers == 20 and not early.suggestions

    first = bought(new_id("lead"), ["SOFA", "RUG"], T0)
    for event in (first, first):  # a redelivery
        await publish_event(nats_server, event)
    for i in range(11):
        await publish_event(nats_server, bought(new_id("lead"), ["SOFA", "RUG"], T0 + timedelta(hours=i)))
    for i in range(8):
        await publish_event(nats_server, bought(new_id("lead"), ["SOFA"], T0 + timedelta(hours=i)))
    for i in range(10):
        await publish_event(nats_server, bought(new_id("lead"), ["LAMP"], T0 + timedelta(hours=i)))
    customer, other = new_id("lead"), new_id("lead")
    await publish_event(nats_server, bought(customer, ["SOFA"], T0 - timedelta(days=90)))
    await publish_event(nats_server, bought(other, ["SOFA"], T0 - timedelta(days=30)))

    async def suggested() -> reporting_pb2.SuggestProductsResponse | None:
        reply = await reporting.stub.SuggestProducts(
            reporting_pb2.SuggestProductsRequest(customer_id="c-1", lead_ids=[customer])
        )
        return reply if reply.status == "suggested" and reply.model.buyers == 32 else None

    found = await eventually(suggested, timeout=15)
    (rug,) = found.suggestions
    assert (rug.sku, rug.name, rug.because_sku, rug.because_name) == ("RUG", "rug", "SOFA", "sofa")
    assert rug.because_bought_time.ToDatetime(UTC) == T0 - timedelta(days=90)
    # 12 of the 22 sofa buyers (the customer and the other one count) bought the rug.
    assert (rug.buyers_of_both, rug.buyers_of_because) == (12, 22)
    assert rug.confidence == pytest.approx(round(12 / 22, 4)) and rug.lift == pytest.approx(
        round(12 / 22 / (12 / 32), 3)
    )
    assert not rug.HasField("last_offer")
    lines = await reporting.fetch(select(purchase_facts).where(purchase_facts.c.deal_id == first.deal_id))
    assert [(r.line, r.sku) for r in lines] == [(1, "SOFA"), (2, "RUG")]

    with caller.acting_as("agent-rina", "req-1"):
        offer = reporting_pb2.RecordCrossSellOfferRequest(
            customer_id="c-1", lead_ids=[customer], sku="RUG", response="accepted", request_id="offer-1"
        )
        recorded = (await reporting.stub.RecordCrossSellOffer(offer)).offer
        again = (await reporting.stub.RecordCrossSellOffer(offer)).offer
    assert again.id == recorded.id
    assert (recorded.user_id, recorded.antecedent_sku, recorded.response) == ("agent-rina", "SOFA", "accepted")
    # The same key for another customer reveals nothing of the first record.
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await reporting.stub.RecordCrossSellOffer(
            reporting_pb2.RecordCrossSellOfferRequest(
                customer_id="c-9", sku="RUG", response="declined", request_id="offer-1"
            )
        )
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS and "RUG" not in str(reused.value.details())
    assert recorded.confidence == pytest.approx(round(12 / 22, 4))
    await reporting.stub.RecordCrossSellOffer(
        reporting_pb2.RecordCrossSellOfferRequest(customer_id="c-2", lead_ids=[other], sku="RUG", response="declined")
    )
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await reporting.stub.RecordCrossSellOffer(
            reporting_pb2.RecordCrossSellOfferRequest(customer_id="c-1", sku="RUG", response="maybe")
        )
    assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "response" in str(wrong.value.details())
    shown = await reporting.stub.SuggestProducts(
        reporting_pb2.SuggestProductsRequest(customer_id="c-1", lead_ids=[customer])
    )
    assert shown.suggestions[0].last_offer.id == recorded.id

    # The customer buys the rug: the accepted offer shows in the sales.
    await publish_event(nats_server, bought(customer, ["RUG"], datetime.now(UTC)))

    async def reported() -> reporting_pb2.CrossSellReportRow | None:
        reply = await reporting.stub.GetCrossSellReport(reporting_pb2.GetCrossSellReportRequest())
        row = reply.rows[0] if reply.rows else None
        return row if row is not None and row.bought_after == 1 else None

    row = await eventually(reported, timeout=15)
    assert (row.sku, row.name, row.offers, row.accepted, row.declined) == ("RUG", "rug", 2, 1, 1)
    bought_now = await reporting.stub.SuggestProducts(
        reporting_pb2.SuggestProductsRequest(customer_id="c-1", lead_ids=[customer])
    )
    assert all(s.sku != "RUG" for s in bought_now.suggestions)
    with pytest.raises(grpc.aio.AioRpcError) as too_long:
        await reporting.stub.GetCrossSellReport(reporting_pb2.GetCrossSellReportRequest(window_days=400))
    assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def a_customer(
    nats_server: str, *, rep: str, team: str, bought_days_ago: int, complaints: int = 0
) -> tuple[str, str]:
    """A customer (acquired by a lead of the rep's team) who won a deal that many days ago;
    (customer id, lead id)."""
    now = datetime.now(UTC)
    customer_id, lead_id = new_id("cust"), new_id("lead")
    await publish_event(nats_server, captured(lead_id, "radio", now - timedelta(days=bought_days_ago + 10)))
    await publish_event(
        nats_server,
        lead_events.LeadAssigned(
            lead_id=lead_id,
            rep_id=rep,
            team_id=team,
            assign_time=to_timestamp(now - timedelta(days=bought_days_ago + 10)),
        ),
    )
    await publish_event(nats_server, customer_events.CustomerCreated(customer_id=customer_id, lead_id=lead_id))
    await publish_event(nats_server, won_deal(lead_id, "radio", now - timedelta(days=bought_days_ago)))
    for _ in range(complaints):
        await publish_event(
            nats_server,
            support_events.TicketOpened(
                ticket_id=new_id("ticket"),
                customer_id=customer_id,
                kind=support_pb2.TICKET_KIND_COMPLAINT,
                occur_time=to_timestamp(now - timedelta(days=3)),
            ),
        )
    return customer_id, lead_id


async def replayed_by_another_team(reporting: Reporting, list_id: str, request_id: str) -> None:
    """Another team's manager replaying the key learns nothing of the list."""
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await reporting.retention.CreateRetentionList(
            retention_pb2.CreateRetentionListRequest(team_id="west", request_id=request_id)
        )
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS and list_id not in str(reused.value.details())


async def refused_answers(
    reporting: Reporting, list_id: str, entries: list[retention_pb2.RetentionEntry], mine: retention_pb2.RetentionEntry
) -> None:
    """Another rep's call is not found; a control entry is not called; a made-up answer is wrong;
    another team's manager does not find the list."""
    someone_else = next(e for e in entries if e.rep_id != mine.rep_id)
    refusals = [
        (someone_else.customer_id, "reached", mine.rep_id, grpc.StatusCode.NOT_FOUND),
        (next(e for e in entries if e.control).customer_id, "reached", "", grpc.StatusCode.FAILED_PRECONDITION),
        (mine.customer_id, "maybe", mine.rep_id, grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for customer_id, response, rep_id, code in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await reporting.retention.RecordRetentionResponse(
                retention_pb2.RecordRetentionResponseRequest(
                    list_id=list_id, customer_id=customer_id, response=response, rep_id=rep_id
                )
            )
        assert refused.value.code() == code
    with pytest.raises(grpc.aio.AioRpcError) as other_team:
        await reporting.retention.GetRetentionList(
            retention_pb2.GetRetentionListRequest(list_id=list_id, team_id="west")
        )
    assert other_team.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_retention_list_holds_out_a_control_group_and_reports_what_calling_brought(
    reporting, nats_server
) -> None:
    """Six customers of team east who last bought 400 days ago (one with two complaints since),
    two who bought last week, one at risk in another team: the team's list takes the six, highest
    risk first, holds two out at random, gives owners their own and the rest in turn; a rep sees
    and answers only their calls; a called customer buying again shows as retained revenue."""
    at_risk = [
        await a_customer(nats_server, rep="rep-a" if i < 3 else "rep-gone", team="east", bought_days_ago=400)
        for i in range(5)
    ]
    angry = await a_customer(nats_server, rep="rep-gone", team="east", bought_days_ago=400, complaints=2)
    loyal = [await a_customer(nats_server, rep="rep-a", team="east", bought_days_ago=7) for _ in range(2)]
    await a_customer(nats_server, rep="rep-w", team="west", bought_days_ago=400)

    async def known() -> reporting_pb2.GetCustomerRiskResponse | None:
        risk = await reporting.retention.GetCustomerRisk(retention_pb2.GetCustomerRiskRequest(customer_id=angry[0]))
        return risk if risk.status == "scored" and len(risk.reasons) >= 3 else None

    risk = await eventually(known, timeout=15)
    assert risk.band == "high" and risk.model == "rules"
    assert [(r.signal, r.value) for r in risk.reasons][:2] == [("no_purchase", 400), ("complaints", 2)]
    calm = await reporting.retention.GetCustomerRisk(retention_pb2.GetCustomerRiskRequest(customer_id=loyal[0][0]))
    assert (calm.status, calm.band, list(calm.reasons)) == ("scored", "low", [])
    assert (
        await reporting.retention.GetCustomerRisk(retention_pb2.GetCustomerRiskRequest(customer_id="no"))
    ).status == ("no_purchases")

    ask = retention_pb2.CreateRetentionListRequest(
        name="שבוע 49",
        threshold=0.3,
        control_share=0.34,
        has_control_share=True,
        rep_ids=["rep-b", "rep-a"],
        team_id="east",
        request_id="list-1",
    )
    with caller.acting_as("manager-noa", "req-list"):
        made = (await reporting.retention.CreateRetentionList(ask)).list
        again = (await reporting.retention.CreateRetentionList(ask)).list
    assert again.id == made.id and (made.called, made.control, made.created_by) == (4, 2, "manager-noa")
    await replayed_by_another_team(reporting, made.id, "list-1")
    whole = await reporting.retention.GetRetentionList(retention_pb2.GetRetentionListRequest(list_id=made.id))
    entries = list(whole.entries)
    assert {e.customer_id for e in entries} == {c for c, _ in [*at_risk, angry]}
    assert entries[0].customer_id == angry[0] and entries[0].offer == "service_recovery"
    assert [e.position for e in entries] == [1, 2, 3, 4, 5, 6]
    called = [e for e in entries if not e.control]
    owners = {c: ("rep-a" if i < 3 else "rep-gone") for i, (c, _) in enumerate(at_risk)} | {angry[0]: "rep-gone"}
    assert all(e.rep_id == "rep-a" for e in called if owners[e.customer_id] == "rep-a")
    assert {e.rep_id for e in called if owners[e.customer_id] != "rep-a"} <= {"rep-a", "rep-b"}
    assert all(e.rep_id == "" for e in entries if e.control)

    mine = called[0]
    rep_view = await reporting.retention.GetRetentionList(
        retention_pb2.GetRetentionListRequest(list_id=made.id, rep_id=mine.rep_id)
    )
    assert {e.customer_id for e in rep_view.entries} == {e.customer_id for e in called if e.rep_id == mine.rep_id}
    answered = await reporting.retention.RecordRetentionResponse(
        retention_pb2.RecordRetentionResponseRequest(
            list_id=made.id, customer_id=mine.customer_id, response="offer_accepted", rep_id=mine.rep_id
        )
    )
    assert answered.entry.response == "offer_accepted"
    await refused_answers(reporting, made.id, entries, mine)

    # The called customer buys again: retained revenue against a control group that did not.
    buyer_lead = dict([*at_risk, angry])[mine.customer_id]
    await publish_event(nats_server, won_deal(buyer_lead, "radio", datetime.now(UTC)))

    async def retained() -> retention_pb2.GetRetentionReportResponse | None:
        found = await reporting.retention.GetRetentionReport(retention_pb2.GetRetentionReportRequest(list_id=made.id))
        return found if found.groups[0].buyers == 1 else None

    found = await eventually(retained, timeout=15)
    called_group, control_group = found.groups
    assert (called_group.group, called_group.customers, dict(called_group.responses)) == (
        "called",
        4,
        {"offer_accepted": 1},
    )
    assert [(m.currency_code, m.amount_minor) for m in called_group.revenue] == [(ILS, 469900)]
    assert (control_group.group, control_group.customers, control_group.buyers) == ("control", 2, 0)
    assert [(m.currency_code, m.amount_minor) for m in found.retained_revenue] == [(ILS, 469900 // 4 * 4)]

    # This week's customers are not listed again; a wrong field is named.
    second = await reporting.retention.CreateRetentionList(
        retention_pb2.CreateRetentionListRequest(threshold=0.3, team_id="east", rep_ids=["rep-a"])
    )
    assert (second.list.called, second.list.control) == (0, 0)
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await reporting.retention.CreateRetentionList(
            retention_pb2.CreateRetentionListRequest(control_share=0.9, has_control_share=True)
        )
    assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "control_share" in str(wrong.value.details())


async def test_with_two_windows_of_history_the_learned_model_scores_and_says_how_it_validated(
    reporting, nats_server
) -> None:
    """A seeded two-year history written straight into the fact tables (the events' path is the
    other tests'): regulars buy every 60 days to this day, others stop at a random moment. With
    the model's minimum history, risks come from logistic regression validated on the later
    window: a regular is low, one silent for a year high, and the list says which model made it."""
    rng = random.Random(20)
    now = datetime.now(UTC)
    customers, deals = [], []
    for n in range(160):
        customer_id, lead_id = f"syn-c{n}", f"syn-l{n}"
        customers.append({"customer_id": customer_id, "lead_id": lead_id, "created_at": now - timedelta(days=720)})
        stops = now if n % 2 == 0 else now - timedelta(days=rng.randint(30, 700))
        at = now - timedelta(days=720 - rng.randint(0, 30))
        while at < stops:
            deals.append(
                {
                    "deal_id": f"syn-d{len(deals)}",
                    "lead_id": lead_id,
                    "won": True,
                    "total_minor": 100000,
                    "currency_code": ILS,
                    "closed_at": at,
                }
            )
            at += timedelta(days=rng.randint(45, 75))
    async with reporting.service.db.unit_of_work() as uow:
        await uow.conn.execute(customer_facts.insert(), customers)
        await uow.conn.execute(deal_facts.insert(), deals)

    regular = await reporting.retention.GetCustomerRisk(retention_pb2.GetCustomerRiskRequest(customer_id="syn-c0"))
    assert regular.model == "logistic_regression", regular.fallback_reason
    v = regular.validation
    assert v.window_days == 180 and v.customers > 0 and 0 < v.churned < v.customers
    assert v.auc > 0.8 and v.top_decile_lift > 1 and len(v.calibration) == 5
    silent = next(
        c["customer_id"]
        for c, last in (
            (c, max((d["closed_at"] for d in deals if d["lead_id"] == c["lead_id"]), default=now)) for c in customers
        )
        if now - last > timedelta(days=365)
    )
    gone = await reporting.retention.GetCustomerRisk(retention_pb2.GetCustomerRiskRequest(customer_id=silent))
    assert gone.band == "high" and regular.band == "low" and gone.risk > regular.risk
    assert gone.reasons[0].signal in ("no_purchase", "no_contact", "fewer_purchases")
    made = await reporting.retention.CreateRetentionList(retention_pb2.CreateRetentionListRequest(threshold=0.6))
    assert made.list.model == "logistic_regression" and made.list.called > 0


async def test_with_too_short_a_history_the_rules_answer_and_say_why(reporting, nats_server) -> None:
    customer_id, _ = await a_customer(nats_server, rep="rep-a", team="east", bought_days_ago=30)

    async def scored() -> retention_pb2.GetCustomerRiskResponse | None:
        found = await reporting.retention.GetCustomerRisk(retention_pb2.GetCustomerRiskRequest(customer_id=customer_id))
        return found if found.status == "scored" else None

    found = await eventually(scored, timeout=15)
    assert found.model == "rules" and "the model needs 360" in found.fallback_reason
    assert not found.HasField("validation")
