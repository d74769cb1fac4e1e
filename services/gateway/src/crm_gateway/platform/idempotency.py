"""The Idempotency-Key request header on POST (IETF draft-ietf-httpapi-idempotency-key-header).

Only an authenticated caller gets replay: the middleware verifies the bearer token itself (the
principal is kept on the request's state, so the route's `authenticate` does not verify it a
second time); a request without a valid token, or with only a web-form key, passes through and
authentication answers it. A key is scoped to the principal's subject, the method and the path.

The first request with a key claims it; only a successful (2xx) response is stored, for
`ttl_seconds`. A repeat with the same body gets that response again with
`Idempotent-Replayed: true` and the handler does not run; the same key with another body is 422,
a repeat while the first is still running is 409, and an empty key or one longer than 200
characters is 400. Any other answer (4xx, 5xx, an exception, a client that went away) frees the
key, so the client may correct its request and retry with the same key. A POST without the header
passes through untouched.

Where the responses live is a `IdempotencyStore`: `JetStreamStore` in a deployment (a JetStream
key-value bucket every gateway replica shares, so a retry that lands on another replica replays;
the gateway process holds none of it), `MemoryStore` for one process. Both are bounded in bytes
(oldest first out), every stored response is capped at `max_response_bytes` (a larger one is
not kept: its key is freed), and each principal may have at most `max_bytes_per_principal`
stored per replica within the TTL (`StoredBytesQuota`); past it the request is 429.

It sits inside the body size limit, so the body it buffers (to fingerprint it) is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import orjson
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_gateway.platform.problems import problem
from crm_kit import nats_access

log = logging.getLogger(__name__)

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
        b"x-request-id",
    }
)

# How long a request waits for the store to open (NATS down: 503 at once, not a hung request).
OPEN_TIMEOUT_SECONDS = 5.0

# What an entry costs beyond its body and headers (key, fingerprint, bookkeeping): the byte
# budget counts it, so a flood of tiny entries is bounded too.
ENTRY_OVERHEAD_BYTES = 256

Identify = Callable[[Scope], Awaitable[str | None]]
"""The principal's subject when the request carries a valid credential, else None."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def size(self) -> int:
        return ENTRY_OVERHEAD_BYTES + len(self.body) + sum(len(k) + len(v) for k, v in self.headers)


@dataclass(frozen=True)
class Claimed:
    """This request holds the key; `token` proves it when completing or releasing."""

    token: int


@dataclass(frozen=True)
class InFlight:
    pass


@dataclass(frozen=True)
class Mismatch:
    pass


@dataclass(frozen=True)
class Replay:
    response: StoredResponse


Claim = Claimed | InFlight | Mismatch | Replay


class StoreUnavailable(Exception):
    """The store did not answer: the request is not run (the client retries later)."""


class IdempotencyStore(Protocol):
    async def claim(self, key: str, fingerprint: str) -> Claim:
        """Take the key for this request, or say why not (a replay, in flight, another body)."""
        ...

    async def complete(self, key: str, claim: Claimed, fingerprint: str, response: StoredResponse) -> None:
        """Keep the response of the request that holds the key."""
        ...

    async def release(self, key: str, claim: Claimed) -> None:
        """Free the key of a request whose answer is not kept."""
        ...


def store_key(subject: str, method: str, path: str, key: str) -> str:
    """One opaque key per (principal, method, path, Idempotency-Key): no caller data in the store's keys."""
    return hashlib.sha256("\x1f".join((subject, method, path, key)).encode()).hexdigest()


class MemoryStore:
    """The store of one process: bounded by `max_bytes` (oldest entries leave first) and by TTL."""

    def __init__(self, ttl_seconds: float, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_seconds <= 0 or max_bytes < ENTRY_OVERHEAD_BYTES:
            raise ValueError(f"ttl_seconds must be > 0 and max_bytes >= {ENTRY_OVERHEAD_BYTES}")
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self.clock = clock
        # key → (fingerprint, expires at, response or None while in flight, claim token); oldest first.
        self._entries: OrderedDict[str, tuple[str, float, StoredResponse | None, int]] = OrderedDict()
        self._bytes = 0
        self._tokens = 0

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def claim(self, key: str, fingerprint: str) -> Claim:
        self._purge_expired()
        entry = self._entries.get(key)
        if entry is not None:
            stored_fingerprint, _, response, _ = entry
            if stored_fingerprint != fingerprint:
                return Mismatch()
            return InFlight() if response is None else Replay(response)
        self._tokens += 1
        self._put(key, (fingerprint, self.clock() + self.ttl_seconds, None, self._tokens))
        return Claimed(self._tokens)

    async def complete(self, key: str, claim: Claimed, fingerprint: str, response: StoredResponse) -> None:
        if self._holds(key, claim):
            self._put(key, (fingerprint, self.clock() + self.ttl_seconds, response, claim.token))

    async def release(self, key: str, claim: Claimed) -> None:
        if self._holds(key, claim):
            self._remove(key)

    def _holds(self, key: str, claim: Claimed) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry[3] == claim.token

    @staticmethod
    def _size(entry: tuple[str, float, StoredResponse | None, int]) -> int:
        return entry[2].size() if entry[2] is not None else ENTRY_OVERHEAD_BYTES

    def _put(self, key: str, entry: tuple[str, float, StoredResponse | None, int]) -> None:
        self._remove(key)
        self._entries[key] = entry
        self._bytes += self._size(entry)
        while self._bytes > self.max_bytes and self._entries:
            self._remove(next(iter(self._entries)))

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= self._size(entry)

    def _purge_expired(self) -> None:
        # Every entry has the same TTL and moves to the end when its expiry is set, so the
        # entries are in expiry order and the expired ones are at the front.
        now = self.clock()
        while self._entries:
            oldest = next(iter(self._entries))
            if self._entries[oldest][1] > now:
                break
            self._remove(oldest)


class JetStreamStore:
    """A JetStream key-value bucket every gateway replica shares.

    The claim is a create-if-absent of an in-flight marker that carries its own short TTL (a
    replica killed mid-request frees the key by itself); completing replaces the marker only if
    it is still this request's (compare-and-set on its revision). The bucket's stream keeps one
    value per key, drops values after the TTL, and when `max_bytes` is reached drops the oldest
    (the same degradation as the memory store: old keys lose replay, new requests still run).
    """

    def __init__(self, kv: KeyValue, in_flight_ttl_seconds: float) -> None:
        self.kv = kv
        self.in_flight_ttl_seconds = in_flight_ttl_seconds

    @classmethod
    async def open(
        cls, js: JetStreamContext, *, in_flight_ttl_seconds: float, bucket: str = nats_access.IDEMPOTENCY_BUCKET
    ) -> JetStreamStore:
        """Bind to the bucket. The gateway never creates it (its NATS identity may not: a stream
        it created could name any subjects): the provisioner does, from the same settings
        (`crm_kit.bus.idempotency_stream_config`). Missing, the store is unavailable (keyed POSTs
        get 503) and the next request tries again."""
        try:
            kv = await js.key_value(bucket)
        except BucketNotFoundError as exc:
            log.error(
                "the Idempotency-Key bucket does not exist: it must be provisioned "
                "(python -m crm_kit.nats_access provision, docs/operations.md); keyed POSTs get 503 until then",
                extra={"bucket": bucket},
            )
            raise StoreUnavailable(f"bucket {bucket} not provisioned") from exc
        return cls(kv, in_flight_ttl_seconds)

    async def claim(self, key: str, fingerprint: str) -> Claim:
        marker = encode_value(fingerprint, None)
        try:
            # Two tries: the entry found may expire or be released before it is read.
            for _ in range(2):
                try:
                    revision = await self.kv.create(key, marker, msg_ttl=self.in_flight_ttl_seconds)
                    return Claimed(revision)
                except KeyWrongLastSequenceError:
                    pass
                try:
                    entry = await self.kv.get(key)
                except (KeyNotFoundError, KeyDeletedError):
                    continue
                return _decode_claim(entry.value or b"", fingerprint)
        except (NatsError, TimeoutError) as exc:
            raise StoreUnavailable(repr(exc)) from exc
        raise StoreUnavailable("the key changed twice while being claimed")

    async def complete(self, key: str, claim: Claimed, fingerprint: str, response: StoredResponse) -> None:
        try:
            await self.kv.update(key, encode_value(fingerprint, response), last=claim.token)
            return
        except KeyWrongLastSequenceError:
            # The marker expired and another request took the key: its answer is the one kept.
            log.warning("idempotency key lost before its response was stored")
            return
        except (NatsError, TimeoutError):
            log.warning("idempotency response not stored: the store refused or did not answer", exc_info=True)
        # Not stored: free the key at once rather than leave retries on 409 until the marker expires.
        await self.release(key, claim)

    async def release(self, key: str, claim: Claimed) -> None:
        try:
            await self.kv.delete(key, last=claim.token)
        except (NatsError, TimeoutError):
            # The in-flight marker's own TTL frees the key.
            log.warning("idempotency key not released: the store did not answer", exc_info=True)


def encode_value(fingerprint: str, response: StoredResponse | None) -> bytes:
    """A stored value: one JSON line (fingerprint; status and headers once answered), then the body
    as it was sent (no base64: a value is at most the answer plus its headers)."""
    head: dict[str, object] = {"f": fingerprint}
    if response is not None:
        head["s"] = response.status
        head["h"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.headers]
    return orjson.dumps(head) + b"\n" + (response.body if response is not None else b"")


def _decode_claim(value: bytes, fingerprint: str) -> Claim:
    head, _, body = value.partition(b"\n")
    try:
        data = orjson.loads(head)
        if data["f"] != fingerprint:
            return Mismatch()
        if "s" not in data:
            return InFlight()
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in data["h"]]
        return Replay(StoredResponse(int(data["s"]), headers, body))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        # Only the gateway writes the bucket; an unreadable value is a bug or tampering, never a
        # reason to run the request (again): refuse it like an unavailable store.
        raise StoreUnavailable(f"unreadable stored value: {exc!r}") from exc


class StoredBytesQuota:
    """Bytes of responses each principal had stored by this replica within the last `window_seconds`
    (counted in `slots` time slots), so one caller cannot fill the shared store. Bounded: past
    `max_principals` the least recently seen principal is forgotten."""

    def __init__(
        self,
        max_bytes_per_principal: int,
        window_seconds: float,
        *,
        slots: int = 24,
        max_principals: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes_per_principal
        self.slot_seconds = window_seconds / slots
        self.slots = slots
        self.max_principals = max_principals
        self.clock = clock
        # principal → {slot number: bytes}; least recently seen first.
        self._used: OrderedDict[str, dict[int, int]] = OrderedDict()

    def _current(self, principal: str) -> dict[int, int]:
        now_slot = int(self.clock() // self.slot_seconds)
        used = self._used.pop(principal, {})
        used = {slot: n for slot, n in used.items() if slot > now_slot - self.slots}
        self._used[principal] = used
        while len(self._used) > self.max_principals:
            self._used.popitem(last=False)
        return used

    def retry_after(self, principal: str) -> float:
        """0 while the principal may store more, else the seconds until its oldest slot leaves."""
        used = self._current(principal)
        if sum(used.values()) < self.max_bytes:
            return 0.0
        oldest = min(used)
        return max(1.0, (oldest + self.slots) * self.slot_seconds - self.clock())

    def add(self, principal: str, size: int) -> None:
        used = self._current(principal)
        slot = int(self.clock() // self.slot_seconds)
        used[slot] = used.get(slot, 0) + size


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (bounded by the body size limit outside), or None on a disconnect."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class IdempotencyMiddleware:
    """Replays the stored response of a POST repeated with the same Idempotency-Key and body."""

    def __init__(
        self,
        app: ASGIApp,
        open_store: Callable[[], Awaitable[IdempotencyStore]],
        identify: Identify,
        quota: StoredBytesQuota,
        max_response_bytes: int = 256 * 1024,
        rate_limit: Callable[[str], float] | None = None,
    ) -> None:
        self.app = app
        # The principal's rate limit, for the answers this middleware gives itself (replays, 409,
        # 422): a request that runs is counted by the route's own authorization instead.
        self.rate_limit = rate_limit
        # The store is opened on first use: the shared store needs NATS, which may be down at
        # start; then only requests with a key are refused (503) until it answers.
        self._open_store = open_store
        self._store: IdempotencyStore | None = None
        self._store_lock = asyncio.Lock()
        self.identify = identify
        self.quota = quota
        self.max_response_bytes = max_response_bytes

    async def store(self) -> IdempotencyStore:
        if self._store is None:
            async with self._store_lock:
                if self._store is None:
                    try:
                        self._store = await asyncio.wait_for(self._open_store(), OPEN_TIMEOUT_SECONDS)
                    except (NatsError, TimeoutError, OSError) as exc:
                        raise StoreUnavailable(repr(exc)) from exc
        return self._store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        keys = Headers(scope=scope).getlist(HEADER)
        subject = await self.identify(scope) if keys else None
        if subject is None:
            # No key, or no valid credential: authentication answers 401 (the public form dedupes on its own).
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(keys, subject)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending its body
        entry_key = store_key(subject, scope["method"], scope["path"], keys[0].strip())
        fingerprint = hashlib.sha256(body).hexdigest()
        try:
            store = await self.store()
            claim = await store.claim(entry_key, fingerprint)
        except StoreUnavailable as exc:
            log.warning("idempotency store unavailable", extra={"error": str(exc)})
            response = problem(
                503, "Idempotent requests cannot be accepted right now; retry later.", headers={"Retry-After": "1"}
            )
            await response(scope, receive, send)
            return
        if isinstance(claim, Claimed):
            await self._run(scope, receive, send, body, store, entry_key, claim, subject, fingerprint)
        else:
            await self._answer_repeat(claim, subject, scope, receive, send)

    def _refusal(self, keys: list[str], subject: str) -> Response | None:
        """400 for a missing, repeated or too long key; 429 once the caller's stored bytes are spent."""
        key = keys[0].strip()
        if len(keys) > 1 or not key or len(key) > MAX_KEY_LENGTH:
            return problem(400, f"Idempotency-Key must be one non-empty value of at most {MAX_KEY_LENGTH} characters.")
        wait = self.quota.retry_after(subject)
        if wait > 0:
            detail = "This caller has stored too many idempotent responses; retry later or without Idempotency-Key."
            return problem(429, detail, headers={"Retry-After": str(math.ceil(wait))})
        return None

    async def _answer_repeat(
        self, claim: InFlight | Mismatch | Replay, subject: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A key someone already holds: the stored answer, 422 for another body, 409 while in flight."""
        if self.rate_limit is not None:
            wait = self.rate_limit(subject)
            if wait > 0:
                detail = "Too many requests for this caller; slow down."
                await problem(429, detail, headers={"Retry-After": str(max(1, math.ceil(wait)))})(scope, receive, send)
                return
        if isinstance(claim, Replay):
            await self._replay(claim.response, send)
        elif isinstance(claim, Mismatch):
            await problem(422, "Idempotency-Key was used with a different request body.")(scope, receive, send)
        else:
            detail = "A request with this Idempotency-Key is still being processed."
            await problem(409, detail, headers={"Retry-After": "1"})(scope, receive, send)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        store: IdempotencyStore,
        entry_key: str,
        claim: Claimed,
        subject: str,
        fingerprint: str,
    ) -> None:
        """Run the request with its body replayed, keeping its response if it is a 2xx."""
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
        size = 0
        complete = False

        async def send_capturing(message: Message) -> None:
            nonlocal status, response_headers, complete, size
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = [
                    (name, value) for name, value in message.get("headers", []) if name.lower() not in _DROPPED_HEADERS
                ]
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                # Past the cap nothing more is buffered: the response will not be kept.
                if size <= self.max_response_bytes:
                    response_body.append(chunk)
                complete = not message.get("more_body", False)
            await send(message)

        stored: StoredResponse | None = None
        try:
            await self.app(scope, replay, send_capturing)
            if complete and status is not None and 200 <= status < 300 and size <= self.max_response_bytes:
                stored = StoredResponse(status, response_headers, b"".join(response_body))
        finally:
            # Shielded: a cancelled request still frees or fills its key.
            if stored is not None:
                await asyncio.shield(store.complete(entry_key, claim, fingerprint, stored))
                self.quota.add(subject, stored.size())
            else:
                await asyncio.shield(store.release(entry_key, claim))

    @staticmethod
    async def _replay(response: StoredResponse, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": response.status, "headers": [*response.headers, REPLAYED_HEADER]}
        )
        await send({"type": "http.response.body", "body": response.body, "more_body": False})
