"""Editing a customer's profile: on the version read, every bad field named at once, nothing
half-written, the search following the new name, and an audit record that names fields only."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from crm.customers.v1 import customers_pb2
from crm.leads.v1 import events_pb2 as leads_events
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, field_violations, publish_event

pytestmark = pytest.mark.integration


async def new_customer(customers: Any, nats_server: str, full_name: str, phone: str) -> customers_pb2.Customer:
    lead = leads_events.LeadCaptured(
        lead_id=str(uuid.uuid4()),
        full_name=full_name,
        phone_number=phone,
        source="radio",
        locale="he-IL",
        capture_time=to_timestamp(datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
    )
    await publish_event(nats_server, lead)

    async def made() -> customers_pb2.Customer | None:
        reply = await customers.stub.ListCustomers(customers_pb2.ListCustomersRequest(lead_id=lead.lead_id))
        return reply.customers[0] if reply.customers else None

    customer: customers_pb2.Customer = await eventually(made)
    return customer


def edit(customer_id: str, etag: str, **fields: str) -> customers_pb2.UpdateCustomerRequest:
    return customers_pb2.UpdateCustomerRequest(
        customer=customers_pb2.Customer(id=customer_id, **fields),
        update_mask=field_mask_pb2.FieldMask(paths=list(fields)),
        etag=etag,
    )


async def names_found(customers: Any, query: str) -> list[str]:
    reply = await customers.stub.SearchCustomers(customers_pb2.SearchCustomersRequest(query=query))
    return [m.customer.full_name for m in reply.matches]


async def test_an_edit_on_the_version_read_changes_the_profile_and_its_search(customers: Any, nats_server: str) -> None:
    customer = await new_customer(customers, nats_server, "רונית אלמוג", "+972521234567")
    assert customer.etag == '"1"'

    reply = await customers.stub.UpdateCustomer(
        edit(
            customer.id, customer.etag, full_name="  רונית   אלמוג-כץ ", phone_number="054-765-4321", email="R@X.CO.IL"
        )
    )
    edited = reply.customer
    assert (edited.full_name, edited.phone_number, edited.email, edited.etag) == (
        "רונית אלמוג-כץ",
        "+972547654321",
        "r@x.co.il",
        '"2"',
    )
    assert await names_found(customers, "כץ רונית") == ["רונית אלמוג-כץ"]
    assert await names_found(customers, "054-765-4321") == ["רונית אלמוג-כץ"]
    assert await names_found(customers, "052-123-4567") == []

    engine = create_async_engine(customers.database_url)
    try:
        async with engine.connect() as conn:
            audit = (
                await conn.execute(
                    text("SELECT action, details FROM audit_log WHERE record_id = :id"), {"id": customer.id}
                )
            ).all()
    finally:
        await engine.dispose()
    assert [(a.action, a.details if isinstance(a.details, dict) else json.loads(a.details)) for a in audit] == [
        ("customers.UpdateCustomer", {"fields": ["email", "full_name", "phone_number"]})
    ]


async def test_a_stale_or_bad_edit_changes_nothing_and_names_every_field(customers: Any, nats_server: str) -> None:
    customer = await new_customer(customers, nats_server, "עמית שגיא", "+972531112222")
    await customers.stub.UpdateCustomer(edit(customer.id, customer.etag, locale="fa-IR"))

    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await customers.stub.UpdateCustomer(edit(customer.id, customer.etag, full_name="someone else"))
    assert stale.value.code() == grpc.StatusCode.ABORTED

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await customers.stub.UpdateCustomer(
            edit(customer.id, "", full_name=" ", phone_number="123", email="not-an-address", locale="de-DE")
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(bad.value)) == {"full_name", "phone_number", "email", "locale"}

    with pytest.raises(grpc.aio.AioRpcError) as unreachable:
        await customers.stub.UpdateCustomer(edit(customer.id, "", phone_number=""))
    assert set(field_violations(unreachable.value)) == {"phone_number", "email"}

    with pytest.raises(grpc.aio.AioRpcError) as nothing:
        await customers.stub.UpdateCustomer(edit(customer.id, ""))
    assert set(field_violations(nothing.value)) == {"update_mask"}

    after = (await customers.stub.GetCustomer(customers_pb2.GetCustomerRequest(customer_id=customer.id))).customer
    assert (after.full_name, after.phone_number, after.locale, after.etag) == (
        "עמית שגיא",
        "+972531112222",
        "fa-IR",
        '"2"',
    )


async def test_a_merged_customer_is_edited_through_its_survivor(customers: Any, nats_server: str) -> None:
    survivor = await new_customer(customers, nats_server, "טל ברק", "+972501110000")
    duplicate = await new_customer(customers, nats_server, "טל ברק", "+972501110001")
    await customers.stub.MergeCustomers(
        customers_pb2.MergeCustomersRequest(customer_id=survivor.id, duplicate_customer_id=duplicate.id)
    )
    with pytest.raises(grpc.aio.AioRpcError) as merged:
        await customers.stub.UpdateCustomer(edit(duplicate.id, "", locale="en-US"))
    assert merged.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await customers.stub.UpdateCustomer(edit(str(uuid.uuid4()), "", locale="en-US"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_agent_logs_a_touch_once_per_request(customers: Any, nats_server: str) -> None:
    customer = await new_customer(customers, nats_server, "שירה גל", "+972509998877")
    request = customers_pb2.LogTouchRequest(
        customer_id=customer.id,
        kind="call",
        text="הלקוחה ביקשה לדחות את המשלוח",
        outcome="answered",
        duration_seconds=130,
        actor_name="יוסף מהשירות",
        request_id="req-1",
    )
    first = (await customers.stub.LogTouch(request)).entry
    again = (await customers.stub.LogTouch(request)).entry
    assert first.id == again.id and first.kind == customers_pb2.TOUCH_KIND_CALL_LOGGED
    assert dict(first.facts) == {
        "outcome": "answered",
        "duration_seconds": "130",
        "who": "יוסף מהשירות",
        "text": "הלקוחה ביקשה לדחות את המשלוח",
    }
    entries = (await customers.stub.ListTimeline(customers_pb2.ListTimelineRequest(customer_id=customer.id))).entries
    assert [e.kind for e in entries].count(customers_pb2.TOUCH_KIND_CALL_LOGGED) == 1

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await customers.stub.LogTouch(
            customers_pb2.LogTouchRequest(customer_id=customer.id, kind="fax", text="", outcome="busy")
        )
    assert set(field_violations(bad.value)) == {"kind", "text", "outcome"}


async def test_tags_contact_persons_and_addresses(customers: Any, nats_server: str) -> None:
    customer = await new_customer(customers, nats_server, "רהיטי הצפון בע״מ", "04-8123456")
    tagged = await customers.stub.UpdateCustomer(
        customers_pb2.UpdateCustomerRequest(
            customer=customers_pb2.Customer(id=customer.id, tags=[" wholesale ", "VIP", "vip", "", "אדריכל"]),
            update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
            etag=customer.etag,
        )
    )
    assert list(tagged.customer.tags) == ["wholesale", "VIP", "אדריכל"]  # the first spelling of a repeat kept
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await customers.stub.UpdateCustomer(
            customers_pb2.UpdateCustomerRequest(
                customer=customers_pb2.Customer(id=customer.id, tags=[f"t{n}" for n in range(31)]),
                update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
                etag=tagged.customer.etag,
            )
        )
    assert "tags" in field_violations(caught.value)

    def person(name: str, phone: str, *, primary: bool) -> customers_pb2.AddContactPersonRequest:
        return customers_pb2.AddContactPersonRequest(
            customer_id=customer.id,
            contact_person=customers_pb2.ContactPerson(
                full_name=name, role="רכש", phone_number=phone, is_primary=primary
            ),
        )

    first = (await customers.stub.AddContactPerson(person("יעל ברק", "054-1234567", primary=True))).contact_person
    second = (await customers.stub.AddContactPerson(person("עמית לוי", "052 765 4321", primary=True))).contact_person
    assert first.phone_number == "+972541234567"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await customers.stub.AddContactPerson(
            customers_pb2.AddContactPersonRequest(
                customer_id=customer.id, contact_person=customers_pb2.ContactPerson(full_name=" ", email="nope")
            )
        )
    assert {"full_name", "email"} <= set(field_violations(caught.value))
    office = await customers.stub.AddAddress(
        customers_pb2.AddAddressRequest(
            customer_id=customer.id,
            address=customers_pb2.Address(kind="office", line1="דרך העצמאות 5", city="חיפה", country_code="il"),
        )
    )
    assert office.address.country_code == "IL"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await customers.stub.AddAddress(
            customers_pb2.AddAddressRequest(
                customer_id=customer.id,
                address=customers_pb2.Address(kind="castle", line1="x", city="", country_code="ISR"),
            )
        )
    assert {"kind", "city", "country_code"} <= set(field_violations(caught.value))

    details = await customers.stub.ListCustomerDetails(
        customers_pb2.ListCustomerDetailsRequest(customer_id=customer.id)
    )
    # The newest primary is the one primary, listed first.
    assert [(p.id, p.is_primary) for p in details.contact_persons] == [(second.id, True), (first.id, False)]
    assert [a.city for a in details.addresses] == ["חיפה"]
    await customers.stub.RemoveAddress(
        customers_pb2.RemoveAddressRequest(customer_id=customer.id, address_id=office.address.id)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await customers.stub.RemoveAddress(
            customers_pb2.RemoveAddressRequest(customer_id=customer.id, address_id=office.address.id)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    after = await customers.stub.ListCustomerDetails(customers_pb2.ListCustomerDetailsRequest(customer_id=customer.id))
    assert list(after.addresses) == [] and len(after.contact_persons) == 2
