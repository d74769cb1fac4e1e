"""Attribution through the gateway on the running system (issue 20's first report): a marketer's
radio campaign brings a lead, the same person comes back through a web-form campaign and buys;
the attribution report by campaign credits the deal to the radio campaign under the first-touch
model and to the web form under the last-touch one, each with its cost per won deal and return per
shekel — side by side in one answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

from .test_campaigns import create_campaign, marketing, phone  # noqa: F401  (the marketing fixture)

pytestmark = pytest.mark.e2e

SOFA = [{"sku": "SOFA", "quantity": 1, "unit_price": {"amount_minor": 2_700_000, "currency_code": "ILS"}}]


async def costing(client: httpx.AsyncClient, source: str, cost: int) -> dict[str, Any]:
    campaign = await create_campaign(client, source=source)
    changed = await client.patch(
        f"/api/v1/campaigns/{campaign['id']}", json={"actual_cost": {"amount_minor": cost, "currency_code": "ILS"}}
    )
    assert changed.status_code == 200, changed.text
    return campaign


async def test_first_and_last_touch_credit_different_campaigns_with_cost_per_deal_and_return(
    stack: Stack,
    api: httpx.AsyncClient,
    marketing: httpx.AsyncClient,  # noqa: F811
) -> None:
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    radio = await costing(marketing, "radio", 900_000)
    web = await costing(marketing, "web_form", 300_000)
    number = phone("052")
    person = {"full_name": "נועה לוי", "phone_number": number}
    first = await api.post("/api/v1/leads", json={**person, "source": "radio", "campaign": radio["name"]})
    assert first.status_code == 201, first.text
    again = await api.post("/api/v1/leads", json={**person, "source": "web_form", "campaign": web["name"]})
    assert again.status_code in (200, 201), again.text
    deal = await api.post(f"/api/v1/leads/{first.json()['id']}/convert", json={})
    assert deal.status_code == 201, deal.text
    won = await api.post(f"/api/v1/deals/{deal.json()['id']}/close", json={"outcome": "won", "items": SOFA})
    assert won.status_code == 200, won.text

    params = [("dimension", "campaign"), ("models", "first"), ("models", "last"), ("start_time", since)]

    async def credited() -> dict[str, Any] | None:
        response = await marketing.get("/api/v1/reports/attribution", params=params)
        assert response.status_code == 200, response.text
        rows = {r["key"]: {c["model"]: c for c in r["credits"]} for r in response.json()["rows"]}
        done = rows.get(web["id"], {}).get("last", {}).get("deals") == 1
        return rows if done and rows.get(radio["id"], {}).get("first", {}).get("deals") == 1 else None

    rows = await eventually(credited, timeout=60)
    assert rows[radio["id"]]["last"]["deals"] == 0 and rows[web["id"]]["first"]["deals"] == 0
    assert rows[radio["id"]]["first"]["cost_per_deal"] == [{"amount_minor": 900_000, "currency_code": "ILS"}]
    assert rows[radio["id"]]["first"]["return_on_cost"] == pytest.approx(3.0)
    assert rows[web["id"]]["last"]["return_on_cost"] == pytest.approx(9.0)
    refused = await marketing.get("/api/v1/reports/attribution", params={"models": "shapley"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "models.0"
