from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from crm_devstack.kavenegar_fake import FIRST_MESSAGE_ID, create_app

KEY = "test-kavenegar-key"
SEND = f"/v1/{KEY}/sms/send.json"

pytestmark = pytest.mark.unit


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app([KEY]))
    async with httpx.AsyncClient(transport=transport, base_url="http://kavenegar.test") as http:
        yield http


async def test_send_answers_kavenegars_envelope_and_records(client: httpx.AsyncClient) -> None:
    sent = await client.post(
        SEND, data={"receptor": "09123456789", "message": "خدمات پیام کوتاه", "sender": "10004346"}
    )
    assert sent.status_code == 200
    body = sent.json()
    assert body["return"] == {"status": 200, "message": "تایید شد"}
    [entry] = body["entries"]
    assert entry["messageid"] == FIRST_MESSAGE_ID
    assert (entry["status"], entry["statustext"], entry["sender"], entry["receptor"]) == (
        1,
        "در صف ارسال",
        "10004346",
        "09123456789",
    )
    assert entry["message"] == "خدمات پیام کوتاه" and entry["cost"] > 0 and entry["date"] > 0
    messages = (await client.get("/messages")).json()
    assert [(m["messageid"], m["localid"]) for m in messages] == [(FIRST_MESSAGE_ID, None)]


async def test_get_with_query_parameters_and_several_receptors(client: httpx.AsyncClient) -> None:
    sent = await client.get(SEND, params={"receptor": "09123456789,09351234567", "message": "hi", "localid": "1,2"})
    assert sent.status_code == 200
    assert [e["receptor"] for e in sent.json()["entries"]] == ["09123456789", "09351234567"]
    assert [m["localid"] for m in (await client.get("/messages")).json()] == ["1", "2"]


async def test_a_repeated_localid_returns_the_first_message_and_records_nothing(client: httpx.AsyncClient) -> None:
    first = await client.post(SEND, data={"receptor": "09123456789", "message": "one", "localid": "450"})
    again = await client.post(SEND, data={"receptor": "09123456789", "message": "one", "localid": "450"})
    other = await client.post(SEND, data={"receptor": "09123456789", "message": "one", "localid": "451"})
    assert again.status_code == 200
    assert again.json()["entries"] == first.json()["entries"]
    assert other.json()["entries"][0]["messageid"] != first.json()["entries"][0]["messageid"]
    assert [m["localid"] for m in (await client.get("/messages")).json()] == ["450", "451"]


async def test_concurrent_sends_with_one_localid_record_one_message(client: httpx.AsyncClient) -> None:
    data = {"receptor": "09123456789", "message": "same", "localid": "77"}
    responses = await asyncio.gather(*(client.post(SEND, data=data) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["entries"][0]["messageid"] for r in responses}) == 1
    assert len((await client.get("/messages")).json()) == 1


async def test_a_wrong_key_gets_403_invalid_api_key(client: httpx.AsyncClient) -> None:
    wrong = await client.post("/v1/not-a-key/sms/send.json", data={"receptor": "09123456789", "message": "x"})
    assert wrong.status_code == 403
    assert wrong.json() == {"return": {"status": 403, "message": "کد شناسائی API-Key معتبر نمی‌باشد"}, "entries": None}
    assert (await client.get("/messages")).json() == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"message": "x"}, 400),
        ({"receptor": "09123456789"}, 400),
        ({"receptor": "+989123456789", "message": "x"}, 411),
        ({"receptor": "9123456789", "message": "x"}, 411),
        ({"receptor": "09123456789", "message": "  "}, 413),
        ({"receptor": "09123456789", "message": "x" * 901}, 413),
        ({"receptor": "09123456789", "message": "x", "sender": "CRM"}, 412),
        ({"receptor": ",".join(["09123456789"] * 201), "message": "x"}, 414),
        ({"receptor": "09123456789", "message": "x", "localid": "order-1"}, 400),
        ({"receptor": "09123456789,09351234567", "message": "x", "localid": "1"}, 400),
    ],
)
async def test_invalid_sends_get_kavenegars_codes(client: httpx.AsyncClient, data: dict[str, str], code: int) -> None:
    answer = await client.post(SEND, data=data)
    assert answer.status_code == code
    assert answer.json()["return"]["status"] == code
    assert (await client.get("/messages")).json() == []


async def test_fail_next_with_an_envelope_or_a_bare_5xx_then_recover_and_reset(client: httpx.AsyncClient) -> None:
    data = {"receptor": "09123456789", "message": "x", "localid": "9"}
    await client.post("/control/fail-next", json={"count": 1, "status": 418})
    credit = await client.post(SEND, data=data)
    assert credit.status_code == 418
    assert credit.json()["return"] == {"status": 418, "message": "اعتبار حساب شما کافی نیست"}
    await client.post("/control/fail-next", json={"count": 1, "status": 502})
    proxy = await client.post(SEND, data=data)
    assert proxy.status_code == 502 and proxy.headers["content-type"].startswith("text/plain")
    assert (await client.get("/messages")).json() == []
    ok = await client.post(SEND, data=data)
    assert ok.status_code == 200
    assert (await client.post("/control/reset")).status_code == 200
    assert (await client.get("/messages")).json() == []
    replay = await client.post(SEND, data=data)
    assert replay.json()["entries"][0]["messageid"] == FIRST_MESSAGE_ID


async def test_delay_next_records_then_answers_late(client: httpx.AsyncClient) -> None:
    await client.post("/control/delay-next", json={"count": 1, "seconds": 0.2})
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await client.post(SEND, data={"receptor": "09123456789", "message": "x"})
    assert answer.status_code == 200 and loop.time() - started >= 0.2
    quick = loop.time()
    await client.post(SEND, data={"receptor": "09123456789", "message": "y"})
    assert loop.time() - quick < 0.2


async def test_status_answers_per_id_and_the_inbox_returns_each_unread_reply_once(client: httpx.AsyncClient) -> None:
    sent = (await client.post(SEND, data={"receptor": "09123456789", "message": "x"})).json()["entries"][0]
    await client.post("/control/status", json={"status": 10})
    status = await client.post(f"/v1/{KEY}/sms/status.json", data={"messageid": f"{sent['messageid']},5"})
    assert [(e["messageid"], e["status"]) for e in status.json()["entries"]] == [(sent["messageid"], 10), (5, 100)]
    await client.post("/control/inbound", json={"sender": "09123456789", "receptor": "10004346", "message": "۱۱"})
    inbox = f"/v1/{KEY}/sms/receive.json"
    first = (await client.get(inbox, params={"linenumber": "10004346", "isread": "0"})).json()["entries"]
    again = (await client.get(inbox, params={"linenumber": "10004346", "isread": "0"})).json()["entries"]
    assert [(m["sender"], m["message"]) for m in first] == [("09123456789", "۱۱")] and again == []
    assert (await client.get(inbox, params={"isread": "0"})).status_code == 400
    assert (await client.post("/v1/wrong/sms/status.json", data={"messageid": "1"})).status_code == 403
