"""The provider adapter against the real fake provider app, in process (httpx ASGI transport)."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from crm_devstack.sms_provider import create_app
from crm_notifications.outbound import PermanentSendError, TransientSendError
from crm_notifications.sms_provider import HttpSmsProvider

pytestmark = pytest.mark.unit


@pytest.fixture
async def provider_app() -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sms") as control:
        yield app, control


def adapter(app: Any, api_key: str = "test-key") -> HttpSmsProvider:
    return HttpSmsProvider(
        "http://sms",
        api_key,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.02,
        transport=httpx.ASGITransport(app=app),
    )


async def test_send_retries_5xx_and_429_then_succeeds_once(provider_app) -> None:
    app, control = provider_app
    sms = adapter(app)
    await control.post("/control/fail-next", json={"count": 1, "status": 503})
    first = await sms.send(to="+972501234567", body="שלום", sender="CRM", idempotency_key="k-1")
    await control.post("/control/fail-next", json={"count": 2, "status": 429})
    again = await sms.send(to="+972501234567", body="שלום", sender="CRM", idempotency_key="k-1")
    await sms.aclose()
    assert (first.attempts, again.attempts) == (2, 3)
    assert again.provider_message_id == first.provider_message_id
    recorded = (await control.get("/messages")).json()
    assert [(m["to"], m["body"], m["sender"], m["idempotency_key"]) for m in recorded] == [
        ("+972501234567", "שלום", "CRM", "k-1")
    ]


async def test_transient_failure_after_three_attempts(provider_app) -> None:
    app, control = provider_app
    sms = adapter(app)
    await control.post("/control/fail-next", json={"count": 3, "status": 502})
    with pytest.raises(TransientSendError) as err:
        await sms.send(to="+972501234567", body="x", sender="CRM", idempotency_key="k-2")
    await sms.aclose()
    assert err.value.attempts == 3 and "502" in str(err.value)
    assert (await control.get("/messages")).json() == []


async def test_a_4xx_is_permanent_and_not_retried(provider_app) -> None:
    app, control = provider_app
    sms = adapter(app)
    await control.post("/control/fail-next", json={"count": 2, "status": 422})
    with pytest.raises(PermanentSendError) as err:
        await sms.send(to="+972501234567", body="x", sender="CRM", idempotency_key="k-3")
    assert err.value.attempts == 1 and "422" in str(err.value)
    # The second injected failure is still queued: proof that no retry consumed it.
    with pytest.raises(PermanentSendError):
        await sms.send(to="+972501234567", body="x", sender="CRM", idempotency_key="k-3")
    await sms.aclose()


async def test_unreachable_provider_is_transient() -> None:
    sms = HttpSmsProvider("http://127.0.0.1:9", "k", timeout_seconds=0.5, backoff_initial_seconds=0.01)
    with pytest.raises(TransientSendError) as err:
        await sms.send(to="+972501234567", body="x", sender="CRM", idempotency_key="k-4")
    await sms.aclose()
    assert err.value.attempts == 3
