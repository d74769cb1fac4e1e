"""Idempotency-Key on POST: replay, a different body, in flight, retryable failures, scoping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from crm_gateway.idempotency import IdempotencyMiddleware

pytestmark = pytest.mark.unit


@dataclass
class Handler:
    """A tiny app whose POST handlers count their calls; /slow waits until released."""

    calls: int = 0
    status: int = 201
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self, ttl_seconds: float = 60, max_entries: int = 100) -> FastAPI:
        app = self.routes()
        app.add_middleware(IdempotencyMiddleware, ttl_seconds=ttl_seconds, max_entries=max_entries)
        return app

    def routes(self) -> FastAPI:
        app = FastAPI()

        @app.post("/things")
        async def create(request: Request) -> JSONResponse:
            self.calls += 1
            body = await request.json()
            return JSONResponse({"call": self.calls, "echo": body}, status_code=self.status)

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
        first = await http.post("/things", json={"a": 1}, headers=key("k-anon"))
        second = await http.post("/things", json={"a": 1}, headers=key(""))

    assert (first.status_code, second.status_code) == (201, 201)
    assert handler.calls == 2


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


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_response_asking_to_retry_is_not_stored(
    client: httpx.AsyncClient, handler: Handler, status: int
) -> None:
    handler.status = status
    await client.post("/things", json={}, headers=key("k-1"))
    handler.status = 201
    response = await client.post("/things", json={}, headers=key("k-1"))

    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers
    assert handler.calls == 2


async def test_a_4xx_is_stored_and_replayed(client: httpx.AsyncClient, handler: Handler) -> None:
    handler.status = 404
    await client.post("/things", json={}, headers=key("k-1"))
    handler.status = 201
    response = await client.post("/things", json={}, headers=key("k-1"))

    assert response.status_code == 404
    assert response.headers["idempotent-replayed"] == "true"
    assert handler.calls == 1


async def test_an_exception_frees_the_key_for_a_retry(handler: Handler) -> None:
    transport = httpx.ASGITransport(app=handler.app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=CREDENTIAL) as http:
        first = await http.post("/boom", content=b"{}", headers=key("k-1"))
        second = await http.post("/boom", content=b"{}", headers=key("k-1"))

    assert first.status_code == second.status_code == 500
    assert handler.calls == 2


async def test_keys_are_scoped_by_credential(handler: Handler) -> None:
    transport = httpx.ASGITransport(app=handler.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        await _scoped_by_credential(client, handler)


async def _scoped_by_credential(client: httpx.AsyncClient, handler: Handler) -> None:
    alice = await client.post("/things", json={}, headers=key("k-1", Authorization="Bearer alice"))
    bob = await client.post("/things", json={}, headers=key("k-1", Authorization="Bearer bob"))
    form = await client.post("/things", json={}, headers=key("k-1", **{"X-Api-Key": "wk_1"}))
    anonymous = await client.post("/things", json={}, headers=key("k-1"))
    alice_again = await client.post("/things", json={}, headers=key("k-1", Authorization="Bearer alice"))

    assert [r.json()["call"] for r in (alice, bob, form, anonymous)] == [1, 2, 3, 4]
    assert alice_again.json()["call"] == 1
    assert alice_again.headers["idempotent-replayed"] == "true"
    assert handler.calls == 4


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
    middleware = IdempotencyMiddleware(handler.routes(), ttl_seconds=10, max_entries=100, clock=lambda: now[0])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware), base_url="http://gateway", headers=CREDENTIAL
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
    assert len(middleware) == 1


async def test_the_store_is_bounded(handler: Handler) -> None:
    middleware = IdempotencyMiddleware(handler.routes(), ttl_seconds=60, max_entries=2)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware), base_url="http://gateway", headers=CREDENTIAL
    ) as http:
        for value in ("a", "b", "c"):
            await http.post("/things", json={}, headers=key(value))
        evicted = await http.post("/things", json={}, headers=key("a"))
        kept = await http.post("/things", json={}, headers=key("c"))

    assert len(middleware) == 2
    assert "idempotent-replayed" not in evicted.headers
    assert kept.headers["idempotent-replayed"] == "true"
