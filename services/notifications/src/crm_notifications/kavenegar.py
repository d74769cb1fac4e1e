"""The Kavenegar adapter (Iran): one ``sms/send`` call per message, the same ``send`` as the generic
adapter (``sms_provider.SmsGateway``); and what comes back, which Kavenegar offers to be fetched
(``statuses``: ``sms/status.json``; ``inbox``: ``sms/receive.json``), read by ``kavenegar_poll``.

The API, as documented:

- ``POST https://api.kavenegar.com/v1/{API-KEY}/sms/send.json``, form-encoded (GET works too):
  ``receptor`` (comma-separated numbers), ``message``, optional ``sender`` (a line number; the
  account's default line without it), ``date`` (Unix time, to schedule), ``type``, ``localid``,
  ``hide``, ``tag``.
- Every answer is ``{"return": {"status": 200, "message": "..."}, "entries": [...]}``; a send's
  entries are ``{"messageid", "message", "status", "statustext", "sender", "receptor", "date",
  "cost"}``, one per receptor. On an error ``return.status`` is the error code, and the official
  clients read the same envelope from a non-200 HTTP answer (kavenegar-go decodes ``return`` when
  the HTTP status is not 200), so the code in the body is what counts here, not the HTTP status.
- ``localid``: our id of the message; Kavenegar does not send a message a second time for a
  localid it has seen and answers with the message it sent for it. That is the idempotency key
  here, as ``Idempotency-Key`` is for the generic provider. It is documented as a Long (a number),
  so the key is hashed to a positive 63-bit integer (``local_id``).

Codes (return.status) and what a retry can do about them:

- transient: 409 "the server cannot answer, try later", 451 "too many calls from this IP", 418
  "not enough credit" (the same send succeeds once the account is topped up, so the message waits
  instead of failing for good), 402 "operation failed" (unspecified; safe to repeat because of
  localid), and any HTTP 5xx / 429 without an envelope, a timeout or a dropped connection.
- permanent: everything else, e.g. 400/406 missing parameters, 401 account disabled, 403 invalid
  API key, 407/416 IP not allowed, 411 invalid receptor, 412 invalid sender, 413 empty or too long
  message, 414 too many receptors, 417 invalid date, 422 bad characters, 501 test account, 607 bad
  tag. An entry already failed at send time (6, 13, 14, 100) is permanent too.

Numbers: Kavenegar's examples and errors use the national form ``09123456789``; an E.164 Iranian
number (+98...) is sent as 0 + the national number, any other country as 00 + country code + number
(international lines only).

The API key is in the URL path: the URL is never logged or put in an error (crm_kit.logs keeps
httpx's request lines at WARNING), and ``_redact`` strips the key from any text that reaches an
exception.

Docs relied on:
- https://kavenegar.com/rest.html (sms/send, sms/status, sms/statuslocalmessageid, the error table
  "result-general" and the status table); Persian only; read through its extractions below.
- https://github.com/kavenegar/kavenegar-python (kavenegar.py: POST form-encoded to
  /v1/{key}/{action}/{method}.json), https://github.com/kavenegar/kavenegar-php
  (src/KavenegarApi.php: Send(sender, receptor, message, date, type, localid)),
  https://github.com/kavenegar/kavenegar-go (client.go: the envelope on a non-200 answer; message.go),
  https://github.com/kavenegar/kavenegar-dotnet (Models/Enums/MessageStatus.cs).
- https://github.com/FardaDev/kavenegar-for-laravel docs/api-endpoints.md and src/Enums/
  ApiErrorCodeEnum.php (extracted from rest.html: localid is a Long, "if the same localid is sent
  again the API returns the existing message without resending"; statuslocalmessageid answers for
  the last 12 hours).

Not confirmed (no primary page could be read): how long Kavenegar remembers a localid (maybe only
the 12 hours statuslocalmessageid covers, so a retry days later could send again); whether a repeat
with a different receptor or text is still refused; whether the repeat's entry carries the original
or the current status; whether the HTTP status always equals return.status (both are handled); the
exact international number format; Kavenegar's rate limits. 401 vs 403: the brief called a wrong key
"401-style", but the documented table (and every SDK read) says 401 = account disabled and
403 = invalid API key; both are permanent here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from opentelemetry import trace

from crm_kit import telemetry
from crm_notifications.outbound import PermanentSendError, RetryPolicy, SendReceipt, TransientSendError, with_retries

KAVENEGAR_BASE_URL = "https://api.kavenegar.com"

# return.status codes a later attempt of the same send may get past (module doc).
TRANSIENT_CODES = frozenset({402, 409, 418, 451})
# Entry statuses meaning the message was refused or dropped at once (module doc of receipts.py).
FAILED_ENTRY_STATUSES = frozenset({6, 13, 14, 100})

_DIGITS = re.compile(r"\d{6,17}")
_SEPARATORS = re.compile(r"[\s\-().]")


def receptor(number: str) -> str:
    """The number as Kavenegar's receptor: +98912... -> 0912..., another country's +CC... ->
    00CC..., a national 09... as is. Raises PermanentSendError for anything else."""
    text = _SEPARATORS.sub("", number)
    if text.startswith("+"):
        digits = text[1:]
        national = digits[2:] if digits.startswith("98") else None
    elif text.startswith("00"):
        digits = text[2:]
        national = digits[2:] if digits.startswith("98") else None
    elif text.startswith("0"):
        digits, national = text, text[1:]
    else:
        raise PermanentSendError("the recipient's number is neither E.164 (+98...) nor a national 0... number")
    if not digits.isascii() or not _DIGITS.fullmatch(digits):
        raise PermanentSendError("the recipient's number is not a phone number")
    if national is not None:
        return "0" + national.lstrip("0")
    return "00" + digits


def local_id(idempotency_key: str) -> str:
    """The key as Kavenegar's localid: a positive 63-bit integer (a .NET Long), the same for the
    same key. A collision needs two keys sharing 63 bits of SHA-256 within the window Kavenegar
    remembers localids: not a practical risk."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return str(int.from_bytes(digest[:8], "big") >> 1 or 1)


# sms/status.json answers for at most this many ids a call.
MAX_STATUS_IDS = 500


class KavenegarError(Exception):
    """A status or inbox call that failed; nothing was read."""


@dataclass(frozen=True)
class InboundSms:
    message_id: str
    sender: str
    receptor: str
    text: str
    # Unix seconds, when Kavenegar says.
    date: int | None


class KavenegarSmsProvider:
    """Client of Kavenegar's ``sms/send``; one pooled connection set for every send."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_seconds: float = 5.0,
        max_connections: int = 16,
        attempts: int = 3,
        backoff_initial_seconds: float = 0.1,
        backoff_max_seconds: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not api_key.strip():
            raise ValueError("the Kavenegar API key is empty")
        self._api_key = api_key.strip()
        # Quoted so a key cannot add path segments; kept out of base_url so httpx's repr of the
        # client does not show it.
        self._path = f"/v1/{quote(self._api_key, safe='')}/sms/send.json"
        self._client = httpx.AsyncClient(
            base_url=base_url or KAVENEGAR_BASE_URL,
            headers={"Accept": "application/json"},
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )
        self._retry = RetryPolicy(attempts, backoff_initial_seconds, backoff_max_seconds)

    def __repr__(self) -> str:
        return f"KavenegarSmsProvider(base_url={str(self._client.base_url)!r})"

    async def send(self, *, to: str, body: str, sender: str, idempotency_key: str) -> SendReceipt:
        """Send one SMS; returns Kavenegar's messageid. Raises TransientSendError or PermanentSendError."""
        form = {"receptor": receptor(to), "message": body, "localid": local_id(idempotency_key)}
        if sender.strip():
            form["sender"] = sender.strip()
        return await with_retries(self._retry, lambda: self._post(form))

    async def _post(self, form: dict[str, str]) -> str:
        headers: dict[str, str] = {}
        try:
            with telemetry.tracer(__name__).start_as_current_span("sms.send", kind=trace.SpanKind.CLIENT) as span:
                span.set_attribute("sms.provider", "kavenegar")
                telemetry.inject_headers(headers)
                response = await self._client.post(self._path, data=form, headers=headers)
        except httpx.TransportError as exc:
            # A connect error or a timeout; a timed-out send may have gone out, and the retry with
            # the same localid gets that message back instead of a second one.
            raise TransientSendError(self._redact(f"Kavenegar unreachable: {type(exc).__name__}: {exc}")) from None
        return self._message_id(response)

    def _message_id(self, response: httpx.Response) -> str:
        envelope = _envelope(response)
        if envelope is None:
            status = response.status_code
            text = self._redact(response.text[:300])
            if status == 429 or status >= 500:
                raise TransientSendError(f"Kavenegar answered HTTP {status}: {text}")
            raise PermanentSendError(f"Kavenegar answered HTTP {status} without its envelope: {text}")
        code, message, entries = envelope
        if code != 200:
            error = f"Kavenegar refused the send with {code}: {self._redact(message)}"
            raise (TransientSendError if code in TRANSIENT_CODES else PermanentSendError)(error)
        entry = entries[0] if entries and isinstance(entries[0], dict) else None
        message_id = entry.get("messageid") if entry is not None else None
        if entry is None or isinstance(message_id, bool) or not isinstance(message_id, int | str) or message_id == "":
            raise PermanentSendError(f"Kavenegar accepted the send without a message id: {self._redact(str(entries))}")
        entry_status = entry.get("status")
        if isinstance(entry_status, int) and entry_status in FAILED_ENTRY_STATUSES:
            text = self._redact(str(entry.get("statustext", "")))
            raise PermanentSendError(f"Kavenegar message {message_id} failed at once ({entry_status}): {text}")
        return str(message_id)

    async def statuses(self, message_ids: Sequence[str]) -> list[tuple[str, int]]:
        """Kavenegar's delivery status of each message (``sms/status.json``, at most 500 ids a
        call): (messageid, status code). KavenegarError when the call fails (the poller tries
        again on its next round)."""
        if not message_ids:
            return []
        entries = await self._report("status", {"messageid": ",".join(message_ids[:MAX_STATUS_IDS])})
        found = []
        for entry in entries:
            message_id, status = entry.get("messageid"), entry.get("status")
            if isinstance(message_id, int | str) and isinstance(status, int) and not isinstance(status, bool):
                found.append((str(message_id), status))
        return found

    async def inbox(self, line_number: str) -> list[InboundSms]:
        """The line's unread inbound SMS (``sms/receive.json?isread=0``, at most 100 a call);
        Kavenegar marks what it returns as read, so each comes once. KavenegarError on failure."""
        entries = await self._report("receive", {"linenumber": line_number, "isread": "0"}, method="GET")
        found = []
        for entry in entries:
            message_id, sender, text = entry.get("messageid"), entry.get("sender"), entry.get("message")
            if isinstance(message_id, int | str) and isinstance(sender, str) and isinstance(text, str):
                date = entry.get("date")
                found.append(
                    InboundSms(
                        str(message_id),
                        sender,
                        str(entry.get("receptor", "")),
                        text,
                        int(date) if isinstance(date, int) and not isinstance(date, bool) else None,
                    )
                )
        return found

    async def _report(self, action: str, params: dict[str, str], *, method: str = "POST") -> list[Any]:
        path = self._path.replace("/sms/send.json", f"/sms/{action}.json")
        try:
            if method == "GET":
                response = await self._client.get(path, params=params)
            else:
                response = await self._client.post(path, data=params)
        except httpx.TransportError as exc:
            raise KavenegarError(self._redact(f"Kavenegar unreachable: {type(exc).__name__}: {exc}")) from None
        envelope = _envelope(response)
        if envelope is None or envelope[0] != 200:
            code = envelope[0] if envelope else response.status_code
            raise KavenegarError(f"Kavenegar refused sms/{action} with {code}")
        return [e for e in envelope[2] if isinstance(e, dict)]

    def _redact(self, text: str) -> str:
        """text without the API key (nor its URL-quoted form) anywhere in it."""
        for secret in {self._api_key, quote(self._api_key, safe="")}:
            text = text.replace(secret, "***")
        return text

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def _envelope(response: httpx.Response) -> tuple[int, str, list[Any]] | None:
    """(return.status, return.message, entries) from an answer, or None when it is not one."""
    try:
        payload = response.json()
    except ValueError:
        return None
    result = payload.get("return") if isinstance(payload, dict) else None
    code = result.get("status") if isinstance(result, dict) else None
    if not isinstance(result, dict) or isinstance(code, bool) or not isinstance(code, int):
        return None
    entries = payload.get("entries")
    return code, str(result.get("message", "")), entries if isinstance(entries, list) else []
