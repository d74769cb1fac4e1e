"""What reporting's integration tests share: a migrated reporting database, and an event handled
the way the bus hands it over (an envelope around the message, the handler in one unit of work)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.message import Message

from crm.customers.v1 import events_pb2 as customer_events
from crm.leads.v1 import events_pb2 as lead_events
from crm.sales.v1 import events_pb2 as sales_events
from crm.support.v1 import events_pb2 as support_events
from crm_kit.db import Database
from crm_kit.events import Envelope, event_type, subject_for
from crm_kit.testing import migrated_database
from crm_reporting import handlers
from crm_reporting.db import messaging
from crm_reporting.main import MIGRATIONS_DIR

HANDLERS: dict[type[Message], Callable[[Any, Envelope[Any]], Awaitable[None]]] = {
    lead_events.LeadCaptured: handlers.on_lead_captured,
    lead_events.LeadAssigned: handlers.on_lead_assigned,
    lead_events.ActivityLogged: handlers.on_activity_logged,
    lead_events.LeadConverted: handlers.on_lead_converted,
    sales_events.DealStageChanged: handlers.on_deal_stage_changed,
    sales_events.DealClosed: handlers.on_deal_closed,
    customer_events.CustomerCreated: handlers.on_customer_created,
    customer_events.ConsentChanged: handlers.on_consent_changed,
    support_events.TicketOpened: handlers.on_ticket_opened,
    support_events.TicketResolved: handlers.on_ticket_resolved,
    support_events.TicketSlaBreached: handlers.on_ticket_sla_breached,
    support_events.SurveyAnswered: handlers.on_survey_answered,
}


@pytest.fixture
async def db(fresh_database: Any) -> AsyncIterator[Database]:
    url = await fresh_database("reporting")
    async with migrated_database(url, MIGRATIONS_DIR, messaging, service="reporting") as database:
        yield database


async def handled(db: Database, message: Message, *, at: datetime | None = None) -> None:
    """message through its handler, in an envelope of time `at` (default now)."""
    envelope = Envelope(
        id=uuid.uuid4().hex,
        type=event_type(type(message)),
        source="/crm/test",
        time=at or datetime.now(UTC),
        subject=subject_for(type(message)),
        message=message,
    )
    async with db.unit_of_work() as uow:
        await HANDLERS[type(message)](uow, envelope)
