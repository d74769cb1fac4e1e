"""One trace id in the log lines of every service the golden path touches: closing a deal
(gateway → sales → DealClosed → orders, customers, reporting) and shipping the order (gateway →
orders → OrderShipped → notifications → customers, reporting, SMS provider)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e

ITEMS = [{"sku": "LAMP", "quantity": 1, "unit_price": {"amount_minor": 25000, "currency_code": "ILS"}}]


def traceparent() -> tuple[str, dict[str, str]]:
    trace_id = uuid.uuid4().hex
    return trace_id, {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}


def services_logging(stack: Stack, trace_id: str) -> dict[str, list[str]]:
    """Which processes wrote log lines with trace_id, and those lines' messages."""
    found: dict[str, list[str]] = {}
    for name in ("gateway", "leads", "sales", "customers", "orders", "notifications", "reporting"):
        for line in stack.log_path(name).read_text(encoding="utf-8", errors="replace").splitlines():
            if trace_id not in line or not line.startswith("{"):
                continue
            record: dict[str, Any] = json.loads(line)
            if record.get("trace_id") == trace_id:
                found.setdefault(name, []).append(str(record["message"]))
    return found


async def test_the_golden_path_logs_one_trace_id_per_request_in_every_service(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    phone = f"050-{uuid.uuid4().int % 10_000_000:07d}"
    lead = (
        await api.post("/api/v1/leads", json={"full_name": "נועה כץ", "phone_number": phone, "source": "tv"})
    ).json()
    deal = (await api.post(f"/api/v1/leads/{lead['id']}/convert", json={})).json()

    close_trace, close_headers = traceparent()
    closed = await api.post(
        f"/api/v1/deals/{deal['id']}/close", json={"outcome": "won", "items": ITEMS}, headers=close_headers
    )
    assert closed.status_code == 200, closed.text

    async def order_id() -> str | None:
        orders = (await api.get("/api/v1/orders", params={"deal_id": deal["id"]})).json()["orders"]
        return orders[0]["id"] if orders else None

    ship_trace, ship_headers = traceparent()
    shipped = await api.post(
        f"/api/v1/orders/{await eventually(order_id)}/ship",
        json={"carrier": "UPS", "tracking_number": "1Z999", "estimated_delivery_date": "2030-03-01"},
        headers=ship_headers,
    )
    assert shipped.status_code == 200, shipped.text

    close_expected = {"gateway", "sales", "orders", "customers", "reporting"}
    ship_expected = {"gateway", "orders", "notifications", "customers", "reporting"}

    async def traced() -> tuple[dict[str, list[str]], dict[str, list[str]]] | None:
        close_logs, ship_logs = services_logging(stack, close_trace), services_logging(stack, ship_trace)
        if set(close_logs) >= close_expected and set(ship_logs) >= ship_expected:
            return close_logs, ship_logs
        return None

    close_logs, ship_logs = await eventually(traced, timeout=30)
    assert set(close_logs) | set(ship_logs) == {"gateway", "sales", "customers", "orders", "notifications", "reporting"}
    assert "http request" in close_logs["gateway"]
    assert "rpc handled" in close_logs["sales"]
    assert "handling event" in close_logs["orders"]
    assert "rpc handled" in ship_logs["orders"]
    assert "handling event" in ship_logs["notifications"]
