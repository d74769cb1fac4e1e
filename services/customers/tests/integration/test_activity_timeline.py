"""Activities reps log in leads (ActivityLogged) on the customer's timeline: the customers service
in process against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from crm.customers.v1 import customers_pb2
from crm.leads.v1 import events_pb2 as leads_events
from crm_customers.db import timeline
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, publish_event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def activity(lead_id: str, kind: str, at: datetime, **fields: Any) -> leads_events.ActivityLogged:
    return leads_events.ActivityLogged(
        activity_id=str(uuid.uuid4()),
        lead_id=lead_id,
        kind=kind,
        actor="rep-dana",
        occur_time=to_timestamp(at),
        **fields,
    )


async def stored_kinds(database_url: str, event_ids: list[str]) -> dict[str, str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(timeline.c.event_id, timeline.c.kind))).all()
    finally:
        await engine.dispose()
    return {r.event_id: r.kind for r in rows if r.event_id in event_ids}


async def test_activities_show_who_did_what_even_when_they_arrive_before_the_lead(customers, nats_server) -> None:
    stub, database_url = customers
    lead_id = str(uuid.uuid4())
    # The activity comes first: held (RetryLater) until customers knows the lead, never dropped.
    call_id = await publish_event(
        nats_server,
        activity(
            lead_id,
            "call",
            T0 + timedelta(minutes=4),
            outcome="no_answer",
            duration_seconds=130,
            summary="לנסות שוב בערב",
            first_response=True,
        ),
    )
    note_id = await publish_event(
        nats_server, activity(lead_id, "note", T0 + timedelta(minutes=9), summary="ביקש הצעת מחיר")
    )
    await publish_event(
        nats_server,
        leads_events.LeadCaptured(
            lead_id=lead_id,
            full_name="דנה כהן",
            phone_number="+972501112233",
            source="radio",
            capture_time=to_timestamp(T0),
        ),
    )

    async def entries() -> list[Any] | None:
        found = (await stub.ListCustomers(customers_pb2.ListCustomersRequest(lead_id=lead_id))).customers
        if not found:
            return None
        listed = (await stub.ListTimeline(customers_pb2.ListTimelineRequest(customer_id=found[0].id))).entries
        return list(listed) if len(listed) == 3 else None

    captured, call, note = await eventually(entries, timeout=30)
    assert captured.kind == customers_pb2.TOUCH_KIND_LEAD_CAPTURED
    assert (call.event_id, call.channel, call.summary) == (
        call_id,
        "phone",
        "Call — no answer (2 min) by rep-dana: לנסות שוב בערב",
    )
    assert (note.event_id, note.channel, note.summary) == (note_id, "internal", "Note by rep-dana: ביקש הצעת מחיר")
    assert call.occur_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(minutes=4)
    assert await stored_kinds(database_url, [call_id, note_id]) == {call_id: "call_logged", note_id: "note_logged"}

    # A redelivery of the same event (same ce-id) adds nothing.
    await publish_event(nats_server, activity(lead_id, "call", T0, outcome="busy"), event_id=call_id)
    await publish_event(nats_server, activity(lead_id, "sms", T0 + timedelta(minutes=10), summary="שלום"))

    async def four() -> list[Any] | None:
        found = (await stub.ListCustomers(customers_pb2.ListCustomersRequest(lead_id=lead_id))).customers
        listed = (await stub.ListTimeline(customers_pb2.ListTimelineRequest(customer_id=found[0].id))).entries
        return list(listed) if len(listed) >= 4 else None

    after = await eventually(four)
    assert [e.summary for e in after][1:] == [
        "Call — no answer (2 min) by rep-dana: לנסות שוב בערב",
        "Note by rep-dana: ביקש הצעת מחיר",
        "SMS sent by rep-dana: שלום",
    ]
