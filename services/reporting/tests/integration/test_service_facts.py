"""Ticket, survey, customer and consent facts from support's and customers' events against real
PostgreSQL, through the handlers: one row per ticket whatever order its events arrive in, counters
moved once per event, the latest resolution and score win, poison events write nothing, and the
source report counts the tickets of each source's customers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.message import Message
from sqlalchemy import func, select

from crm.customers.v1 import customers_pb2
from crm.customers.v1 import events_pb2 as customer_events
from crm.leads.v1 import events_pb2 as lead_events
from crm.support.v1 import events_pb2 as support_events
from crm.support.v1 import support_pb2 as S
from crm_kit.db import Database
from crm_kit.events import Envelope, PoisonMessage, event_type, subject_for
from crm_kit.protoconv import to_timestamp
from crm_reporting import domain, handlers, queries
from crm_reporting.db import consent_facts, customer_facts, event_log, ticket_facts

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
Handler = Callable[[Any, Envelope[Any]], Awaitable[None]]


async def handle(db: Database, message: Message) -> None:
    event = Envelope(
        id=uuid.uuid4().hex,
        type=event_type(type(message)),
        source="/crm/test",
        time=T0,
        subject=subject_for(type(message)),
        message=message,
    )
    async with db.unit_of_work() as uow:
        await handlers.BY_EVENT[type(message)](uow, event)


async def ticket(db: Database, ticket_id: str) -> Any:
    async with db.unit_of_work() as uow:
        return (await uow.conn.execute(select(ticket_facts).where(ticket_facts.c.ticket_id == ticket_id))).one()


def opened(ticket_id: str, customer_id: str, *, kind: int = S.TICKET_KIND_COMPLAINT, at: datetime = T0) -> Message:
    return support_events.TicketOpened(
        ticket_id=ticket_id,
        number=1042,
        customer_id=customer_id,
        order_id="order-1",
        kind=kind,
        channel=S.TICKET_CHANNEL_PHONE,
        priority=S.TICKET_PRIORITY_HIGH,
        category_id="product.delivery",
        queue_id="complaints",
        assignee_id="agent-yosef",
        occur_time=to_timestamp(at),
    )


def resolved(ticket_id: str, at: datetime, *, seconds: int, met: bool, queue: str = "complaints") -> Message:
    return support_events.TicketResolved(
        ticket_id=ticket_id,
        number=1042,
        customer_id="cust-1",
        kind=S.TICKET_KIND_COMPLAINT,
        category_id="product.delivery",
        queue_id=queue,
        assignee_id="agent-rina",
        resolution_seconds=seconds,
        resolution_sla_met=met,
        survey_token="secret-token",
        occur_time=to_timestamp(at),
    )


def escalated(ticket_id: str, level: int, at: datetime) -> Message:
    return support_events.TicketSlaBreached(
        ticket_id=ticket_id,
        number=1042,
        customer_id="cust-1",
        metric=S.SLA_METRIC_FIRST_RESPONSE,
        level=level,
        occur_time=to_timestamp(at),
    )


def answered(ticket_id: str, score: int, at: datetime) -> Message:
    return support_events.SurveyAnswered(
        ticket_id=ticket_id, customer_id="cust-1", score=score, occur_time=to_timestamp(at)
    )


async def test_a_ticket_life_is_one_row_with_counters_and_the_latest_resolution_and_score(db: Database) -> None:
    await handle(db, opened("t-1", "cust-1"))
    await handle(db, escalated("t-1", 1, T0 + timedelta(hours=1)))
    await handle(db, escalated("t-1", 2, T0 + timedelta(hours=2)))
    await handle(db, escalated("t-1", 3, T0 + timedelta(hours=5)))
    await handle(db, resolved("t-1", T0 + timedelta(hours=6), seconds=21600, met=False))
    await handle(db, answered("t-1", 2, T0 + timedelta(hours=7)))
    # Reopened and resolved again, then scored again.
    await handle(db, resolved("t-1", T0 + timedelta(days=1), seconds=3600, met=True, queue="general"))
    await handle(db, answered("t-1", 5, T0 + timedelta(days=1, hours=1)))

    row = await ticket(db, "t-1")
    assert (row.kind, row.channel, row.priority) == ("complaint", "phone", "high")
    assert (row.customer_id, row.order_id, row.number) == ("cust-1", "order-1", 1042)
    assert row.opened_at == T0
    assert (row.warnings, row.breaches, row.first_breach_at) == (1, 2, T0 + timedelta(hours=2))
    assert row.resolutions == 2
    assert (row.resolved_at, row.resolution_seconds, row.resolution_sla_met) == (T0 + timedelta(days=1), 3600, True)
    assert (row.queue_id, row.assignee_id) == ("general", "agent-rina")
    assert (row.score, row.answered_at) == (5, T0 + timedelta(days=1, hours=1))
    async with db.unit_of_work() as uow:
        logged = (await uow.conn.execute(select(func.count()).select_from(event_log))).scalar_one()
    assert logged == 8


async def test_events_before_the_opening_converge_to_the_same_row(db: Database) -> None:
    """Each event type has its own durable consumer, so a resolution, a breach or an answer can be
    recorded before the opening; an older resolution arriving last does not replace a newer one."""
    await handle(db, answered("t-2", 4, T0 + timedelta(hours=4)))
    await handle(db, resolved("t-2", T0 + timedelta(hours=3), seconds=7200, met=True, queue="billing"))
    await handle(db, escalated("t-2", 2, T0 + timedelta(hours=2)))
    await handle(db, escalated("t-2", 1, T0 + timedelta(hours=1)))
    await handle(db, resolved("t-2", T0 + timedelta(hours=2), seconds=60, met=False, queue="general"))
    await handle(db, opened("t-2", "cust-1"))

    row = await ticket(db, "t-2")
    assert (row.kind, row.channel, row.opened_at) == ("complaint", "phone", T0)
    # The queue it was resolved in last stays: the opening's queue is older.
    assert (row.queue_id, row.resolutions) == ("billing", 2)
    assert (row.resolved_at, row.resolution_seconds, row.resolution_sla_met) == (T0 + timedelta(hours=3), 7200, True)
    assert (row.warnings, row.breaches, row.first_breach_at) == (1, 1, T0 + timedelta(hours=2))
    assert row.score == 4


@pytest.mark.parametrize(
    "message",
    [
        support_events.SurveyAnswered(ticket_id="t-3", score=0),
        support_events.SurveyAnswered(ticket_id="t-3", score=6),
        support_events.TicketSlaBreached(ticket_id="t-3", level=4),
        support_events.TicketOpened(ticket_id=""),
        customer_events.ConsentChanged(customer_id="cust-1", record_id=7),
    ],
    ids=["score-0", "score-6", "level-4", "no-ticket-id", "consent-without-channel"],
)
async def test_a_poison_event_writes_nothing(db: Database, message: Message) -> None:
    with pytest.raises(PoisonMessage):
        await handle(db, message)
    async with db.unit_of_work() as uow:
        for table in (ticket_facts, consent_facts, event_log):
            assert (await uow.conn.execute(select(func.count()).select_from(table))).scalar_one() == 0


async def test_consent_changes_are_kept_once_each(db: Database) -> None:
    def change(record_id: int, granted: bool, at: datetime) -> Message:
        return customer_events.ConsentChanged(
            customer_id="cust-1",
            channel=customers_pb2.CONSENT_CHANNEL_SMS,
            purpose=customers_pb2.CONSENT_PURPOSE_MARKETING,
            granted=granted,
            source=customers_pb2.CONSENT_SOURCE_WEB_FORM if granted else customers_pb2.CONSENT_SOURCE_REPLY,
            record_id=record_id,
            occur_time=to_timestamp(at),
        )

    await handle(db, change(11, True, T0))
    await handle(db, change(12, False, T0 + timedelta(days=3)))
    await handle(db, change(12, False, T0 + timedelta(days=3)))  # another event for the same record
    async with db.unit_of_work() as uow:
        rows = (await uow.conn.execute(select(consent_facts).order_by(consent_facts.c.record_id))).all()
    assert [(r.record_id, r.channel, r.purpose, r.granted, r.source) for r in rows] == [
        (11, "sms", "marketing", True, "web_form"),
        (12, "sms", "marketing", False, "reply"),
    ]


async def test_the_source_report_counts_tickets_by_the_source_of_the_customer_s_first_lead(db: Database) -> None:
    await handle(db, lead_events.LeadCaptured(lead_id="lead-radio", source="radio", capture_time=to_timestamp(T0)))
    await handle(db, customer_events.CustomerCreated(customer_id="cust-radio", lead_id="lead-radio"))
    await handle(db, customer_events.CustomerCreated(customer_id="cust-radio", lead_id="lead-other"))
    day = T0 + timedelta(days=2)
    await handle(db, opened("t-a", "cust-radio", at=day))
    await handle(db, opened("t-b", "cust-radio", kind=S.TICKET_KIND_QUESTION, at=day))
    await handle(db, opened("t-c", "cust-walk-in", at=day))
    await handle(db, opened("t-d", "cust-radio", at=T0 + timedelta(days=40)))  # outside the period

    async with db.unit_of_work() as uow:
        linked = (await uow.conn.execute(select(customer_facts.c.lead_id))).scalars().all()
        rows = await queries.source_report(uow, domain.Period(T0, T0 + timedelta(days=30)))
    assert linked == ["lead-radio"]  # the first CustomerCreated made the link
    by_source = {r.source: (r.leads, r.tickets, r.complaints) for r in rows}
    assert by_source == {"radio": (1, 2, 1), "unknown": (0, 1, 1)}
