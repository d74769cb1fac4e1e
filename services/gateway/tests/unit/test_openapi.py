"""The OpenAPI document as a client generator reads it: every operation named by hand (camelCase,
unique, and only renamed on purpose), and no optional header with an empty default a generated
client would send."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings

from .test_auth import api_routes_of
from .test_routes import LEAD

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).with_name("openapi_operation_ids.txt")
CAMEL_CASE = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)*$")
METHODS = frozenset({"get", "put", "post", "patch", "delete", "head", "options"})


@pytest.fixture
def spec(settings_for: Callable[..., GatewaySettings]) -> dict[str, Any]:
    # The dev issuer is on, so the document has every route the gateway can serve.
    return create_app(settings_for("127.0.0.1:1")).openapi()


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in spec["paths"].values() for method, op in path.items() if method in METHODS]


def test_every_documented_route_names_its_operation_by_hand(settings_for: Callable[..., GatewaySettings]) -> None:
    app = create_app(settings_for("127.0.0.1:1"))
    documented = [route for route in api_routes_of(app.routes) if route.include_in_schema]

    unnamed = sorted(route.path for route in documented if not route.operation_id)

    assert documented
    assert not unnamed, f"routes without an explicit operation_id: {unnamed}"


def test_operation_ids_are_camel_case_and_unique(spec: dict[str, Any]) -> None:
    ids = [op.get("operationId", "") for op in operations(spec)]

    assert [i for i in ids if not CAMEL_CASE.match(i)] == []
    assert len(ids) == len(set(ids))


def test_operation_ids_are_the_committed_ones(spec: dict[str, Any]) -> None:
    """A generated client's method names: renaming one breaks its users, so it is a reviewed
    change of openapi_operation_ids.txt."""
    ids = sorted(op["operationId"] for op in operations(spec))

    assert ids == GOLDEN.read_text().split(), f"operation ids changed; if on purpose, update {GOLDEN.name}"


def test_no_optional_header_defaults_to_an_empty_string(spec: dict[str, Any]) -> None:
    headers = [
        (op["operationId"], param)
        for op in operations(spec)
        for param in op.get("parameters", [])
        if param["in"] == "header"
    ]
    empty_defaults = [
        (operation, param["name"])
        for operation, param in headers
        if not param.get("required") and param.get("schema", {}).get("default") == ""
    ]

    assert {param["name"] for _, param in headers} >= {"Idempotency-Key", "If-Match"}
    assert empty_defaults == []


async def test_an_idempotency_key_sent_empty_is_still_refused(client: httpx.AsyncClient, backend) -> None:
    response = await client.post("/api/v1/leads", json=LEAD, headers={"Idempotency-Key": ""})

    assert response.status_code == 400
    assert backend.recorder.requests("CaptureLead") == []
