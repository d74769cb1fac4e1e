"""A captured lead against real PostgreSQL, through the handler, where it meets other writers:
another capture of the same person, and a merge of the customer it matches."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from crm.leads.v1 import events_pb2 as leads_events
from crm_customers import handlers
from crm_customers.db import customer_leads, customers, messaging, timeline
from crm_customers.main import MIGRATIONS_DIR
from crm_kit.db import Database
from crm_kit.events import Envelope, event_type
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import migrated_database

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
async def db(fresh_database: Any) -> AsyncIterator[Database]:
    url = await fresh_database("customers")
    async with migrated_database(url, MIGRATIONS_DIR, messaging, service="customers") as database:
        yield database


def capture(lead_id: str, *, phone: str = "", email: str = "") -> Envelope[leads_events.LeadCaptured]:
    message = leads_events.LeadCaptured(
        lead_id=lead_id,
        full_name="דנה לוי",
        phone_number=phone,
        email=email,
        source="website",
        locale="he-IL",
        capture_time=to_timestamp(T0),
    )
    return Envelope(
        id=uuid.uuid4().hex,
        type=event_type(leads_events.LeadCaptured),
        source="/crm/leads",
        time=T0,
        subject="crm.leads.lead_captured",
        message=message,
    )


async def handle(db: Database, envelope: Envelope[Any]) -> None:
    async with db.unit_of_work() as uow:
        await handlers.on_lead_captured(uow, envelope)


async def customer_of(db: Database, lead_id: str) -> str:
    async with db.unit_of_work() as uow:
        found = (
            await uow.conn.execute(select(customer_leads.c.customer_id).where(customer_leads.c.lead_id == lead_id))
        ).scalar_one()
    return str(found)


async def rows(db: Database, query: Any) -> list[Any]:
    async with db.unit_of_work() as uow:
        return list((await uow.conn.execute(query)).all())


async def test_a_capture_makes_the_customer_its_link_its_entry_and_one_customer_created(db: Database) -> None:
    first = capture("lead-1", phone="+972521112233")
    await handle(db, first)
    customer_id = await customer_of(db, "lead-1")
    (customer,) = await rows(db, select(customers))
    assert (customer.id, customer.full_name, customer.phone_number, customer.email, customer.locale) == (
        customer_id,
        "דנה לוי",
        "+972521112233",
        "",
        "he-IL",
    )
    entries = await rows(db, select(timeline.c.customer_id, timeline.c.kind, timeline.c.event_id, timeline.c.channel))
    assert entries == [(customer_id, "lead_captured", first.id, "web")]
    outbox = await rows(db, select(messaging.outbox.c.subject))
    assert outbox == [("crm.customers.customer_created",)]

    # The same event handled again (the inbox is the first guard): no second entry, no new customer.
    await handle(db, first)
    assert len(await rows(db, select(timeline))) == 1
    assert len(await rows(db, select(customers))) == 1
    assert len(await rows(db, select(messaging.outbox))) == 1

    # A second lead of the person fills the e-mail the profile lacked, never the phone it has.
    await handle(db, capture("lead-2", phone="+972521112233", email="dana@example.com"))
    await handle(db, capture("lead-3", phone="+972500000000", email="dana@example.com"))
    (customer,) = await rows(db, select(customers))
    assert (customer.phone_number, customer.email) == ("+972521112233", "dana@example.com")
    assert {await customer_of(db, lead) for lead in ("lead-2", "lead-3")} == {customer_id}
    assert len(await rows(db, select(timeline).where(timeline.c.customer_id == customer_id))) == 3
    assert len(await rows(db, select(messaging.outbox))) == 1


async def test_two_captures_of_one_person_at_once_make_one_customer(db: Database) -> None:
    async with db.unit_of_work() as uow:
        await handlers.on_lead_captured(uow, capture("lead-a", phone="+972531234567"))
        # The second capture waits for the first's identity locks, then sees its customer.
        second = asyncio.ensure_future(handle(db, capture("lead-b", phone="+972531234567")))
        await asyncio.sleep(0.3)
        assert not second.done()
    await second
    assert await customer_of(db, "lead-a") == await customer_of(db, "lead-b")
    assert len(await rows(db, select(customers))) == 1
    assert len(await rows(db, select(messaging.outbox))) == 1


async def test_a_capture_racing_a_merge_of_its_customer_lands_on_the_survivor(db: Database) -> None:
    await handle(db, capture("lead-survivor", phone="+972541112233"))
    await handle(db, capture("lead-duplicate", email="dana@example.com"))
    survivor, duplicate = await customer_of(db, "lead-survivor"), await customer_of(db, "lead-duplicate")
    assert survivor != duplicate
    later = capture("lead-duplicate")  # the same lead, captured again (a new event)
    async with db.unit_of_work() as merge:
        # A merge holds the duplicate (as commands.merge_customers does) while the capture comes in.
        await merge.conn.execute(select(customers.c.id).where(customers.c.id == duplicate).with_for_update())
        racing = asyncio.ensure_future(handle(db, later))
        await asyncio.sleep(0.3)
        assert not racing.done()  # held by the merge's lock on the customer it matched
        await merge.conn.execute(
            update(customer_leads).where(customer_leads.c.customer_id == duplicate).values(customer_id=survivor)
        )
        await merge.conn.execute(
            update(timeline).where(timeline.c.customer_id == duplicate).values(customer_id=survivor)
        )
        await merge.conn.execute(update(customers).where(customers.c.id == duplicate).values(merged_into_id=survivor))
    await racing
    (entry,) = await rows(db, select(timeline.c.customer_id).where(timeline.c.event_id == later.id))
    assert entry.customer_id == survivor
    assert await rows(db, select(timeline).where(timeline.c.customer_id == duplicate)) == []
    assert await customer_of(db, "lead-duplicate") == survivor
    # The survivor had no e-mail: the capture's (none here) leaves it as it was; no new customer.
    assert len(await rows(db, select(customers))) == 2
