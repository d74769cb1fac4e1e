"""A fake SMS provider: the true edge of the system, recording every message it accepts.

Run it with ``python -m crm_devstack.sms_provider --port 8090``.

- ``POST /v1/messages`` — send; needs ``Authorization: Bearer <any key>`` (401 without) and
  ``Idempotency-Key`` (400 without). A repeated key returns the first response without
  recording again.
- ``GET /messages`` — every recorded message, in the order received.
- ``POST /control/fail-next`` ``{"count": N, "status": 503}`` — the next N sends fail.
- ``POST /control/reset`` — forget everything (the receipts go back to how the app was created).
- ``GET /healthz`` — liveness.

Delivery receipts, optional (off unless the app is created with ``receipts=ReceiptsConfig(...)``
or told by ``POST /control/receipts`` ``{"url": ..., "secret": ..., "status": "delivered"}``;
``{"url": null}`` turns them off): after accepting a new message the fake POSTs
``{"id", "status", "time"}`` (and ``"error"`` for a failed or undelivered status) to the URL, signed
as ``crm_kit.signatures`` says (``X-Timestamp``, ``X-Signature``), in a background task that tries
up to six times, doubling a 0.2 s back-off (about 6 s in all, as a provider retries a receiver
that is busy for a moment), until it gets a 2xx. ``GET /receipts`` lists what was delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
import uvicorn
from fastapi import BackgroundTasks, FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from crm_kit.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


class SendMessageRequest(BaseModel):
    to: str = Field(min_length=1, description="Recipient phone number, e.g. +972501234567")
    body: str = Field(min_length=1)
    sender: str | None = None


class SendMessageResponse(BaseModel):
    id: str
    status: str


class RecordedMessage(BaseModel):
    id: str
    to: str
    body: str
    sender: str | None
    idempotency_key: str
    received_at: datetime
    # W3C trace context the sender passed on, so tests can follow one trace to the SMS.
    traceparent: str | None = None


class FailNextRequest(BaseModel):
    count: int = Field(ge=0, le=10_000)
    status: int = Field(default=503, ge=400, le=599)


# Receipts in flight at once (the connections of the one client that sends them).
RECEIPT_CONNECTIONS = 16


class ReceiptsConfig(BaseModel):
    """Where (and as what) the fake reports delivery; no url: no receipts."""

    url: str | None = None
    secret: str = ""
    status: Literal["delivered", "undelivered", "sent", "failed"] = "delivered"


class ReceiptDelivery(BaseModel):
    """One receipt the fake tried to deliver: ok once the receiver answered 2xx."""

    id: str
    status: str
    url: str
    attempts: int
    ok: bool
    response_status: int | None = None
    error: str | None = None


class ProviderState:
    """In-memory state of the fake provider; every access holds ``lock``."""

    def __init__(self, receipts: ReceiptsConfig | None = None) -> None:
        self.lock = asyncio.Lock()
        self.messages: list[RecordedMessage] = []
        self.responses: dict[str, SendMessageResponse] = {}
        self.fail_remaining = 0
        self.fail_status = 503
        self.initial_receipts = receipts or ReceiptsConfig()
        # One pooled client for every receipt (a client per receipt costs a connection and TLS
        # context each: most of the fake's CPU at thousands of messages a second).
        self._client: httpx.AsyncClient | None = None
        self.receipts_gate = asyncio.Semaphore(RECEIPT_CONNECTIONS)
        self.receipts = self.initial_receipts
        self.deliveries: list[ReceiptDelivery] = []

    def receipts_client(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        if self._client is None:
            # Receipts queue for a connection as long as it takes (no pool timeout): a burst of
            # thousands waits its turn instead of failing and retrying.
            self._client = httpx.AsyncClient(
                transport=transport,
                timeout=httpx.Timeout(5.0, pool=None),
                limits=httpx.Limits(max_connections=RECEIPT_CONNECTIONS),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def reset(self) -> None:
        self.messages.clear()
        self.responses.clear()
        self.fail_remaining = 0
        self.fail_status = 503
        self.receipts = self.initial_receipts
        self.deliveries.clear()


def receipt_body(message_id: str, status: str) -> bytes:
    """The callback's JSON, as the bytes that are signed and sent."""
    body = {"id": message_id, "status": status, "time": datetime.now(UTC).isoformat()}
    if status in ("failed", "undelivered"):
        body["error"] = f"{status} (simulated by the fake provider)"
    return json.dumps(body, ensure_ascii=False).encode()


async def deliver_receipt(
    state: ProviderState,
    config: ReceiptsConfig,
    message_id: str,
    *,
    attempts: int = 6,
    backoff_seconds: float = 0.2,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ReceiptDelivery:
    """POST the signed receipt until the receiver answers 2xx, at most attempts times."""
    if not config.url:
        raise ValueError("no receipts URL is configured")
    url = config.url
    body = receipt_body(message_id, config.status)
    result = ReceiptDelivery(id=message_id, status=config.status, url=url, attempts=0, ok=False)
    client = state.receipts_client(transport)
    # At most as many receipts in flight as the pool has connections: thousands of tasks waiting in
    # httpx's pool cost it time per waiter on every release (quadratic under a burst), while an
    # asyncio semaphore wakes the next one for nothing.
    async with state.receipts_gate:
        await _post_receipt(client, config, body, result, attempts, backoff_seconds)
    async with state.lock:
        state.deliveries.append(result)
    return result


async def _post_receipt(
    client: httpx.AsyncClient,
    config: ReceiptsConfig,
    body: bytes,
    result: ReceiptDelivery,
    attempts: int,
    backoff_seconds: float,
) -> None:
    """POST one signed receipt until it gets a 2xx or the attempts run out (result records how)."""
    url = config.url or ""
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1))
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(config.secret.encode(), timestamp, body),
        }
        result.attempts = attempt + 1
        try:
            answer = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            result.error, result.response_status = repr(exc), None
            continue
        result.response_status, result.error = answer.status_code, None
        if answer.is_success:
            result.ok = True
            break


def schedule_receipt(
    background: BackgroundTasks, state: ProviderState, message_id: str, options: dict[str, Any]
) -> None:
    """Deliver the receipt of a newly accepted message after the answer, when receipts are on
    (the caller holds the lock)."""
    if state.receipts.url:
        background.add_task(deliver_receipt, state, state.receipts, message_id, **options)


def add_receipt_routes(app: FastAPI, state: ProviderState) -> None:
    """``POST /control/receipts`` and ``GET /receipts``."""

    @app.post("/control/receipts")
    async def configure_receipts(request: ReceiptsConfig) -> ReceiptsConfig:
        async with state.lock:
            state.receipts = request
        return request

    @app.get("/receipts", response_model=list[ReceiptDelivery])
    async def list_receipts() -> list[ReceiptDelivery]:
        async with state.lock:
            return list(state.deliveries)


def _closing(state: ProviderState) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the receipts' client closes with it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await state.aclose()

    return lifespan


def create_app(
    *,
    receipts: ReceiptsConfig | None = None,
    receipts_transport: httpx.AsyncBaseTransport | None = None,
    receipts_attempts: int = 6,
    receipts_backoff_seconds: float = 0.2,
) -> FastAPI:
    """A fresh provider app with its own empty state; with receipts, it reports delivery there
    (receipts_transport: how the callbacks travel, e.g. an in-process ASGI app in tests)."""
    state = ProviderState(receipts)
    app = FastAPI(title="Fake SMS provider", version="1.0", lifespan=_closing(state))
    app.state.provider = state
    receipt_options: dict[str, Any] = {
        "attempts": receipts_attempts,
        "backoff_seconds": receipts_backoff_seconds,
        "transport": receipts_transport,
    }

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/messages", response_model=SendMessageResponse)
    async def send_message(
        request: SendMessageRequest,
        background: BackgroundTasks,
        authorization: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        traceparent: Annotated[str | None, Header()] = None,
    ) -> Any:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise HTTPException(
                status_code=401,
                detail="missing or malformed Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not idempotency_key or not idempotency_key.strip():
            raise HTTPException(status_code=400, detail="the Idempotency-Key header is required")
        async with state.lock:
            if state.fail_remaining > 0:
                state.fail_remaining -= 1
                return JSONResponse(
                    status_code=state.fail_status,
                    content={"detail": "injected failure", "status": state.fail_status},
                )
            previous = state.responses.get(idempotency_key)
            if previous is not None:
                return previous
            response = SendMessageResponse(id=f"msg_{uuid.uuid4().hex}", status="accepted")
            state.messages.append(
                RecordedMessage(
                    id=response.id,
                    to=request.to,
                    body=request.body,
                    sender=request.sender,
                    idempotency_key=idempotency_key,
                    received_at=datetime.now(UTC),
                    traceparent=traceparent,
                )
            )
            state.responses[idempotency_key] = response
            schedule_receipt(background, state, response.id, receipt_options)
            return response

    @app.get("/messages", response_model=list[RecordedMessage])
    async def list_messages() -> list[RecordedMessage]:
        async with state.lock:
            return list(state.messages)

    @app.post("/control/fail-next")
    async def fail_next(request: FailNextRequest) -> dict[str, int]:
        async with state.lock:
            state.fail_remaining = request.count
            state.fail_status = request.status
        return {"count": request.count, "status": request.status}

    add_receipt_routes(app, state)

    @app.post("/control/reset")
    async def reset() -> dict[str, str]:
        async with state.lock:
            state.reset()
        return {"status": "reset"}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crm_devstack.sms_provider", description=__doc__)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--receipts-url", help="POST a signed delivery receipt here after each new message")
    parser.add_argument("--receipts-secret", default="", help="the HMAC secret the receipts are signed with")
    args = parser.parse_args(argv)
    receipts = ReceiptsConfig(url=args.receipts_url, secret=args.receipts_secret) if args.receipts_url else None
    # No access log: a line per message is most of what a fake at the edge would cost.
    uvicorn.run(create_app(receipts=receipts), host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
