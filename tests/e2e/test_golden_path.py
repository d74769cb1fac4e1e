"""The golden path through every service, as separate processes with real PostgreSQL and NATS:
a lead from the radio ends, after the deal is won and the order ships, in exactly one SMS."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from babel.dates import format_date

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e

ITEMS = [
    {
        "sku": "SOFA-3",
        "description": "ספה תלת-מושבית",
        "quantity": 1,
        "unit_price": {"amount_minor": 459900, "currency_code": "ILS"},
    },
    {
        "sku": "PILLOW",
        "description": "כרית נוי",
        "quantity": 2,
        "unit_price": {"amount_minor": 5000, "currency_code": "ILS"},
    },
]


def unique_phone() -> str:
    return f"052-{uuid.uuid4().int % 10_000_000:07d}"


async def capture(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = {
        "full_name": "רונית אברהם",
        "phone_number": unique_phone(),
        "source": "radio",
        "locale": "he-IL",
        "request_id": str(uuid.uuid4()),
    }
    body.update(overrides)
    response = await api.post("/api/v1/leads", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def win_deal(api: httpx.AsyncClient, lead_id: str) -> dict[str, Any]:
    converted = await api.post(f"/api/v1/leads/{lead_id}/convert", json={"title": "סלון חדש"})
    assert converted.status_code == 201, converted.text
    closed = await api.post(f"/api/v1/deals/{converted.json()['id']}/close", json={"outcome": "won", "items": ITEMS})
    assert closed.status_code == 200, closed.text
    return dict(closed.json())


async def the_order(api: httpx.AsyncClient, deal_id: str) -> dict[str, Any]:
    async def one_order() -> list[dict[str, Any]]:
        response = await api.get("/api/v1/orders", params={"deal_id": deal_id})
        assert response.status_code == 200, response.text
        return list(response.json()["orders"])

    orders = await eventually(one_order, timeout=30)
    assert len(orders) == 1
    return orders[0]


async def sms_for(sms: httpx.AsyncClient, phone: str) -> list[dict[str, Any]]:
    return [m for m in (await sms.get("/messages")).json() if m["to"] == phone]


async def test_radio_lead_to_one_sms_with_the_delivery_date(api, sms, stack: Stack) -> None:
    lead = await capture(api)
    phone = lead["phone_number"]
    assert phone.startswith("+97252") and len(phone) == 13
    # Radio leads go to the media team by rule, round-robin inside the team.
    assert lead["assignment"]["rule_id"] == "rule-broadcast"
    assert lead["assignment"]["team_id"] == "team-media"
    next_lead = await capture(api, full_name="יוסי מזרחי")
    assert {lead["assignment"]["rep_id"], next_lead["assignment"]["rep_id"]} == {"rep-dana", "rep-moshe"}

    deal = await win_deal(api, lead["id"])
    assert deal["status"] == "won" and deal["total"] == {"amount_minor": 469900, "currency_code": "ILS"}

    order = await the_order(api, deal["id"])
    assert [line["sku"] for line in order["lines"]] == ["SOFA-3", "PILLOW"]
    assert order["status"] == "pending"

    eta = (datetime.now(UTC) + timedelta(days=5)).date()
    trace_id = uuid.uuid4().hex
    shipped = await api.post(
        f"/api/v1/orders/{order['id']}/ship",
        json={"carrier": "דואר ישראל", "tracking_number": "RR123456789IL", "estimated_delivery_date": eta.isoformat()},
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    assert shipped.status_code == 200, shipped.text

    messages = await eventually(lambda: sms_for(sms, phone), timeout=30)
    assert len(messages) == 1
    text = messages[0]["body"]
    assert format_date(eta, format="short", locale="he_IL") in text
    assert "ההזמנה" in text  # Hebrew template, the customer's locale
    # One trace from the HTTP request through gRPC and NATS to the provider call.
    assert messages[0]["traceparent"].split("-")[1] == trace_id

    # The customer's timeline shows every touch, in order.
    customers = (await api.get("/api/v1/customers", params={"lead_id": lead["id"]})).json()["customers"]
    assert len(customers) == 1
    customer_id = customers[0]["id"]

    async def full_timeline() -> list[str] | None:
        entries = (await api.get(f"/api/v1/customers/{customer_id}/timeline")).json()["entries"]
        kinds = [e["kind"] for e in entries]
        return kinds if "sms_sent" in kinds else None

    kinds = await eventually(full_timeline, timeout=30)
    assert kinds == ["lead_captured", "deal_won", "order_shipped", "sms_sent"]

    # The source report counts the lead and the revenue.
    async def radio_row() -> dict[str, Any] | None:
        rows = (await api.get("/api/v1/reports/sources")).json()["rows"]
        row = next((r for r in rows if r["source"] == "radio"), None)
        return row if row and row["won_deals"] >= 1 else None

    row = await eventually(radio_row, timeout=30)
    assert row["leads"] >= 2
    assert {"amount_minor": 469900, "currency_code": "ILS"} in row["revenue"] or any(
        m["currency_code"] == "ILS" and m["amount_minor"] >= 469900 for m in row["revenue"]
    )

    # Still exactly one SMS once everything has settled.
    assert len(await sms_for(sms, phone)) == 1


async def test_deal_closed_delivered_again_makes_no_second_order(api, stack: Stack) -> None:
    lead = await capture(api)
    deal = await win_deal(api, lead["id"])
    await the_order(api, deal["id"])

    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        original = await js.get_last_msg("CRM", "crm.sales.deal_closed")
        assert original.headers and original.data
        # Same event id (ce-id), new Nats-Msg-Id: JetStream keeps it, only the inbox can stop it.
        headers = dict(original.headers)
        headers["Nats-Msg-Id"] = str(uuid.uuid4())
        await js.publish("crm.sales.deal_closed", original.data, headers=headers)
        # A later event proves the consumer has moved past the duplicate.
        follow_up = await capture(api)
        later = await win_deal(api, follow_up["id"])
        await the_order(api, later["id"])
    finally:
        await nc.close()
    orders = (await api.get("/api/v1/orders", params={"deal_id": deal["id"]})).json()["orders"]
    assert len(orders) == 1


async def test_provider_failing_twice_still_sends_exactly_one_sms(api, sms) -> None:
    lead = await capture(api, source="website", locale="he-IL")
    deal = await win_deal(api, lead["id"])
    order = await the_order(api, deal["id"])
    assert (await sms.post("/control/fail-next", json={"count": 2, "status": 503})).status_code == 200
    eta = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    shipped = await api.post(
        f"/api/v1/orders/{order['id']}/ship",
        json={"carrier": "UPS", "tracking_number": "1Z999", "estimated_delivery_date": eta},
    )
    assert shipped.status_code == 200, shipped.text

    async def sent() -> list[dict[str, Any]] | None:
        messages = (await api.get("/api/v1/messages", params={"order_id": order["id"]})).json()["messages"]
        return messages if messages and messages[0]["status"] == "sent" else None

    messages = await eventually(sent, timeout=30)
    assert len(messages) == 1
    assert len(await sms_for(sms, lead["phone_number"])) == 1


async def test_bad_input_gets_clear_errors(api) -> None:
    bad_phone = await api.post("/api/v1/leads", json={"full_name": "x", "phone_number": "12", "source": "radio"})
    assert bad_phone.status_code == 422
    assert bad_phone.headers["content-type"].startswith("application/problem+json")
    assert any(e["field"] == "phone_number" for e in bad_phone.json()["errors"])

    bad_source = await api.post(
        "/api/v1/leads", json={"full_name": "x", "phone_number": "0527654321", "source": "tiktok"}
    )
    assert bad_source.status_code == 422
    assert "telemarketing" in bad_source.text and any(e["field"] == "source" for e in bad_source.json()["errors"])

    unknown_field = await api.post(
        "/api/v1/leads", json={"full_name": "x", "phone_number": "0527654321", "source": "radio", "vip": True}
    )
    assert unknown_field.status_code == 422 and "vip" in unknown_field.text

    lead = await capture(api)
    deal = await win_deal(api, lead["id"])
    again = await api.post(f"/api/v1/deals/{deal['id']}/close", json={"outcome": "lost"})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")

    missing = await api.post(
        f"/api/v1/orders/{uuid.uuid4()}/ship",
        json={"carrier": "UPS", "tracking_number": "1", "estimated_delivery_date": "2099-01-01"},
    )
    assert missing.status_code == 404


async def test_poison_event_is_dead_lettered_and_the_consumer_goes_on(api, stack: Stack) -> None:
    poison_id = str(uuid.uuid4())
    nc = await nats.connect(stack.nats_url)
    try:
        await nc.jetstream().publish(
            "crm.sales.deal_closed",
            b"\xff\xff\xff not a protobuf",
            headers={
                "Nats-Msg-Id": poison_id,
                "ce-id": poison_id,
                "ce-type": "crm.sales.v1.DealClosed",
                "ce-source": "/e2e",
                "ce-specversion": "1.0",
            },
        )
    finally:
        await nc.close()

    dsn = stack.database_url("orders").replace("postgresql+asyncpg://", "postgresql://")

    async def dead_letter() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchrow(
                "select consumer, error, deliveries from dead_letters where event_id = $1", poison_id
            )
        finally:
            await conn.close()

    row = await eventually(dead_letter, timeout=30)
    assert row["consumer"] == "orders-deal-closed"
    # The consumer goes on: the next won deal still becomes an order.
    lead = await capture(api)
    deal = await win_deal(api, lead["id"])
    await the_order(api, deal["id"])
