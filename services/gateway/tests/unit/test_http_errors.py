"""Errors the gateway raises itself are problem+json too; health, readiness and the auth seam."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator

import httpx
import pytest

from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings

from .conftest import bearer, running_gateway

pytestmark = pytest.mark.unit

LEAD = {"full_name": "Dana Cohen", "phone_number": "050-1234567", "source": "radio"}
ITEM = {
    "sku": "SOFA-3",
    "description": "Sofa",
    "quantity": 1,
    "unit_price": {"amount_minor": 1, "currency_code": "ILS"},
}


def problem_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


async def test_unknown_body_field_is_422_naming_it(client: httpx.AsyncClient, backend) -> None:
    response = await client.post("/api/v1/leads", json={**LEAD, "nickname": "dana"})

    assert problem_fields(response) == ["nickname"]
    assert "nickname" in response.json()["detail"]
    assert backend.recorder.calls == []


async def test_an_error_names_at_most_20_fields_however_many_are_wrong(settings_for, backend, issuer) -> None:
    """A body of thousands of unknown fields (each with a long name) gets a small answer."""
    app = create_app(settings_for(backend.address, max_body_bytes=2_000_000))
    body = {**LEAD, **{f"unknown_{i}_" + "n" * 300: 1 for i in range(3000)}}
    async with running_gateway(app, bearer(issuer)) as http:
        response = await http.post("/api/v1/leads", json=body)

    fields = problem_fields(response)
    assert len(fields) == 20
    assert all(len(field) <= 120 for field in fields)
    assert response.json()["detail"].endswith("and 2980 more errors.")
    assert len(response.content) < 10_000
    assert backend.recorder.calls == []


async def test_missing_and_too_long_fields_are_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/leads", json={"full_name": "x" * 201, "source": "radio"})

    # Neither a phone number nor an e-mail: both are named (either one is enough), with the name.
    assert sorted(problem_fields(response)) == ["email", "full_name", "phone_number"]


async def test_nested_item_errors_name_the_json_path(client: httpx.AsyncClient) -> None:
    bad = copy.deepcopy(ITEM)
    bad["quantity"] = 0
    bad["unit_price"] = {"amount_minor": -5, "currency_code": "ils"}

    response = await client.post("/api/v1/deals/deal-1/close", json={"outcome": "won", "items": [ITEM, bad]})

    assert sorted(problem_fields(response)) == [
        "items.1.quantity",
        "items.1.unit_price.amount_minor",
        "items.1.unit_price.currency_code",
    ]


async def test_unknown_outcome_and_bad_date_are_422(client: httpx.AsyncClient) -> None:
    close = await client.post("/api/v1/deals/deal-1/close", json={"outcome": "maybe"})
    ship = await client.post(
        "/api/v1/orders/o-1/ship",
        json={"carrier": "Israel Post", "tracking_number": "RR1", "estimated_delivery_date": "2025-02-30"},
    )

    assert problem_fields(close) == ["outcome"]
    assert problem_fields(ship) == ["estimated_delivery_date"]


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/leads", content=b'{"full_name": ', headers={"content-type": "application/json"}
    )

    assert problem_fields(response) == ["body"]


async def test_negative_page_size_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/leads", params={"page_size": -1})

    assert problem_fields(response) == ["page_size"]


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, settings: GatewaySettings, backend) -> None:
    oversized = {**LEAD, "campaign": "x" * settings.max_body_bytes}

    response = await client.post("/api/v1/leads", json=oversized)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert backend.recorder.calls == []


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient, settings: GatewaySettings) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(settings.max_body_bytes // 512 + 2):
            yield b" " * 512

    response = await client.post("/api/v1/leads", content=chunks(), headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert "content-length" not in {k.lower() for k in response.request.headers}


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/leads")

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert "POST" in response.headers["allow"]


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_every_backend_serves(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "unavailable": []}


async def test_readyz_stays_ready_and_names_the_backends_not_serving(
    backend, not_serving_backend, gateway, settings_for
) -> None:
    """One backend down is not a full outage: the gateway stays in its Service (capture keeps
    working) and says which backends are not serving."""
    app = create_app(
        settings_for(
            backend.address,
            customers_addr=not_serving_backend.address,
            orders_addr=not_serving_backend.address,
            reporting_addr="127.0.0.1:1",
        )
    )
    async with gateway(app) as http:
        response = await http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "unavailable": ["customers", "orders", "reporting"]}
    assert "127.0.0.1" not in response.text


async def test_authentication_guards_the_api_but_not_operations(backend, gateway, settings_for) -> None:
    async with gateway(create_app(settings_for(backend.address)), headers={}) as http:
        api = await http.get("/api/v1/leads/lead-1")
        health = await http.get("/healthz")
        openapi = await http.get("/openapi.json")
        jwks = await http.get("/.well-known/jwks.json")

    assert api.status_code == 401
    assert api.headers["content-type"] == "application/problem+json"
    assert api.headers["www-authenticate"].startswith("Bearer")
    assert "bearer token is required" in api.json()["detail"]
    assert backend.recorder.calls == []
    assert health.status_code == 200
    assert openapi.status_code == 200
    assert jwks.status_code == 200
    assert [key["alg"] for key in jwks.json()["keys"]] == ["ES256"]
    assert "d" not in jwks.json()["keys"][0]  # the public part only


async def test_a_body_that_is_not_json_is_415_problem(client: httpx.AsyncClient, backend) -> None:
    response = await client.post(
        "/api/v1/leads", content=b"full_name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert backend.recorder.calls == []


async def test_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/leads")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"


async def test_a_stub_phone_number_is_named_with_the_other_bad_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/leads", json={"full_name": "", "phone_number": "1", "source": "radio"})

    assert sorted(problem_fields(response)) == ["full_name", "phone_number"]
