"""Static audience lists (ImportAudienceList, GetAudienceList, ListAudienceLists, and an audience's
list_id): a CSV's lines matched to customers by number in local format, e-mail or id, the lines that
match none reported by line number, all-or-nothing, a file in the wrong encoding, a retried upload,
a merge, and consent still applied. Real PostgreSQL and NATS (conftest.py)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from crm.customers.v1 import customers_pb2 as C
from crm_kit.testing import field_violations

from .test_audiences import EMAIL, Shop

pytestmark = pytest.mark.integration


@pytest.fixture
def shop(customers: Any, nats_server: str) -> Shop:
    return Shop(customers.stub, nats_server)


def local(phone: str) -> str:
    """+972501234567 as an Israeli types it: 050-1234567."""
    return f"0{phone[4:6]}-{phone[6:]}"


async def count(shop: Shop, list_id: str, channel: str = "sms") -> C.CountAudienceResponse:
    request = C.CountAudienceRequest(
        filter=C.AudienceFilter(list_id=list_id), channel=channel, purpose="marketing", sample_size=10
    )
    reply: C.CountAudienceResponse = await shop.stub.CountAudience(request)
    return reply


async def test_a_list_matches_numbers_e_mails_and_ids_and_reports_the_lines_that_do_not(shop: Shop) -> None:
    dana, noa, ron = await shop.person(), await shop.person(), await shop.person(consent=())
    maryam = await shop.person(
        phone=f"+98912{uuid.uuid4().int % 10_000_000:07d}", email=f"m{uuid.uuid4().hex[:8]}@x.com", consent=(EMAIL,)
    )
    dana_phone = (await shop.stub.GetContactInfo(C.GetContactInfoRequest(customer_id=dana.id))).phone_number
    maryam_email = (await shop.stub.GetContactInfo(C.GetContactInfoRequest(customer_id=maryam.id))).email
    ron_phone = (await shop.stub.GetContactInfo(C.GetContactInfoRequest(customer_id=ron.id))).phone_number
    csv = "\n".join(
        [
            "Name,Phone_Number,email,customer_id",
            f"דנה,{local(dana_phone)},,",  # 2: a local number
            f"מרים,,{maryam_email.upper()},",  # 3: an e-mail in any case
            "נועה,,," + noa.id,  # 4: an id
            "שגוי,12,,",  # 5: not a number
            "",  # 6: blank, skipped
            "זר,050-0000001,,",  # 7: nobody's
            f"דנה שוב,{dana_phone},,",  # 8: the same customer again
            f"רון,{ron_phone},,",  # 9: on the list, but without consent
        ]
    )
    imported = (
        await shop.stub.ImportAudienceList(
            C.ImportAudienceListRequest(name=" לקוחות  תערוכה ", content=("\ufeff" + csv).encode(), request_id="r-1")
        )
    ).list
    assert (imported.name, imported.members, imported.lines, imported.error_count) == ("לקוחות תערוכה", 4, 7, 2)
    assert [(e.line_number, e.field) for e in imported.errors] == [(5, "phone_number"), (7, "phone_number")]
    assert "not a phone number" in imported.errors[0].message and "no customer" in imported.errors[1].message

    sms = await count(shop, imported.id)
    assert (sms.matched, sms.reachable, sms.no_consent) == (4, 2, 2)  # Maryam consented to e-mail only
    assert {m.customer_id for m in sms.sample} == {dana.id, noa.id}
    assert (await count(shop, imported.id, "email")).reachable == 1

    again = await shop.stub.ImportAudienceList(
        C.ImportAudienceListRequest(name="x", content=b"email\n", request_id="r-1")
    )
    assert again.list.id == imported.id  # a retry returns the first list
    got = (await shop.stub.GetAudienceList(C.GetAudienceListRequest(list_id=imported.id))).list
    assert got.errors == imported.errors
    listed = (await shop.stub.ListAudienceLists(C.ListAudienceListsRequest(page_size=10))).lists
    assert listed[0].id == imported.id and list(listed[0].errors) == []

    # A merge: the list that named the duplicate names the survivor.
    survivor = await shop.person()
    await shop.stub.MergeCustomers(C.MergeCustomersRequest(customer_id=survivor.id, duplicate_customer_id=dana.id))
    members = await shop.stub.ResolveAudience(
        C.ResolveAudienceRequest(filter=C.AudienceFilter(list_id=imported.id), channel="sms", purpose="marketing")
    )
    assert {m.customer_id for m in members.members} == {survivor.id, noa.id}


async def test_a_wrong_file_or_line_makes_no_list_and_names_what_is_wrong(shop: Shop) -> None:
    async def refused(**fields: Any) -> dict[str, str]:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await shop.stub.ImportAudienceList(C.ImportAudienceListRequest(**fields))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        return field_violations(error.value)

    hebrew_in_windows_1255 = "phone_number\n050-1234567 דנה\n".encode("cp1255")
    assert "not UTF-8" in (await refused(name="x", content=hebrew_in_windows_1255))["content"]
    assert "names none of" in (await refused(name="x", content=b"full_name,city\nDana,Haifa\n"))["content"]
    assert set(await refused(name="", content=b"email\na@b.co\n")) == {"name"}
    bad_line = await refused(name="x", content=b"phone_number\n12\n050-0000002\n", all_or_nothing=True)
    assert set(bad_line) == {"lines[2].phone_number", "lines[3].phone_number"}
    assert (await shop.stub.ListAudienceLists(C.ListAudienceListsRequest())).lists == []

    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await count(shop, str(uuid.uuid4()))
    assert field_violations(unknown.value) == {"list_id": "no such audience list"}
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await shop.stub.GetAudienceList(C.GetAudienceListRequest(list_id="nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
