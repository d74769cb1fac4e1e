"""What an anonymous caller can make the gateway do: requests without a valid token are limited
per client address, /readyz does not fan out per request, and the API docs are off in production
and load no third-party script without its integrity hash."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from grpc_health.v1 import health_pb2

from crm_gateway.api_docs import PINNED, SWAGGER_UI_START_HASH
from crm_gateway.app import create_app
from crm_gateway.platform.security_headers import DOCS_CSP
from crm_gateway.readiness import SharedReadiness
from crm_kit.dev_issuer import DevIssuer

from .conftest import RIGHT_SURVEY_TOKEN

pytestmark = pytest.mark.unit

PRODUCTION = {
    "environment": "production",
    "auth_dev_issuer_key_file": "",
    "auth_issuer": "https://id.example",
    "auth_jwks_url": "https://id.example/jwks",
}


# ---------------------------------------------------------------- requests without a valid token


async def test_requests_without_a_valid_token_are_limited_per_address(
    backend, gateway, settings_for: Callable[..., Any], issuer: DevIssuer
) -> None:
    app = create_app(settings_for(backend.address, anonymous_rate_limit_burst=5, anonymous_rate_limit_per_minute=1))
    async with gateway(app, headers={}) as http:
        no_token = [(await http.get("/api/v1/leads")).status_code for _ in range(4)]
        bad_token = [
            (await http.get("/api/v1/leads", headers={"Authorization": "Bearer not.a.token"})).status_code
            for _ in range(3)
        ]
        refused = await http.get("/api/v1/leads")
        valid = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {issuer.mint_demo('sales_rep')}"})

    assert no_token + bad_token == [401] * 5 + [429] * 2
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    # A valid token is never counted against the address, nor refused by it.
    assert valid.status_code == 200


async def test_guessing_survey_links_spends_the_address_s_anonymous_budget(
    backend, gateway, settings_for: Callable[..., Any]
) -> None:
    app = create_app(settings_for(backend.address, anonymous_rate_limit_burst=3, anonymous_rate_limit_per_minute=1))
    async with gateway(app, headers={}) as http:
        right = await http.post(f"/api/v1/public/support/surveys/{RIGHT_SURVEY_TOKEN}", json={"score": 5})
        guesses = [
            (await http.post(f"/api/v1/public/support/surveys/guess-{n:024d}", json={"score": 1})).status_code
            for n in range(4)
        ]
        after = await http.post(f"/api/v1/public/support/surveys/{RIGHT_SURVEY_TOKEN}", json={"score": 4})

    assert (right.status_code, right.json()) == (200, {"score": 5, "ticket_number": 1042})
    assert guesses == [404, 404, 404, 429]  # a right answer is never counted; each wrong one is
    assert after.status_code == 429  # refused before the lookup once the budget is spent


async def test_the_anonymous_limit_counts_the_visitor_behind_a_trusted_proxy(
    backend, gateway, settings_for: Callable[..., Any]
) -> None:
    app = create_app(
        settings_for(
            backend.address,
            anonymous_rate_limit_burst=2,
            anonymous_rate_limit_per_minute=1,
            trusted_proxies=["127.0.0.1/32"],
        )
    )
    async with gateway(app, headers={}) as http:

        async def from_(address: str) -> int:
            return (await http.get("/api/v1/leads", headers={"X-Forwarded-For": address})).status_code

        first = [await from_("198.51.100.7") for _ in range(3)]
        other = await from_("203.0.113.9")

    assert first == [401, 401, 429]
    assert other == 401


# ---------------------------------------------------------------- /readyz


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_readiness_sweeps_the_backends_at_most_once_per_window() -> None:
    sweeps = 0
    release = asyncio.Event()

    async def sweep() -> list[str]:
        nonlocal sweeps
        sweeps += 1
        await release.wait()
        return ["orders"]

    clock = Clock()
    readiness = SharedReadiness(sweep, ttl_seconds=2, clock=clock)
    waiting = asyncio.gather(*(readiness.not_ready() for _ in range(100)))
    await asyncio.sleep(0)
    release.set()

    assert await waiting == [["orders"]] * 100
    assert sweeps == 1  # a hundred probes at once: one sweep in flight
    clock.now = 1.9
    assert await readiness.not_ready() == ["orders"]
    assert sweeps == 1
    clock.now = 2.0
    await readiness.not_ready()
    assert sweeps == 2


async def test_a_failed_sweep_is_not_kept() -> None:
    calls = 0

    async def sweep() -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("channel closed")
        return []

    readiness = SharedReadiness(sweep, ttl_seconds=2, clock=Clock())
    with pytest.raises(RuntimeError):
        await readiness.not_ready()
    assert await readiness.not_ready() == []


async def test_readyz_answers_from_the_shared_result(backend, gateway, settings_for: Callable[..., Any]) -> None:
    app = create_app(settings_for(backend.address, readiness_cache_seconds=30))
    async with gateway(app, headers={}) as http:
        first = await http.get("/readyz")
        await backend.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        cached = await http.get("/readyz")
    app = create_app(settings_for(backend.address, readiness_cache_seconds=0))
    async with gateway(app, headers={}) as http:
        fresh = await http.get("/readyz")

    assert [first.json()["unavailable"], cached.json()["unavailable"]] == [[], []]
    # Every backend is this one fake: all of them unavailable, and the gateway still ready.
    assert fresh.status_code == 200 and "customers" in fresh.json()["unavailable"]


# ---------------------------------------------------------------- API docs


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_the_api_docs_are_off_in_production_by_default(
    backend, gateway, settings_for: Callable[..., Any], path: str
) -> None:
    async with gateway(create_app(settings_for(backend.address, **PRODUCTION)), headers={}) as http:
        off = await http.get(path)
    async with gateway(create_app(settings_for(backend.address, **PRODUCTION, api_docs=True)), headers={}) as http:
        on = await http.get(path)

    assert off.status_code == 404
    assert on.status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_docs_load_no_third_party_file_without_its_integrity_hash(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    page = response.text
    external = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="https?://[^"]*"[^>]*>', page)
    assert external, page
    for tag in external:
        assert re.search(r'integrity="sha384-[A-Za-z0-9+/]{64}"', tag), tag
        assert 'crossorigin="anonymous"' in tag, tag
        assert re.search(r"@\d+\.\d+\.\d+/", tag), f"not pinned to one version: {tag}"
    assert response.headers["content-security-policy"] == DOCS_CSP
    script_src = next(d for d in DOCS_CSP.split("; ") if d.startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    for inline in re.findall(r"<script>(.*?)</script>", page, flags=re.S):
        digest = "sha256-" + base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert digest == SWAGGER_UI_START_HASH and digest in script_src


def test_every_pinned_asset_names_one_version_and_a_sha384() -> None:
    for asset in PINNED:
        assert re.fullmatch(r"https://cdn\.jsdelivr\.net/npm/[a-z-]+@\d+\.\d+\.\d+/\S+", asset.url)
        assert re.fullmatch(r"sha384-[A-Za-z0-9+/]{64}", asset.integrity)


async def test_the_openapi_document_stays_served_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    assert response.json()["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


# ---------------------------------------------------------------- X-Request-ID


@pytest.mark.parametrize("given", ["a b", "x" * 101, "id<script>", "ok'; DROP TABLE audit_log;--"])
async def test_a_request_id_outside_the_rule_is_replaced_before_any_backend_sees_it(
    client: httpx.AsyncClient, backend, given: str
) -> None:
    response = await client.get("/api/v1/leads/lead-1", headers={"X-Request-ID": given})

    assigned = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", assigned)
    [(_, _, metadata)] = backend.recorder.calls
    assert metadata["x-request-id"] == assigned


async def test_a_well_formed_request_id_is_kept_end_to_end(client: httpx.AsyncClient, backend) -> None:
    response = await client.get("/api/v1/leads/lead-1", headers={"X-Request-ID": "web-7f3a:retry.2"})

    assert response.headers["x-request-id"] == "web-7f3a:retry.2"
    [(_, _, metadata)] = backend.recorder.calls
    assert metadata["x-request-id"] == "web-7f3a:retry.2"
