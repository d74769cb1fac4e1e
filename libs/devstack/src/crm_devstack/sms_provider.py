"""A fake SMS provider: the true edge of the system, recording every message it accepts.

Run it with ``python -m crm_devstack.sms_provider --port 8090``.

- ``POST /v1/messages`` — send; needs ``Authorization: Bearer <any key>`` (401 without) and
  ``Idempotency-Key`` (400 without). A repeated key returns the first response without
  recording again.
- ``GET /messages`` — every recorded message, in the order received.
- ``POST /control/fail-next`` ``{"count": N, "status": 503}`` — the next N sends fail.
- ``POST /control/reset`` — forget everything.
- ``GET /healthz`` — liveness.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


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


class ProviderState:
    """In-memory state of the fake provider; every access holds ``lock``."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.messages: list[RecordedMessage] = []
        self.responses: dict[str, SendMessageResponse] = {}
        self.fail_remaining = 0
        self.fail_status = 503

    def reset(self) -> None:
        self.messages.clear()
        self.responses.clear()
        self.fail_remaining = 0
        self.fail_status = 503


def create_app() -> FastAPI:
    """A fresh provider app with its own empty state."""
    app = FastAPI(title="Fake SMS provider", version="1.0")
    state = ProviderState()
    app.state.provider = state

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/messages", response_model=SendMessageResponse)
    async def send_message(
        request: SendMessageRequest,
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
    args = parser.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
