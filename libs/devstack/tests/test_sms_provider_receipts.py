"""The fake SMS provider's optional delivery receipts: signed callbacks after each new message."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from crm_devstack.sms_provider import ReceiptsConfig, create_app
from crm_kit.signatures import verify

pytestmark = pytest.mark.unit

SECRET = "receipts-secret"
AUTH = {"Authorization": "Bearer test-key"}


@dataclass
class Receiver:
    """The service's side of the callback: records what arrives, refuses the first `fail` calls."""

    fail: int = 0
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/dlr")
        async def dlr(request: Request) -> Response:
            self.calls.append((dict(request.headers), await request.body()))
            if self.fail > 0:
                self.fail -= 1
                return Response(status_code=503)
            return Response(status_code=204)

        return app


def _send(key: str) -> dict[str, object]:
    return {
        "json": {"to": "+972501234567", "body": "שלום", "sender": "CRM"},
        "headers": {**AUTH, "Idempotency-Key": key},
    }


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def provider(receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        receipts=ReceiptsConfig(url="http://service/dlr", secret=SECRET),
        receipts_transport=httpx.ASGITransport(app=receiver.app()),
        receipts_attempts=3,
        receipts_backoff_seconds=0.01,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sms") as http:
        yield http


async def test_a_new_message_gets_one_signed_receipt(provider: httpx.AsyncClient, receiver: Receiver) -> None:
    sent = await provider.post("/v1/messages", **_send("k-1"))  # type: ignore[arg-type]
    # The ASGI transport returns once the background task is done.
    [(headers, body)] = receiver.calls
    receipt = json.loads(body)
    assert (receipt["id"], receipt["status"]) == (sent.json()["id"], "delivered")
    assert "error" not in receipt and receipt["time"]
    assert headers["content-type"] == "application/json"
    assert verify(SECRET.encode(), headers["x-timestamp"], body, headers["x-signature"], time.time())
    assert not verify(b"other", headers["x-timestamp"], body, headers["x-signature"], time.time())
    deliveries = (await provider.get("/receipts")).json()
    assert [(d["id"], d["ok"], d["attempts"], d["response_status"]) for d in deliveries] == [
        (sent.json()["id"], True, 1, 204)
    ]


async def test_a_replayed_key_sends_no_second_receipt(provider: httpx.AsyncClient, receiver: Receiver) -> None:
    await provider.post("/v1/messages", **_send("k-2"))  # type: ignore[arg-type]
    await provider.post("/v1/messages", **_send("k-2"))  # type: ignore[arg-type]
    assert len(receiver.calls) == 1


async def test_a_refused_receipt_is_retried_with_a_fresh_signature(
    provider: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.fail = 2
    await provider.post("/v1/messages", **_send("k-3"))  # type: ignore[arg-type]
    assert len(receiver.calls) == 3
    assert len({body for _, body in receiver.calls}) == 1
    [delivery] = (await provider.get("/receipts")).json()
    assert (delivery["ok"], delivery["attempts"], delivery["response_status"]) == (True, 3, 204)


async def test_a_receiver_that_keeps_failing_is_given_up_on(provider: httpx.AsyncClient, receiver: Receiver) -> None:
    receiver.fail = 10
    sent = await provider.post("/v1/messages", **_send("k-4"))  # type: ignore[arg-type]
    assert sent.status_code == 200
    assert len(receiver.calls) == 3
    [delivery] = (await provider.get("/receipts")).json()
    assert (delivery["ok"], delivery["attempts"], delivery["response_status"]) == (False, 3, 503)


async def test_receipts_are_configured_by_control_and_reset_restores_the_creation_config(
    provider: httpx.AsyncClient, receiver: Receiver
) -> None:
    armed = await provider.post(
        "/control/receipts", json={"url": "http://service/dlr", "secret": "s2", "status": "failed"}
    )
    assert armed.status_code == 200
    await provider.post("/v1/messages", **_send("k-5"))  # type: ignore[arg-type]
    headers, body = receiver.calls[-1]
    assert json.loads(body)["status"] == "failed" and json.loads(body)["error"]
    assert verify(b"s2", headers["x-timestamp"], body, headers["x-signature"], time.time())

    await provider.post("/control/receipts", json={"url": None})
    await provider.post("/v1/messages", **_send("k-6"))  # type: ignore[arg-type]
    assert len(receiver.calls) == 1

    await provider.post("/control/reset")
    assert (await provider.get("/receipts")).json() == []
    await provider.post("/v1/messages", **_send("k-7"))  # type: ignore[arg-type]
    assert json.loads(receiver.calls[-1][1])["status"] == "delivered"


async def test_without_receipts_nothing_is_called() -> None:
    receiver = Receiver()
    app = create_app(receipts_transport=httpx.ASGITransport(app=receiver.app()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sms") as http:
        assert (await http.post("/v1/messages", **_send("k-8"))).status_code == 200  # type: ignore[arg-type]
        assert (await http.get("/receipts")).json() == []
    assert receiver.calls == []


async def test_an_unreachable_receiver_is_recorded_not_raised() -> None:
    app = create_app(
        receipts=ReceiptsConfig(url="http://127.0.0.1:9/dlr", secret=SECRET),
        receipts_attempts=3,
        receipts_backoff_seconds=0.01,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sms") as http:
        assert (await http.post("/v1/messages", **_send("k-9"))).status_code == 200  # type: ignore[arg-type]
        [delivery] = (await http.get("/receipts")).json()
    assert (delivery["ok"], delivery["attempts"], delivery["response_status"]) == (False, 3, None)
    assert "ConnectError" in delivery["error"]
