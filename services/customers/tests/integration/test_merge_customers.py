"""Merging customers: by the RPC and after a lead merge (LeadsMerged), against real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm.leads.v1 import events_pb2 as leads_events
from crm_customers import commands, domain
from crm_customers.db import customers as customer_table
from crm_customers.db import messaging
from crm_kit.db import Database
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, publish_event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def captured(
    lead_id: str, *, name: str, phone: str = "", email: str = "", at: datetime = T0
) -> leads_events.LeadCaptured:
    return leads_events.LeadCaptured(
        lead_id=lead_id,
        full_name=name,
        phone_number=phone,
        email=email,
        source="radio",
        locale="he-IL",
        capture_time=to_timestamp(at),
    )


async def customer_of(stub: customers_pb2_grpc.CustomersServiceStub, lead_id: str) -> customers_pb2.Customer:
    async def found() -> customers_pb2.Customer | None:
        reply = await stub.ListCustomers(customers_pb2.ListCustomersRequest(lead_id=lead_id))
        return reply.customers[0] if reply.customers else None

    customer: customers_pb2.Customer = await eventually(found)
    return customer


async def timeline_of(stub: customers_pb2_grpc.CustomersServiceStub, customer_id: str) -> list[str]:
    reply = await stub.ListTimeline(customers_pb2.ListTimelineRequest(customer_id=customer_id, page_size=100))
    return [e.summary for e in reply.entries]


async def test_merge_joins_timelines_moves_leads_and_keeps_the_stricter_consent(customers, nats_server) -> None:
    stub, database_url = customers
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await publish_event(nats_server, captured(first, name="משה כהן", phone="+972501112233", at=T0))
    await publish_event(
        nats_server, captured(second, name="Moshe Cohen", email="moshe@example.com", at=T0 - timedelta(days=2))
    )
    survivor, duplicate = await customer_of(stub, first), await customer_of(stub, second)
    assert survivor.id != duplicate.id
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(customer_table).where(customer_table.c.id == survivor.id).values(marketing_sms_consent=True)
            )
            await conn.execute(
                update(customer_table)
                .where(customer_table.c.id == duplicate.id)
                .values(transactional_sms_opt_out=True, marketing_sms_consent=False)
            )
    finally:
        await engine.dispose()

    merged = (
        await stub.MergeCustomers(
            customers_pb2.MergeCustomersRequest(customer_id=survivor.id, duplicate_customer_id=duplicate.id)
        )
    ).customer
    assert merged.id == survivor.id and set(merged.lead_ids) == {first, second}
    assert merged.phone_number == "+972501112233" and merged.email == "moshe@example.com"
    assert merged.full_name == "משה כהן"
    assert merged.create_time.ToDatetime() == min(survivor.create_time.ToDatetime(), duplicate.create_time.ToDatetime())
    assert len(await timeline_of(stub, survivor.id)) == 2
    contact = await stub.GetContactInfo(customers_pb2.GetContactInfoRequest(lead_id=second))
    assert contact.customer_id == survivor.id
    assert not contact.transactional_sms_allowed and not contact.marketing_sms_consent
    tomb = (await stub.GetCustomer(customers_pb2.GetCustomerRequest(customer_id=duplicate.id))).customer
    assert tomb.merged_into_customer_id == survivor.id and list(tomb.lead_ids) == []
    listed = await stub.ListCustomers(customers_pb2.ListCustomersRequest())
    assert [c.id for c in listed.customers] == [survivor.id]

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.MergeCustomers(
            customers_pb2.MergeCustomersRequest(customer_id=survivor.id, duplicate_customer_id=duplicate.id)
        )
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as itself:
        await stub.MergeCustomers(
            customers_pb2.MergeCustomersRequest(customer_id=survivor.id, duplicate_customer_id=survivor.id)
        )
    assert itself.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # the e-mail now belongs to the survivor: a new lead with it attaches there, not to the tombstone
    third = str(uuid.uuid4())
    await publish_event(nats_server, captured(third, name="Moshe", email="moshe@example.com"))
    assert (await customer_of(stub, third)).id == survivor.id


async def test_leads_merged_joins_the_customers_and_a_touch_lands_on_the_timeline(customers, nats_server) -> None:
    stub, _ = customers
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await publish_event(nats_server, captured(first, name="علیرضا کریمی", phone="+989121112233"))
    await publish_event(nats_server, captured(second, name="عليرضا كريمي", phone="+989129998877"))
    a, b = await customer_of(stub, first), await customer_of(stub, second)
    assert a.id != b.id
    await publish_event(
        nats_server,
        leads_events.LeadTouched(
            lead_id=first, touch_id="t1", source="tv", campaign="נורוז", matched_on="phone_number", touch_count=2
        ),
    )
    await publish_event(
        nats_server,
        leads_events.LeadsMerged(survivor_lead_id=first, merged_lead_id=second, merge_time=to_timestamp(T0)),
    )

    async def joined() -> customers_pb2.Customer | None:
        customer = (await stub.GetCustomer(customers_pb2.GetCustomerRequest(customer_id=a.id))).customer
        return customer if set(customer.lead_ids) == {first, second} else None

    await eventually(joined)
    entries = await timeline_of(stub, a.id)
    assert len(entries) == 3 and "Came in again from tv, campaign נורוז" in entries
    assert (await customer_of(stub, second)).id == a.id


async def test_a_timeline_entry_racing_a_merge_lands_on_the_survivor(customers, nats_server) -> None:
    stub, database_url = customers
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await publish_event(nats_server, captured(first, name="דנה לוי", phone="+972521112233"))
    await publish_event(nats_server, captured(second, name="דנה לוי", email="dana@example.com"))
    survivor, duplicate = await customer_of(stub, first), await customer_of(stub, second)
    db = Database(database_url, messaging, source="/test")
    try:
        # An event handler is writing an entry for the duplicate when the merge starts: the merge
        # waits for it, then moves it; nothing stays on the tombstone.
        async with db.unit_of_work() as uow:
            await commands.add_timeline_entry(
                uow,
                customer_id=duplicate.id,
                kind=domain.TouchKind.CALL_LOGGED,
                summary="racing the merge",
                channel=domain.SYSTEM_CHANNEL,
                event_id=str(uuid.uuid4()),
                occurred_at=T0,
            )
            merge = asyncio.ensure_future(
                stub.MergeCustomers(
                    customers_pb2.MergeCustomersRequest(customer_id=survivor.id, duplicate_customer_id=duplicate.id)
                )
            )
            await asyncio.sleep(0.3)
            assert not merge.done()  # held by the entry's share lock on the duplicate
        await merge
        # And one written after the merge, for the tombstone's id, follows it to the survivor.
        async with db.unit_of_work() as uow:
            await commands.add_timeline_entry(
                uow,
                customer_id=duplicate.id,
                kind=domain.TouchKind.NOTE_LOGGED,
                summary="after the merge",
                channel=domain.SYSTEM_CHANNEL,
                event_id=str(uuid.uuid4()),
                occurred_at=T0,
            )
    finally:
        await db.dispose()
    summaries = set(await timeline_of(stub, survivor.id))
    assert {"racing the merge", "after the merge"} <= summaries
    assert await timeline_of(stub, duplicate.id) == []
