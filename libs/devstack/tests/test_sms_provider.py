from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from crm_devstack._util import free_port
from crm_devstack.sms_provider import create_app

AUTH = {"Authorization": "Bearer test-key"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sms.test") as http:
        yield http


def _send(key: str, to: str = "+972501234567", body: str = "ההזמנה שלך תגיע ב-3 במרץ") -> dict[str, object]:
    return {"json": {"to": to, "body": body, "sender": "CRM"}, "headers": {**AUTH, "Idempotency-Key": key}}


@pytest.mark.unit
async def test_records_once_per_idempotency_key(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/messages", **_send("order-1-shipped"))  # type: ignore[arg-type]
    again = await client.post("/v1/messages", **_send("order-1-shipped"))  # type: ignore[arg-type]
    other = await client.post("/v1/messages", **_send("order-2-shipped", to="+989123456789"))  # type: ignore[arg-type]

    assert first.status_code == 200
    assert first.json()["status"] == "accepted"
    assert again.status_code == 200
    assert again.json() == first.json()
    assert other.json()["id"] != first.json()["id"]

    messages = (await client.get("/messages")).json()
    assert [m["idempotency_key"] for m in messages] == ["order-1-shipped", "order-2-shipped"]
    assert messages[0]["id"] == first.json()["id"]
    assert messages[0]["to"] == "+972501234567"
    assert messages[0]["body"] == "ההזמנה שלך תגיע ב-3 במרץ"
    assert messages[0]["sender"] == "CRM"
    assert messages[0]["received_at"]
    assert messages[1]["to"] == "+989123456789"


@pytest.mark.unit
async def test_concurrent_sends_with_one_key_record_one_message(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/messages", **_send("same-key")) for _ in range(20))  # type: ignore[arg-type]
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len((await client.get("/messages")).json()) == 1


@pytest.mark.unit
async def test_auth_and_idempotency_key_are_required(client: httpx.AsyncClient) -> None:
    payload = {"to": "+972501234567", "body": "hi", "sender": "CRM"}
    no_auth = await client.post("/v1/messages", json=payload, headers={"Idempotency-Key": "k"})
    empty_key = await client.post(
        "/v1/messages", json=payload, headers={"Authorization": "Bearer ", "Idempotency-Key": "k"}
    )
    no_idempotency = await client.post("/v1/messages", json=payload, headers=AUTH)
    any_key = await client.post(
        "/v1/messages", json=payload, headers={"Authorization": "Bearer whatever", "Idempotency-Key": "k"}
    )

    assert no_auth.status_code == 401
    assert empty_key.status_code == 401
    assert no_idempotency.status_code == 400
    assert any_key.status_code == 200
    assert [m["idempotency_key"] for m in (await client.get("/messages")).json()] == ["k"]


@pytest.mark.unit
async def test_fail_next_then_recover_and_reset(client: httpx.AsyncClient) -> None:
    armed = await client.post("/control/fail-next", json={"count": 2, "status": 503})
    assert armed.status_code == 200

    failed = [await client.post("/v1/messages", **_send("k1")) for _ in range(2)]  # type: ignore[arg-type]
    assert [r.status_code for r in failed] == [503, 503]
    assert (await client.get("/messages")).json() == []

    ok = await client.post("/v1/messages", **_send("k1"))  # type: ignore[arg-type]
    assert ok.status_code == 200
    assert len((await client.get("/messages")).json()) == 1

    await client.post("/control/fail-next", json={"count": 1, "status": 429})
    assert (await client.post("/v1/messages", **_send("k2"))).status_code == 429  # type: ignore[arg-type]

    assert (await client.post("/control/reset")).status_code == 200
    assert (await client.get("/messages")).json() == []
    replay = await client.post("/v1/messages", **_send("k1"))  # type: ignore[arg-type]
    assert replay.status_code == 200
    assert replay.json()["id"] != ok.json()["id"]


@pytest.mark.integration
def test_runs_as_a_process_on_its_port() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm_devstack.sms_provider", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the SMS provider did not come up"
            time.sleep(0.1)
        sent = httpx.post(
            f"{base}/v1/messages",
            json={"to": "+989121234567", "body": "سفارش شما فردا می‌رسد", "sender": "CRM"},
            headers={**AUTH, "Idempotency-Key": "fa-1"},
        )
        assert sent.status_code == 200
        messages = httpx.get(f"{base}/messages").json()
        assert [(m["id"], m["body"]) for m in messages] == [(sent.json()["id"], "سفارش شما فردا می‌رسد")]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
