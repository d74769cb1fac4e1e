"""A fake of Kavenegar's SMS API (https://kavenegar.com/rest.html), recording every message it accepts.

Run it with ``python -m crm_devstack.kavenegar_fake --port 8091 --api-key dev-kavenegar-key``.

- ``GET|POST /v1/{api_key}/sms/send.json`` — send (form-encoded or query parameters ``receptor``,
  ``message``, optional ``sender``, ``localid``, ``date``, ``type``). Answers Kavenegar's envelope
  ``{"return": {"status", "message"}, "entries": [...]}`` with the HTTP status equal to
  ``return.status``. A key it was not created with gets 403 (Kavenegar's "invalid API-Key"; its 401
  is "account disabled"). A ``localid`` it has seen for the key is not sent again: the answer is
  the entry of the first message, and nothing is recorded.
- ``GET|POST /v1/{api_key}/sms/status.json`` — ``messageid`` (comma-separated, at most 500): one
  entry ``{"messageid", "status", "statustext"}`` per id, 100 for an id it never sent.
- ``GET|POST /v1/{api_key}/sms/receive.json`` — ``linenumber`` (required) and ``isread=0``: the
  line's unread inbound messages, at most 100, ``{"messageid", "message", "sender", "receptor",
  "date"}``, each marked read by being returned (as the real API does).
- ``GET /messages`` — every recorded message, in the order received.
- ``POST /control/status`` ``{"status": 10, "receptor": "0912..."}`` — set the delivery status of
  the messages sent (to that receptor, or all).
- ``POST /control/inbound`` ``{"sender", "receptor", "message"}`` — an SMS arrives on a line.
- ``POST /control/fail-next`` ``{"count": N, "status": 418}`` — the next N sends fail with that
  code: below 500 as Kavenegar's envelope, 500 and up as a bare HTTP error (a proxy's answer).
- ``POST /control/delay-next`` ``{"count": N, "seconds": 2}`` — the next N sends are recorded, then
  answered only after the delay (a send that went out while the client timed out).
- ``POST /control/reset`` — forget everything.
- ``GET /healthz`` — liveness.

Checks the real API makes that this one copies: receptor a national 09... number (or 00 + an
international one, or 98...), message non-empty and at most 900 characters, sender (when given)
digits, at most 200 receptors, one localid per receptor. localid must be digits here (the API
documents it as a Long); the real error code for a non-numeric one is not documented, 400 is a guess.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

DEFAULT_API_KEY = "dev-kavenegar-key"
DEFAULT_SENDER = "10004346"
FIRST_MESSAGE_ID = 8792343

# Kavenegar's return.status messages (the documented table, in its own words).
MESSAGES = {
    200: "تایید شد",
    400: "پارامترها ناقص هستند",
    401: "حساب کاربری غیرفعال شده است",
    402: "عملیات ناموفق بود",
    403: "کد شناسائی API-Key معتبر نمی‌باشد",
    409: "سرور قادر به پاسخگوئی نیست بعدا تلاش کنید",
    411: "دریافت کننده نامعتبر است",
    412: "ارسال کننده نامعتبر است",
    413: "پیام خالی است و یا طول پیام بیش از حد مجاز می‌باشد",
    414: "حجم درخواست بیشتر از حد مجاز است",
    418: "اعتبار حساب شما کافی نیست",
    451: "فراخوانی بیش از حد در بازه زمانی مشخص IP محدود شده",
}
QUEUED, QUEUED_TEXT = 1, "در صف ارسال"
MAX_RECEPTORS = 200
MAX_MESSAGE_LENGTH = 900

_RECEPTOR = re.compile(r"(09\d{9}|989\d{9}|00\d{8,15})")
_SENDER = re.compile(r"\d{3,20}")


class Entry(BaseModel):
    """One message as Kavenegar answers it."""

    messageid: int
    message: str
    status: int
    statustext: str
    sender: str
    receptor: str
    date: int
    cost: int


class RecordedMessage(Entry):
    localid: str | None = None


class FailNextRequest(BaseModel):
    count: int = Field(ge=0, le=10_000)
    status: int = Field(default=409, ge=400, le=599)


class StatusRequest(BaseModel):
    status: int = Field(ge=1, le=100)
    receptor: str = ""


class InboundRequest(BaseModel):
    sender: str = Field(min_length=1, max_length=20)
    receptor: str = Field(default=DEFAULT_SENDER, min_length=1, max_length=20)
    message: str = Field(min_length=1, max_length=900)


class DelayNextRequest(BaseModel):
    count: int = Field(ge=0, le=10_000)
    seconds: float = Field(default=2.0, ge=0, le=60)


class KavenegarState:
    """In-memory state of the fake; every access holds ``lock``."""

    def __init__(self, api_keys: Iterable[str]) -> None:
        self.lock = asyncio.Lock()
        self.api_keys = frozenset(api_keys)
        self.reset()

    def reset(self) -> None:
        self.messages: list[RecordedMessage] = []
        self.inbound: list[dict[str, Any]] = []
        self.by_localid: dict[tuple[str, str], Entry] = {}
        self.next_id = FIRST_MESSAGE_ID
        self.fail_remaining = 0
        self.fail_status = 409
        self.delay_remaining = 0
        self.delay_seconds = 0.0


class SendError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(MESSAGES.get(code, ""))
        self.code = code


def envelope(code: int, entries: list[Entry] | None = None) -> JSONResponse:
    """Kavenegar's answer: HTTP status = return.status."""
    body: dict[str, Any] = {"return": {"status": code, "message": MESSAGES.get(code, "")}}
    body["entries"] = [entry.model_dump() for entry in entries] if entries is not None else None
    return JSONResponse(status_code=code, content=body)


def cost(message: str) -> int:
    """What Kavenegar would charge in rials: a price per part (70 characters, 160 Latin)."""
    per_part = 160 if message.isascii() else 70
    return 120 * max(1, math.ceil(len(message) / per_part))


def _validated(params: dict[str, str]) -> tuple[list[str], str, str, list[str | None]]:
    """(receptors, message, sender, localids) of a send, or SendError with Kavenegar's code."""
    if "receptor" not in params or "message" not in params:
        raise SendError(400)
    receptors = [r.strip() for r in params["receptor"].split(",")]
    if len(receptors) > MAX_RECEPTORS:
        raise SendError(414)
    if not all(_RECEPTOR.fullmatch(r) for r in receptors):
        raise SendError(411)
    message = params["message"]
    if not message.strip() or len(message) > MAX_MESSAGE_LENGTH:
        raise SendError(413)
    sender = params.get("sender", "").strip() or DEFAULT_SENDER
    if not _SENDER.fullmatch(sender):
        raise SendError(412)
    localids: list[str | None] = [None] * len(receptors)
    if params.get("localid", "").strip():
        given = [local.strip() for local in params["localid"].split(",")]
        if len(given) != len(receptors) or not all(local.isascii() and local.isdigit() for local in given):
            raise SendError(400)
        localids = list(given)
    return receptors, message, sender, localids


def _send(state: KavenegarState, api_key: str, params: dict[str, str]) -> list[Entry]:
    """Record the messages of one send (the caller holds the lock); a localid seen before gives
    back its first message instead."""
    receptors, message, sender, localids = _validated(params)
    entries: list[Entry] = []
    for to, local in zip(receptors, localids, strict=True):
        previous = state.by_localid.get((api_key, local)) if local is not None else None
        if previous is not None:
            entries.append(previous)
            continue
        entry = Entry(
            messageid=state.next_id,
            message=message,
            status=QUEUED,
            statustext=QUEUED_TEXT,
            sender=sender,
            receptor=to,
            date=int(time.time()),
            cost=cost(message),
        )
        state.next_id += 1
        state.messages.append(RecordedMessage(**entry.model_dump(), localid=local))
        if local is not None:
            state.by_localid[(api_key, local)] = entry
        entries.append(entry)
    return entries


def create_app(api_keys: Iterable[str] = (DEFAULT_API_KEY,)) -> FastAPI:
    """A fresh fake with its own empty state, accepting the given API keys."""
    app = FastAPI(title="Fake Kavenegar", version="1.0")
    state = KavenegarState(api_keys)
    app.state.kavenegar = state

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/v1/{api_key}/sms/send.json", methods=["GET", "POST"])
    async def send(api_key: str, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            # Form-encoded, parsed here: devstack does not depend on python-multipart.
            params.update(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        async with state.lock:
            response, delay = _answer(state, api_key, params)
        if delay:
            await asyncio.sleep(delay)
        return response

    _add_report_routes(app, state)
    _add_control_routes(app, state)
    return app


def _add_report_routes(app: FastAPI, state: KavenegarState) -> None:
    """sms/status.json (delivery statuses by message id) and sms/receive.json (a line's unread inbox)."""

    @app.api_route("/v1/{api_key}/sms/status.json", methods=["GET", "POST"])
    async def status(api_key: str, request: Request) -> Response:
        params = await _params(request)
        async with state.lock:
            if api_key not in state.api_keys:
                return envelope(403)
            ids = [i.strip() for i in params.get("messageid", "").split(",") if i.strip()]
            if not ids or len(ids) > MAX_STATUS_IDS:
                return envelope(400)
            by_id = {str(m.messageid): m for m in state.messages}
            found = [_status_of(i, by_id.get(i)) for i in ids]
        return _raw_envelope(200, found)

    @app.api_route("/v1/{api_key}/sms/receive.json", methods=["GET", "POST"])
    async def receive(api_key: str, request: Request) -> Response:
        params = await _params(request)
        async with state.lock:
            if api_key not in state.api_keys:
                return envelope(403)
            line = params.get("linenumber", "").strip()
            if not line or params.get("isread", "") not in ("0", "1"):
                return envelope(400)
            wanted = [m for m in state.inbound if m["receptor"] == line and not m["read"]][:MAX_INBOX]
            for m in wanted:
                m["read"] = True
        return _raw_envelope(200, [{k: v for k, v in m.items() if k != "read"} for m in wanted])


def _status_of(message_id: str, sent: RecordedMessage | None) -> dict[str, Any]:
    shown: int | str = int(message_id) if message_id.isdigit() else message_id
    if sent is None:
        return {"messageid": shown, "status": 100, "statustext": "شناسه نامعتبر"}
    return {"messageid": shown, "status": sent.status, "statustext": sent.statustext}


MAX_STATUS_IDS = 500
MAX_INBOX = 100
STATUS_TEXTS = {1: QUEUED_TEXT, 10: "رسیده به گیرنده", 11: "نرسیده به گیرنده", 6: "خطا در ارسال", 14: "بلاک شده"}


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        params.update(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _raw_envelope(code: int, entries: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        status_code=code, content={"return": {"status": code, "message": MESSAGES[code]}, "entries": entries}
    )


def _answer(state: KavenegarState, api_key: str, params: dict[str, str]) -> tuple[Response, float]:
    """The answer to a send and how long to hold it (the caller holds the lock)."""
    if api_key not in state.api_keys:
        return envelope(403), 0.0
    if state.fail_remaining > 0:
        state.fail_remaining -= 1
        if state.fail_status >= 500:
            return PlainTextResponse("upstream failure (injected)", status_code=state.fail_status), 0.0
        return envelope(state.fail_status), 0.0
    try:
        entries = _send(state, api_key, params)
    except SendError as exc:
        return envelope(exc.code), 0.0
    delay = 0.0
    if state.delay_remaining > 0:
        state.delay_remaining -= 1
        delay = state.delay_seconds
    return envelope(200, entries), delay


def _add_control_routes(app: FastAPI, state: KavenegarState) -> None:
    """What tests see and steer: the recorded messages, injected failures and delays, reset."""

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

    @app.post("/control/delay-next")
    async def delay_next(request: DelayNextRequest) -> dict[str, float]:
        async with state.lock:
            state.delay_remaining = request.count
            state.delay_seconds = request.seconds
        return {"count": request.count, "seconds": request.seconds}

    @app.post("/control/status")
    async def set_status(request: StatusRequest) -> dict[str, int]:
        async with state.lock:
            changed = 0
            for i, m in enumerate(state.messages):
                if request.receptor in ("", m.receptor):
                    text = STATUS_TEXTS.get(request.status, "")
                    state.messages[i] = m.model_copy(update={"status": request.status, "statustext": text})
                    changed += 1
        return {"changed": changed}

    @app.post("/control/inbound")
    async def inbound(request: InboundRequest) -> dict[str, int]:
        async with state.lock:
            message_id = state.next_id
            state.next_id += 1
            state.inbound.append(
                {
                    "messageid": message_id,
                    "message": request.message,
                    "sender": request.sender,
                    "receptor": request.receptor,
                    "date": int(time.time()),
                    "read": False,
                }
            )
        return {"messageid": message_id}

    @app.post("/control/reset")
    async def reset() -> dict[str, str]:
        async with state.lock:
            state.reset()
        return {"status": "reset"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crm_devstack.kavenegar_fake", description=__doc__)
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", action="append", dest="api_keys", help=f"an accepted key ({DEFAULT_API_KEY})")
    args = parser.parse_args(argv)
    app = create_app(args.api_keys or (DEFAULT_API_KEY,))
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
