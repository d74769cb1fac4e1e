"""The Idempotency-Key request header on POST (IETF draft-ietf-httpapi-idempotency-key-header).

A key is scoped to its caller (the sha256 of the Authorization header, else of X-Api-Key), the
method and the path; a request with neither passes through (authentication answers it). The
first request with a key runs; its response, unless it asks the client to retry (5xx, 429), is
kept for `ttl_seconds`. A repeat with the same body gets that response again with
`Idempotent-Replayed: true` and the handler does not run; the same key with another body is 422,
a repeat while the first is still running is 409, and an empty key or one longer than 200
characters is 400. A POST without the header passes through untouched.

The store is in memory and per gateway replica: it is lost on restart and a repeat that lands on
another replica runs again. That is the chosen trade-off, because the write that matters is
durable elsewhere: lead capture also forwards the key to the leads service as `request_id`, which
deduplicates it in its database, so a capture retried on any replica yields one lead. The store is
bounded: entries leave after `ttl_seconds`, and past `max_entries` the oldest go first.

It sits inside the body size limit, so the body it buffers (to fingerprint it) is already bounded.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_gateway.problems import problem

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 200
METHODS = frozenset({"POST"})
REPLAYED_HEADER = (b"idempotent-replayed", b"true")

# Not replayed: they describe one connection or one moment, not the response.
_DROPPED_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"date",
    }
)


def _is_stored(status: int) -> bool:
    """A response that tells the client to try again later (5xx, 429) is not kept."""
    return status < 500 and status != 429


@dataclass
class _Entry:
    fingerprint: str
    expires_at: float
    # Filled in when the first request completes; None while it is in flight.
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


class IdempotencyMiddleware:
    """Replays the stored response of a POST repeated with the same Idempotency-Key and body."""

    def __init__(
        self,
        app: ASGIApp,
        ttl_seconds: float = 86_400,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_entries < 1:
            raise ValueError("ttl_seconds must be > 0 and max_entries >= 1")
        self.app = app
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        # Oldest first: an entry moves to the end whenever its expiry is (re)set.
        self._entries: OrderedDict[tuple[str, str, str, str], _Entry] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        keys = headers.getlist(HEADER)
        caller = _caller(headers)
        if not keys or caller is None:
            # No credential: authentication answers 401 (or the public form dedupes on its own).
            await self.app(scope, receive, send)
            return
        key = keys[0].strip()
        if len(keys) > 1 or not key or len(key) > MAX_KEY_LENGTH:
            detail = f"Idempotency-Key must be one non-empty value of at most {MAX_KEY_LENGTH} characters."
            await problem(400, detail)(scope, receive, send)
            return

        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)

        scope_key = (caller, scope["method"], scope["path"], key)
        fingerprint = hashlib.sha256(body).hexdigest()
        self._purge_expired()
        entry = self._entries.get(scope_key)
        if entry is not None:
            if entry.fingerprint != fingerprint:
                response = problem(422, "Idempotency-Key was used with a different request body.")
            elif entry.status is None:
                response = problem(
                    409,
                    "A request with this Idempotency-Key is still being processed.",
                    headers={"Retry-After": "1"},
                )
            else:
                await self._replay(entry, send)
                return
            await response(scope, receive, send)
            return

        entry = _Entry(fingerprint=fingerprint, expires_at=self.clock() + self.ttl_seconds)
        self._put(scope_key, entry)
        await self._run(scope, receive, send, body, scope_key, entry)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        scope_key: tuple[str, str, str, str],
        entry: _Entry,
    ) -> None:
        """Run the request with its body replayed, keeping the response it sends if it is stored."""
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status: int | None = None
        response_headers: list[tuple[bytes, bytes]] = []
        response_body: list[bytes] = []
        complete = False

        async def send_capturing(message: Message) -> None:
            nonlocal status, response_headers, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = [
                    (name, value) for name, value in message.get("headers", []) if name.lower() not in _DROPPED_HEADERS
                ]
            elif message["type"] == "http.response.body":
                response_body.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, replay, send_capturing)
        finally:
            ours = self._entries.get(scope_key) is entry
            if ours and complete and status is not None and _is_stored(status):
                entry.status = status
                entry.headers = response_headers
                entry.body = b"".join(response_body)
                entry.expires_at = self.clock() + self.ttl_seconds
                self._entries.move_to_end(scope_key)
            elif ours:
                # Failed, cancelled or not to be kept: the client may retry with the same key.
                del self._entries[scope_key]

    @staticmethod
    async def _replay(entry: _Entry, send: Send) -> None:
        assert entry.status is not None
        await send(
            {"type": "http.response.start", "status": entry.status, "headers": [*entry.headers, REPLAYED_HEADER]}
        )
        await send({"type": "http.response.body", "body": entry.body, "more_body": False})

    def _put(self, scope_key: tuple[str, str, str, str], entry: _Entry) -> None:
        self._entries[scope_key] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def _purge_expired(self) -> None:
        # Every entry has the same TTL and moves to the end when its expiry is set, so the
        # entries are in expiry order and the expired ones are at the front.
        now = self.clock()
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.expires_at > now:
                break
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _caller(headers: Headers) -> str | None:
    """Whose key this is: a digest of the credential sent (None without one)."""
    for name in ("authorization", "x-api-key"):
        credential = headers.get(name)
        if credential:
            return f"{name}:{hashlib.sha256(credential.encode('latin-1')).hexdigest()}"
    return None
