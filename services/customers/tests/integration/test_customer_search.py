"""Finding a customer the way a service agent on the phone does: a name in whatever spelling the
caller gives, a number in whatever format, an address; real PostgreSQL and NATS (conftest.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from crm.customers.v1 import customers_pb2
from crm.leads.v1 import events_pb2 as leads_events
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, publish_event, violated_fields

pytestmark = pytest.mark.integration

M = customers_pb2.SearchMatch


def captured(full_name: str, *, phone: str = "", email: str = "", locale: str = "he-IL") -> leads_events.LeadCaptured:
    return leads_events.LeadCaptured(
        lead_id=str(uuid.uuid4()),
        full_name=full_name,
        phone_number=phone,
        email=email,
        source="radio",
        locale=locale,
        capture_time=to_timestamp(datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
    )


async def search(stub: Any, query: str) -> list[tuple[str, int]]:
    reply = await stub.SearchCustomers(customers_pb2.SearchCustomersRequest(query=query))
    return [(m.customer.full_name, m.match) for m in reply.matches]


async def seed(customers: Any, nats_server: str, *leads: leads_events.LeadCaptured) -> None:
    for lead in leads:
        await publish_event(nats_server, lead)

    async def all_there() -> bool:
        listed = await customers.stub.ListCustomers(customers_pb2.ListCustomersRequest(page_size=100))
        return len(listed.customers) == len(leads) or None  # type: ignore[return-value]

    await eventually(all_there)


async def test_a_name_is_found_in_any_spelling_order_and_script(customers: Any, nats_server: str) -> None:
    await seed(
        customers,
        nats_server,
        captured("محمدرضا محمدی", phone="+989121234567", locale="fa-IR"),
        captured("משה כהן", phone="+972501234567"),
        captured("Moshe Levi", email="moshe.levi@example.com"),
        captured("فاطمه احمدی", phone="+989351112233", locale="fa-IR"),
    )
    stub = customers.stub
    # Arabic letter shapes (ي, ك) and a split compound: the Persian keyboard's and a form's spelling.
    assert await search(stub, "محمدي") == [("محمدرضا محمدی", M.SEARCH_MATCH_NAME)]
    # Word order, final letters and points do not matter.
    assert await search(stub, "כֹּהֵן משה") == [("משה כהן", M.SEARCH_MATCH_NAME)]
    # A Latin spelling meets the Hebrew name by its consonants; "moshe" alone also finds Levi.
    assert await search(stub, "Moshe Kohen") == [("משה כהן", M.SEARCH_MATCH_NAME_SOUNDS_LIKE)]
    assert dict(await search(stub, "moshe")) == {
        "Moshe Levi": M.SEARCH_MATCH_NAME,
        "משה כהן": M.SEARCH_MATCH_NAME_SOUNDS_LIKE,
    }
    # A misspelt Persian name (a vowel letter missing): the same skeleton.
    assert await search(stub, "فاطمه احمدي") == [("فاطمه احمدی", M.SEARCH_MATCH_NAME)]
    assert await search(stub, "فطمه احمدی") == [("فاطمه احمدی", M.SEARCH_MATCH_NAME_SOUNDS_LIKE)]
    # The last word is a prefix while it is being typed.
    assert await search(stub, "משה כה") == [("משה כהן", M.SEARCH_MATCH_NAME_PREFIX)]
    # Every word must meet: no customer is called Moshe Ahmadi.
    assert await search(stub, "moshe ahmadi") == []
    # A page that exact matches fill is answered by them alone; one they do not fill goes on to
    # the other spellings (the same ranking either way).
    one = await stub.SearchCustomers(customers_pb2.SearchCustomersRequest(query="moshe", page_size=1))
    assert [(m.customer.full_name, m.match) for m in one.matches] == [("Moshe Levi", M.SEARCH_MATCH_NAME)]
    one = await stub.SearchCustomers(customers_pb2.SearchCustomersRequest(query="Kohen Moshe", page_size=1))
    assert [(m.customer.full_name, m.match) for m in one.matches] == [("משה כהן", M.SEARCH_MATCH_NAME_SOUNDS_LIKE)]


async def test_a_phone_in_any_format_and_an_address_in_any_case(customers: Any, nats_server: str) -> None:
    await seed(
        customers,
        nats_server,
        captured("דנה לוי", phone="+972501234567", email="dana@example.co.il"),
        captured("علی رضایی", phone="+989121234567", locale="fa-IR"),
    )
    stub = customers.stub
    for typed in ("050-123-4567", "+972 50 123 4567", "00972501234567", "(050) 1234567", "۰۵۰۱۲۳۴۵۶۷"):
        assert await search(stub, typed) == [("דנה לוי", M.SEARCH_MATCH_PHONE)], typed
    for typed in ("0912 123 4567", "+98 912 123 4567", "۰۹۱۲۱۲۳۴۵۶۷"):
        assert await search(stub, typed) == [("علی رضایی", M.SEARCH_MATCH_PHONE)], typed
    assert await search(stub, " Dana@Example.CO.IL ") == [("דנה לוי", M.SEARCH_MATCH_EMAIL)]
    assert await search(stub, "050-999-9999") == []


async def test_a_merged_customer_is_found_as_its_survivor_only(customers: Any, nats_server: str) -> None:
    first, second = captured("יוסי מזרחי", phone="+972521112233"), captured("יוסף מזרחי", phone="+972541112233")
    await seed(customers, nats_server, first, second)

    async def customer(lead_id: str) -> customers_pb2.Customer:
        reply = await customers.stub.ListCustomers(customers_pb2.ListCustomersRequest(lead_id=lead_id))
        return reply.customers[0]

    survivor, duplicate = await customer(first.lead_id), await customer(second.lead_id)
    await customers.stub.MergeCustomers(
        customers_pb2.MergeCustomersRequest(customer_id=survivor.id, duplicate_customer_id=duplicate.id)
    )
    assert await search(customers.stub, "מזרחי") == [("יוסי מזרחי", M.SEARCH_MATCH_NAME)]


@pytest.mark.parametrize("query", ["", "a", " ב ", "--", "ً"])
async def test_a_search_of_fewer_than_two_letters_is_refused_on_the_field(customers: Any, query: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await customers.stub.SearchCustomers(customers_pb2.SearchCustomersRequest(query=query))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "query" in violated_fields(err.value)
