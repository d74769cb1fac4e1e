"""The Kavenegar adapter's pure parts, the gateway factory, and the adapter against the fake
Kavenegar app in process (httpx ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from crm_devstack.kavenegar_fake import create_app
from crm_notifications.kavenegar import KavenegarSmsProvider, local_id, receptor
from crm_notifications.outbound import PermanentSendError, TransientSendError
from crm_notifications.sms_provider import HttpSmsProvider, SmsGateway, build_sms_gateway

pytestmark = pytest.mark.unit

KEY = "5A2B-SECRET-KEY-77"


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+989123456789", "09123456789"),
        ("+98 912 345 6789", "09123456789"),
        ("+98-912-345-6789", "09123456789"),
        ("00989123456789", "09123456789"),
        ("09123456789", "09123456789"),
        ("+972501234567", "00972501234567"),
        ("+12025550143", "0012025550143"),
    ],
)
def test_receptor_in_kavenegars_form(e164: str, expected: str) -> None:
    assert receptor(e164) == expected


@pytest.mark.parametrize("bad", ["", "9123456789", "+98912abc4567", "+98", "+۹۸۹۱۲۳۴۵۶۷۸۹", "+1234567890123456789"])
def test_a_number_kavenegar_cannot_take_is_permanent(bad: str) -> None:
    with pytest.raises(PermanentSendError):
        receptor(bad)


def test_local_id_is_a_stable_positive_long_per_key() -> None:
    first = local_id("order-shipped:9f1c")
    assert first == local_id("order-shipped:9f1c")
    assert first != local_id("order-shipped:9f1d")
    assert first.isdigit() and 0 < int(first) < 2**63
    assert len({local_id(f"k-{n}") for n in range(2000)}) == 2000
    assert local_id("x" * 200).isdigit()


def test_build_sms_gateway_makes_the_named_adapter() -> None:
    generic = build_sms_gateway("generic", "http://sms", "k", timeout_seconds=2, max_connections=4)
    kavenegar = build_sms_gateway(" Kavenegar ", "https://api.kavenegar.com", KEY, timeout_seconds=2, max_connections=4)
    assert isinstance(generic, HttpSmsProvider)
    assert isinstance(kavenegar, KavenegarSmsProvider)
    gateways: list[SmsGateway] = [generic, kavenegar]
    assert len(gateways) == 2
    assert KEY not in repr(kavenegar)
    with pytest.raises(ValueError, match="twilio"):
        build_sms_gateway("twilio", "http://sms", "k", timeout_seconds=2, max_connections=4)


def test_an_empty_api_key_is_refused() -> None:
    with pytest.raises(ValueError):
        KavenegarSmsProvider("https://api.kavenegar.com", "  ")


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app([KEY])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kavenegar") as control:
        yield app, control


def adapter(app: Any, api_key: str = KEY) -> KavenegarSmsProvider:
    return KavenegarSmsProvider(
        "http://kavenegar",
        api_key,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.02,
        transport=httpx.ASGITransport(app=app),
    )


async def test_send_posts_the_documented_form_and_returns_the_messageid(fake) -> None:
    app, control = fake
    sms = adapter(app)
    receipt = await sms.send(to="+989123456789", body="سفارش شما ارسال شد", sender="10004346", idempotency_key="k-1")
    await sms.aclose()
    recorded = (await control.get("/messages")).json()
    assert receipt.attempts == 1
    assert [(m["messageid"], m["receptor"], m["message"], m["sender"], m["localid"]) for m in recorded] == [
        (int(receipt.provider_message_id), "09123456789", "سفارش شما ارسال شد", "10004346", local_id("k-1"))
    ]


async def test_an_empty_sender_uses_the_accounts_default_line(fake) -> None:
    app, control = fake
    sms = adapter(app)
    await sms.send(to="+989123456789", body="hi", sender="", idempotency_key="k-2")
    await sms.aclose()
    assert [m["sender"] for m in (await control.get("/messages")).json()] == ["10004346"]


async def test_a_repeated_key_gets_the_first_message_back(fake) -> None:
    app, control = fake
    sms = adapter(app)
    first = await sms.send(to="+989123456789", body="one", sender="", idempotency_key="k-3")
    again = await sms.send(to="+989123456789", body="one", sender="", idempotency_key="k-3")
    await sms.aclose()
    assert again.provider_message_id == first.provider_message_id
    assert len((await control.get("/messages")).json()) == 1


@pytest.mark.parametrize("code", [409, 418, 451, 402])
async def test_transient_codes_are_retried(fake, code: int) -> None:
    app, control = fake
    sms = adapter(app)
    await control.post("/control/fail-next", json={"count": 2, "status": code})
    receipt = await sms.send(to="+989123456789", body="x", sender="", idempotency_key=f"t-{code}")
    await sms.aclose()
    assert receipt.attempts == 3
    assert len((await control.get("/messages")).json()) == 1


@pytest.mark.parametrize("code", [411, 412, 413, 414, 401, 407, 422])
async def test_permanent_codes_are_not_retried(fake, code: int) -> None:
    app, control = fake
    sms = adapter(app)
    await control.post("/control/fail-next", json={"count": 2, "status": code})
    with pytest.raises(PermanentSendError) as err:
        await sms.send(to="+989123456789", body="x", sender="", idempotency_key=f"p-{code}")
    await sms.aclose()
    assert err.value.attempts == 1 and str(code) in str(err.value)


async def test_the_fakes_own_checks_answer_with_kavenegars_codes(fake) -> None:
    app, _ = fake
    sms = adapter(app)
    with pytest.raises(PermanentSendError, match="412"):
        await sms.send(to="+989123456789", body="x", sender="CRM", idempotency_key="s-1")
    with pytest.raises(PermanentSendError, match="413"):
        await sms.send(to="+989123456789", body="x" * 901, sender="", idempotency_key="s-2")
    await sms.aclose()


async def test_a_wrong_key_is_permanent_and_the_key_is_not_in_the_error(fake) -> None:
    app, _ = fake
    sms = adapter(app, api_key="WRONG-KEY-123")
    with pytest.raises(PermanentSendError) as err:
        await sms.send(to="+989123456789", body="x", sender="", idempotency_key="w-1")
    await sms.aclose()
    assert "403" in str(err.value)
    assert "WRONG-KEY-123" not in str(err.value)


class _Answer(httpx.AsyncBaseTransport):
    """Answers every request with one canned response (an envelope the fake never sends)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body, self.requests = status, body, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if isinstance(self.body, str):
            return httpx.Response(self.status, text=self.body)
        return httpx.Response(self.status, json=self.body)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (502, "<html>bad gateway</html>", TransientSendError),
        (429, "slow down", TransientSendError),
        (404, "not found", PermanentSendError),
        (200, {"return": {"status": 200, "message": "ok"}, "entries": []}, PermanentSendError),
        (200, {"return": {"status": 200, "message": "ok"}, "entries": [{"status": 1}]}, PermanentSendError),
        (
            200,
            {"return": {"status": 200}, "entries": [{"messageid": 7, "status": 14, "statustext": "x"}]},
            PermanentSendError,
        ),
        (200, {"return": {"status": "200"}}, PermanentSendError),
        # The code in the envelope counts, whatever the HTTP status.
        (200, {"return": {"status": 409, "message": "busy"}, "entries": None}, TransientSendError),
        (503, {"return": {"status": 412, "message": "sender"}, "entries": None}, PermanentSendError),
    ],
)
async def test_answers_the_fake_never_gives(status: int, body: Any, error: type[Exception]) -> None:
    transport = _Answer(status, body)
    sms = KavenegarSmsProvider(
        "http://kavenegar", KEY, backoff_initial_seconds=0.01, backoff_max_seconds=0.02, transport=transport
    )
    with pytest.raises(error) as err:
        await sms.send(to="+989123456789", body="x", sender="", idempotency_key="a-1")
    await sms.aclose()
    assert transport.requests == (3 if error is TransientSendError else 1)
    assert KEY not in str(err.value)


async def test_a_key_echoed_back_by_the_server_is_redacted() -> None:
    transport = _Answer(403, {"return": {"status": 403, "message": f"key {KEY} is not valid"}, "entries": None})
    sms = KavenegarSmsProvider("http://kavenegar", KEY, transport=transport)
    with pytest.raises(PermanentSendError) as err:
        await sms.send(to="+989123456789", body="x", sender="", idempotency_key="r-1")
    await sms.aclose()
    assert KEY not in str(err.value) and "***" in str(err.value)


async def test_a_delivered_or_undelivered_entry_on_a_repeat_is_still_the_message() -> None:
    body = {"return": {"status": 200, "message": "ok"}, "entries": [{"messageid": 8792343, "status": 11}]}
    sms = KavenegarSmsProvider("http://kavenegar", KEY, transport=_Answer(200, body))
    receipt = await sms.send(to="+989123456789", body="x", sender="", idempotency_key="d-1")
    await sms.aclose()
    assert receipt.provider_message_id == "8792343"
