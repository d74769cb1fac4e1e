"""The Kavenegar adapter against the fake Kavenegar API served by uvicorn on a real port: real
connections, real timeouts (the ASGI transport has none), a send whose answer is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from crm_devstack.kavenegar_fake import create_app
from crm_kit.testing import eventually, free_port
from crm_notifications.kavenegar import KavenegarSmsProvider
from crm_notifications.outbound import PermanentSendError, TransientSendError
from crm_notifications.sms_provider import build_sms_gateway

pytestmark = pytest.mark.integration

KEY = "9F3E-7A1C-TOP-SECRET"
TO = "+989121234567"


@pytest.fixture
async def kavenegar_url() -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app([KEY]), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, result=server.started), timeout=10, interval=0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def control(kavenegar_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=kavenegar_url) as client:
        yield client


def adapter(base_url: str, *, api_key: str = KEY, timeout: float = 5.0) -> KavenegarSmsProvider:
    return KavenegarSmsProvider(
        base_url, api_key, timeout_seconds=timeout, backoff_initial_seconds=0.01, backoff_max_seconds=0.05
    )


async def test_send_succeeds_through_the_factory(kavenegar_url: str, control: httpx.AsyncClient) -> None:
    sms = build_sms_gateway("kavenegar", kavenegar_url, KEY, timeout_seconds=5, max_connections=4)
    receipt = await sms.send(to=TO, body="سفارش شما فردا می‌رسد", sender="10004346", idempotency_key="order-1")
    await sms.aclose()
    messages = (await control.get("/messages")).json()
    assert receipt.attempts == 1
    assert [(str(m["messageid"]), m["receptor"], m["message"]) for m in messages] == [
        (receipt.provider_message_id, "09121234567", "سفارش شما فردا می‌رسد")
    ]


async def test_a_repeated_localid_returns_the_first_message_without_sending_again(
    kavenegar_url: str, control: httpx.AsyncClient
) -> None:
    sms = adapter(kavenegar_url)
    first = await sms.send(to=TO, body="one", sender="", idempotency_key="order-2")
    # A second delivery of the same event (a redelivery, another replica) with its own client.
    other = adapter(kavenegar_url)
    again = await other.send(to=TO, body="one", sender="", idempotency_key="order-2")
    await sms.aclose()
    await other.aclose()
    assert again.provider_message_id == first.provider_message_id
    assert len((await control.get("/messages")).json()) == 1


async def test_a_timed_out_send_that_went_out_is_retried_into_the_same_message(
    kavenegar_url: str, control: httpx.AsyncClient
) -> None:
    """The first attempt is recorded but answered too late; the retry with the same localid gets
    that message back: one SMS, the first one's id."""
    await control.post("/control/delay-next", json={"count": 1, "seconds": 1.5})
    sms = adapter(kavenegar_url, timeout=0.5)
    receipt = await sms.send(to=TO, body="late", sender="", idempotency_key="order-3")
    await sms.aclose()
    messages = (await control.get("/messages")).json()
    assert receipt.attempts == 2
    assert [str(m["messageid"]) for m in messages] == [receipt.provider_message_id]


async def test_timeouts_every_time_are_transient_after_three_attempts(
    kavenegar_url: str, control: httpx.AsyncClient
) -> None:
    await control.post("/control/delay-next", json={"count": 3, "seconds": 1.0})
    sms = adapter(kavenegar_url, timeout=0.3)
    with pytest.raises(TransientSendError) as err:
        await sms.send(to=TO, body="late", sender="", idempotency_key="order-4")
    await sms.aclose()
    assert err.value.attempts == 3 and "Timeout" in str(err.value)
    assert KEY not in str(err.value)
    # However often it was tried, one message went out.
    await asyncio.sleep(1.0)
    assert len((await control.get("/messages")).json()) == 1


async def test_5xx_and_409_are_retried_then_succeed_once(kavenegar_url: str, control: httpx.AsyncClient) -> None:
    sms = adapter(kavenegar_url)
    await control.post("/control/fail-next", json={"count": 2, "status": 502})
    first = await sms.send(to=TO, body="x", sender="", idempotency_key="order-5")
    await control.post("/control/fail-next", json={"count": 1, "status": 409})
    second = await sms.send(to=TO, body="y", sender="", idempotency_key="order-6")
    await sms.aclose()
    assert (first.attempts, second.attempts) == (3, 2)
    assert len((await control.get("/messages")).json()) == 2


async def test_transient_failure_after_three_attempts(kavenegar_url: str, control: httpx.AsyncClient) -> None:
    sms = adapter(kavenegar_url)
    await control.post("/control/fail-next", json={"count": 3, "status": 503})
    with pytest.raises(TransientSendError) as err:
        await sms.send(to=TO, body="x", sender="", idempotency_key="order-7")
    await sms.aclose()
    assert err.value.attempts == 3 and "503" in str(err.value)
    assert (await control.get("/messages")).json() == []


async def test_a_permanent_code_fails_at_once(kavenegar_url: str, control: httpx.AsyncClient) -> None:
    sms = adapter(kavenegar_url)
    await control.post("/control/fail-next", json={"count": 2, "status": 411})
    with pytest.raises(PermanentSendError) as err:
        await sms.send(to=TO, body="x", sender="", idempotency_key="order-8")
    assert err.value.attempts == 1 and "411" in str(err.value)
    # The second injected failure is still queued: proof that no retry consumed it.
    with pytest.raises(PermanentSendError):
        await sms.send(to=TO, body="x", sender="", idempotency_key="order-8")
    await sms.aclose()


async def test_a_wrong_key_is_permanent_and_never_in_the_error(kavenegar_url: str) -> None:
    sms = adapter(kavenegar_url, api_key="WRONG-0000-KEY")
    with pytest.raises(PermanentSendError) as err:
        await sms.send(to=TO, body="x", sender="", idempotency_key="order-9")
    await sms.aclose()
    assert "403" in str(err.value)
    assert "WRONG-0000-KEY" not in str(err.value) and "WRONG-0000-KEY" not in repr(err.value)


async def test_an_unreachable_api_is_transient_and_the_key_stays_out_of_the_error() -> None:
    sms = adapter(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    with pytest.raises(TransientSendError) as err:
        await sms.send(to=TO, body="x", sender="", idempotency_key="order-10")
    await sms.aclose()
    assert err.value.attempts == 3
    assert KEY not in str(err.value) and KEY not in repr(err.value)
    assert err.value.__cause__ is None
