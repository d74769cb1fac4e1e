"""Security response headers, CORS from the allow-list, and the gateway's middleware wiring."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from crm_gateway.app import create_app
from crm_gateway.platform.security_headers import API_CSP, DOCS_CSP, HSTS, SecurityHeadersMiddleware
from crm_gateway.settings import GatewaySettings

pytestmark = pytest.mark.unit

ORIGIN = "https://shop.example.co.il"
UNLISTED = "https://evil.example"

Gateway = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


def tiny_app(hsts: bool = False) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SecurityHeadersMiddleware, hsts=hsts)

    @app.get("/api/v1/things")
    async def things() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/cached")
    async def cached() -> JSONResponse:
        return JSONResponse({}, headers={"Cache-Control": "private, max-age=60"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=tiny_app()), base_url="http://gateway") as http:
        yield http


async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/things", "/healthz", "/no-such-route"):
        response = await client.get(path)

        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"] == API_CSP
        assert "strict-transport-security" not in response.headers


async def test_api_responses_are_not_cached(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/things")).headers["cache-control"] == "no-store"
    assert "cache-control" not in (await client.get("/healthz")).headers
    # A route that chose its own caching keeps it.
    assert (await client.get("/api/v1/cached")).headers["cache-control"] == "private, max-age=60"


async def test_the_docs_pages_get_a_csp_allowing_their_assets(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        response = await client.get(path)

        assert response.status_code == 200
        assert response.headers["content-security-policy"] == DOCS_CSP
        assert response.headers["x-frame-options"] == "DENY"
    assert "https://cdn.jsdelivr.net" in DOCS_CSP
    assert "frame-ancestors 'none'" in DOCS_CSP
    # The OpenAPI document itself is JSON and gets the strict policy.
    assert (await client.get("/openapi.json")).headers["content-security-policy"] == API_CSP


async def test_hsts_only_when_enabled() -> None:
    transport = httpx.ASGITransport(app=tiny_app(hsts=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.get("/healthz")

    assert response.headers["strict-transport-security"] == HSTS == "max-age=63072000; includeSubDomains"


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }


async def test_cors_preflight_is_allowed_for_a_listed_origin(gateway: Gateway, settings_for) -> None:
    app = create_app(settings_for("127.0.0.1:1", cors_allow_origins=[ORIGIN]))
    async with gateway(app) as http:
        response = await http.options("/api/v1/leads", headers=preflight(ORIGIN))
        simple = await http.get("/healthz", headers={"Origin": ORIGIN})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert set(response.headers["access-control-allow-methods"].split(", ")) == {
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
    }
    allowed = {h.lower() for h in response.headers["access-control-allow-headers"].split(", ")}
    assert {"authorization", "content-type", "idempotency-key", "x-api-key", "x-request-id"} <= allowed
    assert "access-control-allow-credentials" not in response.headers
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    exposed = set(simple.headers["access-control-expose-headers"].split(", "))
    assert exposed == {"Retry-After", "Idempotent-Replayed", "X-Request-ID", "ETag"}


async def test_cors_refuses_an_unlisted_origin(gateway: Gateway, settings_for) -> None:
    app = create_app(settings_for("127.0.0.1:1", cors_allow_origins=[ORIGIN]))
    async with gateway(app) as http:
        response = await http.options("/api/v1/leads", headers=preflight(UNLISTED))
        simple = await http.get("/healthz", headers={"Origin": UNLISTED})

    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_no_cors_headers_at_all_without_an_allow_list(gateway: Gateway, settings_for) -> None:
    app = create_app(settings_for("127.0.0.1:1"))
    async with gateway(app) as http:
        response = await http.options("/api/v1/leads", headers=preflight(ORIGIN))
        simple = await http.get("/healthz", headers={"Origin": ORIGIN})

    for r in (response, simple):
        assert not [name for name in r.headers if name.lower().startswith("access-control-")]


async def test_the_gateway_wires_security_headers_outside_the_body_limit(
    gateway: Gateway, settings_for: Callable[..., GatewaySettings]
) -> None:
    settings = settings_for("127.0.0.1:1", max_body_bytes=16, hsts=True)
    async with gateway(create_app(settings)) as http:
        too_big = await http.post("/api/v1/leads", content=b"x" * 64, headers={"Idempotency-Key": "k-1"})
        health = await http.get("/healthz")

    # The 413 comes from the size limit, inside the security headers and before idempotency.
    assert too_big.status_code == 413
    assert too_big.headers["x-content-type-options"] == "nosniff"
    assert too_big.headers["cache-control"] == "no-store"
    assert health.headers["strict-transport-security"] == HSTS
    assert health.headers["content-security-policy"] == API_CSP
