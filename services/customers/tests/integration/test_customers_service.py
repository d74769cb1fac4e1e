"""The customers service in process against real PostgreSQL and NATS JetStream (conftest.py)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import nats
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from crm.common.v1 import types_pb2
from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm.leads.v1 import events_pb2 as leads_events
from crm.notifications.v1 import events_pb2 as notifications_events
from crm.orders.v1 import events_pb2 as orders_events
from crm.reporting.v1 import events_pb2 as reporting_events
from crm.reporting.v1 import retention_pb2
from crm.sales.v1 import events_pb2 as sales_events
from crm.support.v1 import events_pb2 as support_events
from crm.support.v1 import support_pb2
from crm_customers.db import messaging
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, publish_event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def lead_captured(
    lead_id: str, *, phone: str = "", email: str = "", source: str = "radio", campaign: str = "", at: datetime = T0
) -> leads_events.LeadCaptured:
    return leads_events.LeadCaptured(
        lead_id=lead_id,
        full_name="דנה כהן",
        phone_number=phone,
        email=email,
        source=source,
        campaign=campaign,
        locale="he-IL",
        capture_time=to_timestamp(at),
    )


async def customer_of(stub: customers_pb2_grpc.CustomersServiceStub, lead_id: str) -> customers_pb2.Customer | None:
    found = (await stub.ListCustomers(customers_pb2.ListCustomersRequest(lead_id=lead_id))).customers
    return found[0] if found else None


async def wait_for_customer(stub: customers_pb2_grpc.CustomersServiceStub, lead_id: str) -> customers_pb2.Customer:
    async def check() -> customers_pb2.Customer | None:
        return await customer_of(stub, lead_id)

    customer: customers_pb2.Customer = await eventually(check)
    return customer


async def timeline(stub: customers_pb2_grpc.CustomersServiceStub, customer_id: str) -> list[Any]:
    response = await stub.ListTimeline(customers_pb2.ListTimelineRequest(customer_id=customer_id))
    return list(response.entries)


def new_id() -> str:
    return str(uuid.uuid4())


async def test_leads_with_one_phone_or_email_become_one_customer(customers, nats_server) -> None:
    first, second, by_email = new_id(), new_id(), new_id()
    await publish_event(nats_server, lead_captured(first, phone="+972501234567", email="dana@example.co.il"))
    await publish_event(nats_server, lead_captured(second, phone="+972501234567", source="tv"))
    await publish_event(nats_server, lead_captured(by_email, email=" DANA@Example.co.il"))

    async def linked() -> customers_pb2.Customer | None:
        customer = await customer_of(customers.stub, first)
        return customer if customer and len(customer.lead_ids) == 3 else None

    customer = await eventually(linked)
    assert list(customer.lead_ids) == [first, second, by_email]
    assert customer.phone_number == "+972501234567" and customer.email == "dana@example.co.il"
    everyone = (await customers.stub.ListCustomers(customers_pb2.ListCustomersRequest())).customers
    assert [c.id for c in everyone] == [customer.id]
    assert len(await timeline(customers.stub, customer.id)) == 3

    nc = await nats.connect(nats_server)
    try:
        jsm = nc.jetstream()

        async def published() -> dict[str, int] | None:
            info = await jsm.stream_info("CRM", subjects_filter="crm.customers.>")
            return info.state.subjects or None

        assert await eventually(published) == {"crm.customers.customer_created": 1}
    finally:
        await nc.close()


async def test_touches_from_every_domain_form_one_timeline_in_time_order(customers, nats_server) -> None:
    lead_id = new_id()
    capture_id = await publish_event(
        nats_server, lead_captured(lead_id, phone="+972521112233", source="web_form", campaign="Winter")
    )
    customer = await wait_for_customer(customers.stub, lead_id)
    # Published out of order: the timeline orders by when each touch happened, not by arrival.
    await publish_event(
        nats_server,
        notifications_events.NotificationSent(
            message_id="m-1",
            channel="sms",
            recipient="+972521112233",
            lead_id=lead_id,
            body="ההזמנה שלך תגיע ב-2026-11-05",
            send_time=to_timestamp(T0 + timedelta(days=1, minutes=1)),
        ),
    )
    await publish_event(
        nats_server,
        orders_events.OrderShipped(
            order_id="o-1",
            lead_id=lead_id,
            carrier="Israel Post",
            tracking_number="RR123456789IL",
            estimated_delivery_date=types_pb2.Date(year=2026, month=11, day=5),
            ship_time=to_timestamp(T0 + timedelta(days=1)),
        ),
    )
    deal_id = await publish_event(
        nats_server,
        sales_events.DealClosed(
            deal_id="d-1",
            lead_id=lead_id,
            won=True,
            total=types_pb2.Money(amount_minor=469900, currency_code="ILS"),
            close_time=to_timestamp(T0 + timedelta(hours=2)),
        ),
    )

    async def complete() -> list[Any] | None:
        entries = await timeline(customers.stub, customer.id)
        return entries if len(entries) == 4 else None

    entries = await eventually(complete)
    assert [(e.kind, e.channel) for e in entries] == [
        (customers_pb2.TOUCH_KIND_LEAD_CAPTURED, "web"),
        (customers_pb2.TOUCH_KIND_DEAL_WON, "system"),
        (customers_pb2.TOUCH_KIND_ORDER_SHIPPED, "system"),
        (customers_pb2.TOUCH_KIND_SMS_SENT, "sms"),
    ]
    assert [e.summary for e in entries] == [
        "Lead captured from web_form, campaign Winter",
        "Deal won: 4,699.00 ILS",
        "Order shipped with Israel Post, tracking RR123456789IL, arrives 2026-11-05",
        "ההזמנה שלך תגיע ב-2026-11-05",
    ]
    assert entries[0].event_id == capture_id and entries[1].event_id == deal_id
    assert entries[0].occur_time.ToDatetime(tzinfo=UTC) == T0

    page1 = await customers.stub.ListTimeline(customers_pb2.ListTimelineRequest(customer_id=customer.id, page_size=3))
    page2 = await customers.stub.ListTimeline(
        customers_pb2.ListTimelineRequest(customer_id=customer.id, page_size=3, page_token=page1.next_page_token)
    )
    assert [e.id for e in [*page1.entries, *page2.entries]] == [e.id for e in entries]
    assert page2.next_page_token == ""


async def test_a_redelivered_lead_captured_makes_one_entry(customers, nats_server) -> None:
    lead_id, later_lead = new_id(), new_id()
    message = lead_captured(lead_id, phone="+972541230000")
    event_id = await publish_event(nats_server, message)
    await publish_event(nats_server, message, event_id=event_id, **{"Nats-Msg-Id": f"{event_id}-again"})
    # The consumer handles its subject in stream order: once the later lead is in, so is the copy.
    await publish_event(nats_server, lead_captured(later_lead, phone="+972541239999"))
    await wait_for_customer(customers.stub, later_lead)

    customer = await wait_for_customer(customers.stub, lead_id)
    entries = await timeline(customers.stub, customer.id)
    assert [e.event_id for e in entries] == [event_id]
    assert list(customer.lead_ids) == [lead_id]
    assert len((await customers.stub.ListCustomers(customers_pb2.ListCustomersRequest())).customers) == 2


async def test_a_deal_closed_before_its_lead_is_known_waits_for_it_without_counting_deliveries(
    customers_server, nats_server, caplog: pytest.LogCaptureFixture
) -> None:
    """The lead's LeadCaptured comes through another consumer, which may lag far behind (after a
    restart it only gets back the events its dead process held once AckWait is over): the
    DealClosed is held and retried, never redelivered, so it outlasts consumer_max_deliver."""
    caplog.set_level(logging.INFO, logger="crm_kit.bus")
    async with customers_server() as customers:  # consumer_max_deliver=3
        lead_id = new_id()
        await publish_event(
            nats_server,
            sales_events.DealClosed(
                deal_id="d-2", lead_id=lead_id, won=False, lost_reason="price", close_time=to_timestamp(T0)
            ),
        )

        async def held_more_often_than_max_deliver() -> bool:
            return sum(r.getMessage() == "event not ready yet; holding it for a retry" for r in caplog.records) > 3

        await eventually(held_more_often_than_max_deliver)
        await publish_event(nats_server, lead_captured(lead_id, phone="+972531110000", at=T0 - timedelta(days=3)))
        customer = await wait_for_customer(customers.stub, lead_id)

        async def deal_entry() -> list[Any] | None:
            entries = await timeline(customers.stub, customer.id)
            return entries if len(entries) == 2 else None

        entries = await eventually(deal_entry)
        assert [(e.kind, e.summary) for e in entries] == [
            (customers_pb2.TOUCH_KIND_LEAD_CAPTURED, "Lead captured from radio"),
            (customers_pb2.TOUCH_KIND_DEAL_LOST, "Deal lost: price"),
        ]
        assert await dead_letters(customers.database_url) == []
        nc = await nats.connect(nats_server)
        try:

            async def acked() -> Any:
                info = await nc.jetstream().consumer_info("CRM", "customers-from-sales")
                return info if info.num_ack_pending == 0 else None

            assert (await eventually(acked)).num_redelivered == 0
        finally:
            await nc.close()


async def dead_letters(database_url: str) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            table = messaging.dead_letters
            return list(
                (
                    await conn.execute(
                        select(table.c.consumer, table.c.event_id, table.c.payload, table.c.deliveries).order_by(
                            table.c.id
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()


async def test_a_garbage_body_is_dead_lettered_and_the_next_event_is_handled(customers, nats_server) -> None:
    garbage_id = new_id()
    nc = await nats.connect(nats_server)
    try:
        await nc.jetstream().publish(
            "crm.leads.lead_captured",
            b"\xff\xff",
            headers={"ce-id": garbage_id, "ce-type": "crm.leads.v1.LeadCaptured", "Nats-Msg-Id": garbage_id},
        )
    finally:
        await nc.close()
    lead_id = new_id()
    await publish_event(nats_server, lead_captured(lead_id, phone="+972501110000"))

    await wait_for_customer(customers.stub, lead_id)
    letters = await eventually(lambda: dead_letters(customers.database_url))
    assert [(d.consumer, d.event_id, d.payload) for d in letters] == [
        ("customers-lead-captured", garbage_id, b"\xff\xff")
    ]


async def test_a_deal_for_a_lead_that_never_comes_is_dead_lettered(customers_server, nats_server) -> None:
    async with customers_server(consumer_retry_later_max_seconds=1) as customers:
        event_id = await publish_event(nats_server, sales_events.DealClosed(deal_id="d-3", lead_id=new_id(), won=False))

        letters = await eventually(lambda: dead_letters(customers.database_url))
    # Held and retried for consumer_retry_later_max_seconds within its one delivery.
    assert [(d.consumer, d.event_id, d.deliveries) for d in letters] == [("customers-deal-closed", event_id, 1)]


async def test_contact_info_by_lead_or_customer(customers, nats_server) -> None:
    lead_id, email_only = new_id(), new_id()
    await publish_event(nats_server, lead_captured(lead_id, phone="+989123456789", email="Ali@Example.ir"))
    await publish_event(nats_server, lead_captured(email_only, email="noa@example.co.il"))
    customer = await wait_for_customer(customers.stub, lead_id)

    info = await customers.stub.GetContactInfo(customers_pb2.GetContactInfoRequest(lead_id=lead_id))
    assert info.customer_id == customer.id
    assert (info.phone_number, info.email, info.locale) == ("+989123456789", "ali@example.ir", "he-IL")
    assert info.transactional_sms_allowed and not info.marketing_sms_consent
    assert await customers.stub.GetContactInfo(customers_pb2.GetContactInfoRequest(customer_id=customer.id)) == info

    await wait_for_customer(customers.stub, email_only)
    no_phone = await customers.stub.GetContactInfo(customers_pb2.GetContactInfoRequest(lead_id=email_only))
    assert no_phone.email == "noa@example.co.il" and not no_phone.transactional_sms_allowed

    with pytest.raises(grpc.aio.AioRpcError) as neither:
        await customers.stub.GetContactInfo(customers_pb2.GetContactInfoRequest())
    assert neither.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for call in (
        customers.stub.GetContactInfo(customers_pb2.GetContactInfoRequest(lead_id=new_id())),
        customers.stub.GetCustomer(customers_pb2.GetCustomerRequest(customer_id=new_id())),
        customers.stub.ListTimeline(customers_pb2.ListTimelineRequest(customer_id=new_id())),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await call
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_customers_pages_with_a_cursor(customers, nats_server) -> None:
    lead_ids = [new_id() for _ in range(5)]
    for i, lead_id in enumerate(lead_ids):
        await publish_event(nats_server, lead_captured(lead_id, phone=f"+97250000000{i}"))
    for lead_id in lead_ids:
        await wait_for_customer(customers.stub, lead_id)

    page1 = await customers.stub.ListCustomers(customers_pb2.ListCustomersRequest(page_size=3))
    page2 = await customers.stub.ListCustomers(
        customers_pb2.ListCustomersRequest(page_size=3, page_token=page1.next_page_token)
    )
    assert len(page1.customers) == 3 and len(page2.customers) == 2 and page2.next_page_token == ""
    assert sorted(lid for c in [*page1.customers, *page2.customers] for lid in c.lead_ids) == sorted(lead_ids)


async def test_the_service_desk_s_tickets_and_surveys_join_the_timeline(customers, nats_server) -> None:
    lead_id = new_id()
    await publish_event(nats_server, lead_captured(lead_id, phone="+972521117788"))
    customer = await wait_for_customer(customers.stub, lead_id)
    await publish_event(
        nats_server,
        support_events.TicketOpened(
            ticket_id="t-1",
            number=1042,
            customer_id=customer.id,
            order_id="o-9",
            kind=support_pb2.TICKET_KIND_COMPLAINT,
            channel=support_pb2.TICKET_CHANNEL_PHONE,
            subject="הספה הגיעה שבורה",
            occur_time=to_timestamp(T0 + timedelta(days=2)),
        ),
    )
    await publish_event(
        nats_server,
        support_events.TicketResolved(
            ticket_id="t-1",
            number=1042,
            customer_id=customer.id,
            kind=support_pb2.TICKET_KIND_COMPLAINT,
            resolution_sla_met=True,
            survey_token="not-kept-by-customers",
            occur_time=to_timestamp(T0 + timedelta(days=3)),
        ),
    )
    await publish_event(
        nats_server,
        support_events.SurveyAnswered(
            ticket_id="t-1",
            number=1042,
            customer_id=customer.id,
            score=5,
            occur_time=to_timestamp(T0 + timedelta(days=4)),
        ),
    )

    # The resolution clock's warning, its breach and "long past it": only the breach is the customer's.
    for level, hours in ((1, 4), (2, 6), (3, 10)):
        await publish_event(
            nats_server,
            support_events.TicketSlaBreached(
                ticket_id="t-1",
                number=1042,
                customer_id=customer.id,
                metric=support_pb2.SLA_METRIC_RESOLUTION,
                level=level,
                occur_time=to_timestamp(T0 + timedelta(days=2, hours=hours)),
            ),
        )

    async def complete() -> list[Any] | None:
        entries = await timeline(customers.stub, customer.id)
        return entries if len(entries) == 5 else None

    entries = (await eventually(complete))[1:]
    assert [(e.kind, e.channel) for e in entries] == [
        (customers_pb2.TOUCH_KIND_TICKET_OPENED, "phone"),
        (customers_pb2.TOUCH_KIND_TICKET_SLA_BREACHED, "system"),
        (customers_pb2.TOUCH_KIND_TICKET_RESOLVED, "system"),
        (customers_pb2.TOUCH_KIND_SURVEY_ANSWERED, "web"),
    ]
    breach = entries.pop(1)
    assert breach.summary == "Ticket 1042: resolution target missed"
    assert dict(breach.facts) == {"number": "1042", "ticket_id": "t-1", "sla_metric": "resolution", "sla_met": "no"}
    assert entries[0].summary == "Ticket 1042 opened (complaint): הספה הגיעה שבורה"
    assert dict(entries[0].facts) == {
        "number": "1042",
        "ticket_id": "t-1",
        "ticket_kind": "complaint",
        "subject": "הספה הגיעה שבורה",
        "order_id": "o-9",
    }
    assert dict(entries[1].facts)["sla_met"] == "yes" and "not-kept" not in str(entries[1].facts)
    assert dict(entries[2].facts)["score"] == "5"


async def test_the_summary_adds_up_the_timeline(customers, nats_server) -> None:
    lead_id = new_id()
    await publish_event(nats_server, lead_captured(lead_id, phone="+972521117799"))
    customer = await wait_for_customer(customers.stub, lead_id)
    for n, (amount, currency) in enumerate(((469900, "ILS"), (10000, "ILS"), (5_000_000, "IRR"))):
        await publish_event(
            nats_server,
            sales_events.DealClosed(
                deal_id=f"d-{n}",
                lead_id=lead_id,
                won=True,
                total=types_pb2.Money(amount_minor=amount, currency_code=currency),
                close_time=to_timestamp(T0 + timedelta(days=n + 1)),
            ),
        )
    await publish_event(
        nats_server, sales_events.DealClosed(deal_id="d-lost", lead_id=lead_id, won=False, lost_reason="price")
    )
    for score, n in ((5, 1), (2, 2)):
        await publish_event(
            nats_server,
            support_events.SurveyAnswered(
                ticket_id=f"t-{n}", number=n, customer_id=customer.id, score=score, occur_time=to_timestamp(T0)
            ),
        )

    async def complete() -> customers_pb2.CustomerSummary | None:
        reply = await customers.stub.GetCustomerSummary(
            customers_pb2.GetCustomerSummaryRequest(customer_id=customer.id)
        )
        return reply.summary if reply.summary.touches == 7 else None

    summary = await eventually(complete)
    assert [(m.currency_code, m.amount_minor) for m in summary.lifetime_value] == [("ILS", 479900), ("IRR", 5_000_000)]
    assert (summary.deals_won, summary.deals_lost, summary.surveys_answered) == (3, 1, 2)
    assert summary.satisfaction_average == 3.5
    assert summary.first_contact_time.ToDatetime(tzinfo=UTC) == T0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await customers.stub.GetCustomerSummary(customers_pb2.GetCustomerSummaryRequest(customer_id="nobody"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_risk_band_change_joins_the_timeline_and_an_unknown_customer_is_skipped(customers, nats_server) -> None:
    """CustomerAtRisk (reporting's hourly scoring) is an entry with the band before and now, the risk
    and its strongest reasons; one for a customer this service does not know (reporting's seeded
    demo history) is acknowledged and leaves nothing."""
    lead_id = new_id()
    await publish_event(nats_server, lead_captured(lead_id, phone="+972521117799"))
    customer = await wait_for_customer(customers.stub, lead_id)
    reasons = [
        retention_pb2.RiskReason(signal="no_purchase", points=40, value=130.4),
        retention_pb2.RiskReason(signal="complaints", points=20, value=2),
        retention_pb2.RiskReason(signal="sla_breaches", points=10, value=1),
        retention_pb2.RiskReason(signal="lost_deals", points=5, value=1),
    ]
    await publish_event(
        nats_server,
        reporting_events.CustomerAtRisk(customer_id="demo-customer-00001", band="high", risk=0.9),
    )
    await publish_event(
        nats_server,
        reporting_events.CustomerAtRisk(
            customer_id=customer.id,
            band="high",
            previous_band="medium",
            risk=0.734,
            reasons=reasons,
            model="logistic_regression",
            score_time=to_timestamp(T0 + timedelta(days=9)),
        ),
    )

    async def risk_entry() -> Any:
        entries = await timeline(customers.stub, customer.id)
        found = [e for e in entries if e.kind == customers_pb2.TOUCH_KIND_RISK_CHANGED]
        return found[0] if found else None

    entry = await eventually(risk_entry)
    assert dict(entry.facts) == {
        "band": "high",
        "previous_band": "medium",
        "risk_percent": "73",
        "reasons": "no_purchase:130,complaints:2,sla_breaches:1",
        "model": "logistic_regression",
    }
    assert entry.summary == "Churn risk medium -> high (73%)" and entry.channel == "system"
