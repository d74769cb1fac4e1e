"""Idempotency-Key on POST: replay, a different body, in flight, what is kept, scoping, budgets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.types import Scope

from crm_gateway.platform.idempotency import (
    IdempotencyMiddleware,
    IdempotencyStore,
    InFlight,
    MemoryStore,
    Mismatch,
    Replay,
    StoredBytesQuota,
    StoredResponse,
    StoreUnavailable,
    _decode_claim,
    encode_value,
)
from crm_gateway.platform.ratelimit import RateLimiter

pytestmark = pytest.mark.unit


async def identify(scope: Scope) -> str | None:
    """Stands in for token verification: `Bearer <name>` is the principal <name>; `Bearer bad` is
    an invalid token."""
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    return token if scheme == "Bearer" and token and token != "bad" else None


def middleware(
    app: FastAPI,
    store: MemoryStore,
    quota: StoredBytesQuota | None = None,
    max_response_bytes: int = 64 * 1024,
    rate_limit: RateLimiter | None = None,
) -> IdempotencyMiddleware:
    async def open_store() -> IdempotencyStore:
        return store

    return IdempotencyMiddleware(
        app,
        open_store=open_store,
        identify=identify,
        quota=quota or StoredBytesQuota(10 * 1024 * 1024, 60),
        max_response_bytes=max_response_bytes,
        rate_limit=(lambda subject: rate_limit.check(subject)) if rate_limit is not None else None,
    )


@dataclass
class Handler:
    """A tiny app whose POST handlers count their calls; /slow waits until released."""

    calls: int = 0
    status: int = 201
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    store: MemoryStore = field(default_factory=lambda: MemoryStore(ttl_seconds=60, max_bytes=1024 * 1024))

    def app(self) -> IdempotencyMiddleware:
        return middleware(self.routes(), self.store)

    def routes(self) -> FastAPI:
        app = FastAPI()

        @app.post("/things")
        async def create(request: Request) -> JSONResponse:
            self.calls += 1
            body = await request.json()
            return JSONResponse({"call": self.calls, "echo": body}, status_code=self.status)

        @app.post("/big")
        async def big(request: Request) -> Response:
            self.calls += 1
            size = int(request.query_params["size"])
            return Response(b"x" * size, status_code=201, media_type="text/plain")

        @app.get("/things")
        async def list_things() -> dict[str, int]:
            self.calls += 1
            return {"call": self.calls}

        @app.post("/slow")
        async def slow() -> dict[str, int]:
            self.calls += 1
            self.entered.set()
            await self.release.wait()
            return {"call": self.calls}

        @app.post("/boom")
        async def boom() -> None:
            self.calls += 1
            raise RuntimeError("backend fell over")

        return app


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
async def client(handler: Handler) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=handler.app()), base_url="http://gateway", headers=CREDENTIAL
    ) as http:
        yield http


CREDENTIAL = {"Authorization": "Bearer token-of-alice"}


async def test_a_request_without_a_credential_is_passed_through(handler: Handler) -> None:
    transport = httpx.ASGITransport(app=handler.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        responses = [
            await http.post("/things", json={"a": 1}, headers=key("k-anon", **credential))
            for credential in ({}, {}, {"Authorization": "Bearer bad"}, {"Authorization": "Bearer bad"})
        ] + [await http.post("/things", json={"a": 1}, headers=key("k-form", **{"X-Api-Key": "wk_1"})) for _ in "ab"]

    # Only an authenticated caller gets replay: no credential, an invalid token or a web-form key
    # runs every time, and nothing is kept for it.
    assert [r.status_code for r in responses] == [201] * 6
    assert all("idempotent-replayed" not in r.headers for r in responses)
    assert handler.calls == 6
    assert len(handler.store) == 0


def key(value: str, **extra: str) -> dict[str, str]:
    return {"Idempotency-Key": value, **extra}


async def test_a_repeat_with_the_same_body_replays_the_response(client: httpx.AsyncClient, handler: Handler) -> None:
    first = await client.post("/things", json={"name": "sofa"}, headers=key("k-1"))
    second = await client.post("/things", json={"name": "sofa"}, headers=key("k-1"))

    assert handler.calls == 1
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() == {"call": 1, "echo": {"name": "sofa"}}
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers


async def test_the_same_key_with_another_body_is_422(client: httpx.AsyncClient, handler: Handler) -> None:
    await client.post("/things", json={"name": "sofa"}, headers=key("k-1"))
    response = await client.post("/things", json={"name": "table"}, headers=key("k-1"))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "different request body" in response.json()["detail"]
    assert handler.calls == 1


async def test_a_repeat_while_the_first_is_in_flight_is_409(client: httpx.AsyncClient, handler: Handler) -> None:
    first = asyncio.create_task(client.post("/slow", content=b"{}", headers=key("k-1")))
    await asyncio.wait_for(handler.entered.wait(), timeout=5)

    second = await client.post("/slow", content=b"{}", headers=key("k-1"))
    handler.release.set()
    done = await first

    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.headers["retry-after"] == "1"
    assert done.status_code == 200
    assert handler.calls == 1
    # Once the first completed, a repeat is a replay.
    third = await client.post("/slow", content=b"{}", headers=key("k-1"))
    assert third.headers["idempotent-replayed"] == "true"
    assert handler.calls == 1


@pytest.mark.parametrize("status", [500, 503, 429, 404, 409, 422, 400])
async def test_only_a_success_is_stored(client: httpx.AsyncClient, handler: Handler, status: int) -> None:
    handler.status = status
    await client.post("/things", json={}, headers=key("k-1"))
    handler.status = 201
    response = await client.post("/things", json={}, headers=key("k-1"))

    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers
    assert handler.calls == 2


async def test_an_exception_frees_the_key_for_a_retry(handler: Handler) -> None:
    transport = httpx.ASGITransport(app=handler.app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=CREDENTIAL) as http:
        first = await http.post("/boom", content=b"{}", headers=key("k-1"))
        second = await http.post("/boom", content=b"{}", headers=key("k-1"))

    assert first.status_code == second.status_code == 500
    assert handler.calls == 2


async def test_keys_are_scoped_by_principal(handler: Handler) -> None:
    transport = httpx.ASGITransport(app=handler.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        alice = await client.post("/things", json={}, headers=key("k-1", Authorization="Bearer alice"))
        bob = await client.post("/things", json={}, headers=key("k-1", Authorization="Bearer bob"))
        alice_again = await client.post("/things", json={}, headers=key("k-1", Authorization="Bearer alice"))

    assert [r.json()["call"] for r in (alice, bob)] == [1, 2]
    assert alice_again.json()["call"] == 1
    assert alice_again.headers["idempotent-replayed"] == "true"
    assert handler.calls == 2


async def test_keys_are_scoped_by_path(client: httpx.AsyncClient, handler: Handler) -> None:
    handler.release.set()
    await client.post("/things", json={}, headers=key("k-1"))
    response = await client.post("/slow", content=b"{}", headers=key("k-1"))

    assert response.status_code == 200
    assert "idempotent-replayed" not in response.headers


async def test_get_and_a_post_without_a_key_are_untouched(client: httpx.AsyncClient, handler: Handler) -> None:
    first = await client.get("/things", headers=key("k-1"))
    second = await client.get("/things", headers=key("k-1"))
    await client.post("/things", json={})
    await client.post("/things", json={})

    assert [first.json()["call"], second.json()["call"]] == [1, 2]
    assert "idempotent-replayed" not in second.headers
    assert handler.calls == 4


@pytest.mark.parametrize("value", ["", "   ", "k" * 201])
async def test_an_empty_or_too_long_key_is_400(client: httpx.AsyncClient, handler: Handler, value: str) -> None:
    response = await client.post("/things", json={}, headers=key(value))

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert handler.calls == 0


async def test_a_key_of_200_characters_is_accepted(client: httpx.AsyncClient, handler: Handler) -> None:
    response = await client.post("/things", json={}, headers=key("k" * 200))

    assert response.status_code == 201


async def test_entries_expire_after_the_ttl(handler: Handler) -> None:
    now = [0.0]
    store = MemoryStore(ttl_seconds=10, max_bytes=1024 * 1024, clock=lambda: now[0])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware(handler.routes(), store)),
        base_url="http://gateway",
        headers=CREDENTIAL,
    ) as http:
        await http.post("/things", json={}, headers=key("k-1"))
        now[0] = 9.0
        replayed = await http.post("/things", json={}, headers=key("k-1"))
        now[0] = 20.0
        rerun = await http.post("/things", json={}, headers=key("k-1"))

    assert replayed.json()["call"] == 1
    assert replayed.headers["idempotent-replayed"] == "true"
    assert rerun.json()["call"] == 2
    assert "idempotent-replayed" not in rerun.headers
    assert len(store) == 1


async def test_the_store_is_bounded_in_bytes_oldest_out(handler: Handler) -> None:
    store = MemoryStore(ttl_seconds=60, max_bytes=3 * 1024)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware(handler.routes(), store)),
        base_url="http://gateway",
        headers=CREDENTIAL,
    ) as http:
        for value in ("a", "b", "c", "d"):
            await http.post("/big?size=700", content=b"{}", headers=key(value))
            assert store.bytes_used <= store.max_bytes
        evicted = await http.post("/big?size=700", content=b"{}", headers=key("a"))
        kept = await http.post("/big?size=700", content=b"{}", headers=key("d"))

    assert "idempotent-replayed" not in evicted.headers
    assert kept.headers["idempotent-replayed"] == "true"
    assert len(kept.content) == 700


async def test_a_response_over_the_cap_is_not_kept(handler: Handler) -> None:
    store = MemoryStore(ttl_seconds=60, max_bytes=1024 * 1024)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware(handler.routes(), store, max_response_bytes=2048)),
        base_url="http://gateway",
        headers=CREDENTIAL,
    ) as http:
        first = await http.post("/big?size=5000", content=b"{}", headers=key("k-1"))
        second = await http.post("/big?size=5000", content=b"{}", headers=key("k-1"))

    # The client still gets the whole answer; it is only not kept for a replay.
    assert len(first.content) == len(second.content) == 5000
    assert "idempotent-replayed" not in second.headers
    assert handler.calls == 2
    assert len(store) == 0


async def test_one_principal_cannot_fill_the_store(handler: Handler) -> None:
    now = [0.0]
    quota = StoredBytesQuota(4 * 1024, window_seconds=240, slots=4, clock=lambda: now[0])
    store = MemoryStore(ttl_seconds=240, max_bytes=1024 * 1024)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware(handler.routes(), store, quota)), base_url="http://gateway"
    ) as http:
        mallory = [
            await http.post("/big?size=1000", content=b"{}", headers=key(f"m-{i}", Authorization="Bearer mallory"))
            for i in range(6)
        ]
        alice = await http.post("/big?size=1000", content=b"{}", headers=key("a-1", Authorization="Bearer alice"))
        without_key = await http.post("/big?size=10", content=b"{}", headers={"Authorization": "Bearer mallory"})
        now[0] = 241.0
        later = await http.post("/big?size=1000", content=b"{}", headers=key("m-9", Authorization="Bearer mallory"))

    statuses = [r.status_code for r in mallory]
    # ~1.3 KiB per entry: the fourth passes the 4 KiB budget, so the fifth is refused.
    assert statuses[:4] == [201] * 4 and statuses[4:] == [429, 429]
    assert mallory[4].headers["content-type"] == "application/problem+json"
    assert 1 <= int(mallory[4].headers["retry-after"]) <= 240
    assert (alice.status_code, without_key.status_code, later.status_code) == (201, 201, 201)


async def test_large_bad_requests_keep_nothing(handler: Handler) -> None:
    """The review's attack: big bodies that fail validation, each with a new key, by callers with
    and without a token. Nothing of them stays in the store."""
    handler.status = 422
    store = handler.store
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=handler.app()), base_url="http://gateway") as http:
        body = {f"unknown_{i}": "x" * 100 for i in range(2000)}
        for i in range(20):
            credential = {"Authorization": "Bearer mallory"} if i % 2 else {}
            response = await http.post("/things", json=body, headers=key(f"k-{i}", **credential))
            assert response.status_code == 422

    assert (len(store), store.bytes_used) == (0, 0)


async def test_replays_count_against_the_principals_rate_limit(handler: Handler) -> None:
    """A replay never reaches the route (whose authorization takes the rate limit's token), so
    the middleware takes it: replaying one key in a loop is 429 like any other flood."""
    limiter = RateLimiter(rate_per_second=0.001, burst=3)
    app = middleware(handler.routes(), handler.store, rate_limit=limiter)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=CREDENTIAL
    ) as http:
        first = await http.post("/things", json={}, headers=key("k-1"))
        repeats = [await http.post("/things", json={}, headers=key("k-1")) for _ in range(5)]

    assert first.status_code == 201
    assert [r.status_code for r in repeats] == [201, 201, 201, 429, 429]
    assert repeats[3].headers["content-type"] == "application/problem+json"
    assert handler.calls == 1


def test_a_stored_value_reads_back_and_an_unreadable_one_is_refused() -> None:
    response = StoredResponse(201, [(b"content-type", b"application/json")], b'{"id": "\xd7\x90"}\n{}')

    assert _decode_claim(encode_value("fp", response), "fp") == Replay(response)
    assert _decode_claim(encode_value("fp", None), "fp") == InFlight()
    assert _decode_claim(encode_value("fp", response), "other") == Mismatch()
    for garbage in (b"", b"not json", b'{"s": 201}\n', b'{"f": "fp", "s": 201}\n'):
        with pytest.raises(StoreUnavailable):
            _decode_claim(garbage, "fp")
