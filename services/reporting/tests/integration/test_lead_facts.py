"""Lead facts from captures and assignments against real PostgreSQL, through the handlers: one
fact and one event-log row per event, speed-to-lead stored and observed once whatever the order,
also when a capture and an assignment of one lead are handled at the same moment."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.message import Message
from prometheus_client import REGISTRY
from sqlalchemy import select

from crm.leads.v1 import events_pb2 as lead_events
from crm_kit.db import Database
from crm_kit.events import Envelope, event_type, subject_for
from crm_kit.protoconv import to_timestamp
from crm_reporting import handlers
from crm_reporting.db import event_log, lead_facts

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def envelope(message: Message) -> Envelope[Any]:
    return Envelope(
        id=uuid.uuid4().hex,
        type=event_type(type(message)),
        source="/crm/leads",
        time=T0,
        subject=subject_for(type(message)),
        message=message,
    )


def captured(lead_id: str) -> Envelope[Any]:
    return envelope(lead_events.LeadCaptured(lead_id=lead_id, source="radio", capture_time=to_timestamp(T0)))


def assigned(lead_id: str, rep_id: str, after: timedelta, *, with_capture_time: bool = True) -> Envelope[Any]:
    return envelope(
        lead_events.LeadAssigned(
            lead_id=lead_id,
            source="radio",
            rep_id=rep_id,
            team_id="team-media",
            capture_time=to_timestamp(T0) if with_capture_time else None,
            assign_time=to_timestamp(T0 + after),
        )
    )


async def handle(db: Database, event: Envelope[Any]) -> None:
    async with db.unit_of_work() as uow:
        if isinstance(event.message, lead_events.LeadCaptured):
            await handlers.on_lead_captured(uow, event)
        else:
            await handlers.on_lead_assigned(uow, event)


def speed_observations() -> float:
    return REGISTRY.get_sample_value("crm_speed_to_lead_seconds_count") or 0.0


def events_counted(event_class: type[Message]) -> float:
    return REGISTRY.get_sample_value("crm_reporting_events_total", {"event_type": event_type(event_class)}) or 0.0


async def fact(db: Database, lead_id: str) -> Any:
    async with db.unit_of_work() as uow:
        return (await uow.conn.execute(select(lead_facts).where(lead_facts.c.lead_id == lead_id))).one()


async def logged(db: Database, *events: Envelope[Any]) -> int:
    async with db.unit_of_work() as uow:
        found = await uow.conn.execute(
            select(event_log.c.event_id).where(event_log.c.event_id.in_([e.id for e in events]))
        )
        return len(found.all())


@pytest.mark.parametrize("capture_first", [True, False])
async def test_speed_to_lead_is_stored_and_observed_once_in_either_order(db: Database, capture_first: bool) -> None:
    lead_id = f"lead-{uuid.uuid4().hex[:8]}"
    observed, captures, assignments = (
        speed_observations(),
        events_counted(lead_events.LeadCaptured),
        events_counted(lead_events.LeadAssigned),
    )
    first_assignment = assigned(lead_id, "rep-dana", timedelta(seconds=75))
    events = [captured(lead_id), first_assignment] if capture_first else [first_assignment, captured(lead_id)]
    for event in events:
        await handle(db, event)
    # A later reassignment, and the first assignment handled again, change neither the fact nor the metric.
    reassignment = assigned(lead_id, "rep-moshe", timedelta(minutes=30))
    await handle(db, reassignment)
    await handle(db, first_assignment)
    row = await fact(db, lead_id)
    assert (row.captured_at, row.assigned_at, row.rep_id, row.team_id, row.source) == (
        T0,
        T0 + timedelta(seconds=75),
        "rep-dana",
        "team-media",
        "radio",
    )
    assert row.speed_to_assign_seconds == 75.0
    assert speed_observations() == observed + 1
    assert await logged(db, *events, reassignment) == 3
    assert events_counted(lead_events.LeadCaptured) == captures + 1
    assert events_counted(lead_events.LeadAssigned) == assignments + 2


async def test_an_assignment_without_a_capture_time_waits_for_the_capture(db: Database) -> None:
    lead_id = f"lead-{uuid.uuid4().hex[:8]}"
    observed = speed_observations()
    await handle(db, assigned(lead_id, "rep-dana", timedelta(seconds=40), with_capture_time=False))
    assert (await fact(db, lead_id)).speed_to_assign_seconds is None
    assert speed_observations() == observed
    await handle(db, captured(lead_id))
    assert (await fact(db, lead_id)).speed_to_assign_seconds == 40.0
    assert speed_observations() == observed + 1


async def test_a_capture_and_an_assignment_at_the_same_moment_observe_the_speed_once(db: Database) -> None:
    lead_id = f"lead-{uuid.uuid4().hex[:8]}"
    observed = speed_observations()
    async with db.unit_of_work() as uow:
        await handlers.on_lead_assigned(uow, assigned(lead_id, "rep-dana", timedelta(seconds=20)))
        # The capture's upsert waits for the assignment's row, then sees the speed it stored.
        capture = asyncio.ensure_future(handle(db, captured(lead_id)))
        await asyncio.sleep(0.3)
        assert not capture.done()
    await capture
    assert (await fact(db, lead_id)).speed_to_assign_seconds == 20.0
    assert speed_observations() == observed + 1
