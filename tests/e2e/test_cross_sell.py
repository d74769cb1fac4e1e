"""Cross-sell through the whole system (issue 20): buyers' won deals reach reporting as events; a
service agent opens a customer who bought a bed and the console suggests the pillow that most bed
buyers also bought, with the reason; the agent records the customer's answer on the page, and the
marketing report counts it. Who may see suggestions is the permission matrix's."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crm_kit.testing import eventually

from .test_promotions import PATIENCE, unique_phone

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PAIRED, OTHERS = 8, 14  # 8 bought a bed and pillows; 14 a lamp: over the rules' 20 buyers


def line(sku: str, name: str, price_minor: int) -> dict[str, Any]:
    return {
        "sku": sku,
        "description": name,
        "quantity": 1,
        "unit_price": {"amount_minor": price_minor, "currency_code": "ILS"},
    }


async def buys(api: httpx.AsyncClient, items: list[dict[str, Any]]) -> str:
    """A new buyer's lead, won with the items; the lead's id."""
    person = {"full_name": "קונה לבדיקה", "phone_number": unique_phone("+97253"), "source": "website"}
    lead = await api.post("/api/v1/leads", json=person)
    assert lead.status_code == 201, lead.text
    deal = await api.post(f"/api/v1/leads/{lead.json()['id']}/convert", json={"title": "רכישה"})
    assert deal.status_code == 201, deal.text
    won = await api.post(f"/api/v1/deals/{deal.json()['id']}/close", json={"outcome": "won", "items": items})
    assert won.status_code == 200, won.text
    return str(lead.json()["id"])


async def test_a_service_agent_sees_what_buyers_of_the_same_product_bought_and_records_the_answer(
    api: httpx.AsyncClient, stack: Any, console: Any
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    tag = uuid.uuid4().hex[:8].upper()
    bed, pillows, lamp = (
        line(f"BED-{tag}", "מיטה זוגית", 350000),
        line(f"PILLOW-{tag}", "זוג כריות", 30000),
        line(f"LAMP-{tag}", "מנורה", 20000),
    )
    await asyncio.gather(*(buys(api, [bed, pillows]) for _ in range(PAIRED)))
    await asyncio.gather(*(buys(api, [lamp]) for _ in range(OTHERS)))
    lead_id = await buys(api, [bed])

    async def customer() -> str | None:
        found = (await api.get("/api/v1/customers", params={"lead_id": lead_id})).json()["customers"]
        return str(found[0]["id"]) if found else None

    customer_id = await eventually(customer, timeout=PATIENCE)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers("service_agent")
    ) as agent:

        async def suggested() -> dict[str, Any] | None:
            # The rules are relearned a second after the last learning in this stack.
            reply = await agent.get(f"/api/v1/customers/{customer_id}/suggestions")
            assert reply.status_code == 200, reply.text
            found = [s for s in reply.json()["suggestions"] if s["sku"] == pillows["sku"]]
            return found[0] if found and found[0]["buyers_of_because"] == PAIRED + 1 else None

        suggestion = await eventually(suggested, timeout=PATIENCE)
    assert (suggestion["because_sku"], suggestion["because_name"]) == (bed["sku"], "מיטה זוגית")
    assert suggestion["name"] == "זוג כריות" and suggestion["buyers_of_both"] == PAIRED
    assert suggestion["confidence"] == pytest.approx(round(PAIRED / (PAIRED + 1), 4)) and suggestion["lift"] > 1
    assert suggestion["last_offer"] is None

    # The agent's customer page, in Hebrew: the pillows with their reason; the customer wants them.
    page = await console.page()
    await console.sign_in(page, "service_agent", f"/customers/{customer_id}")
    shown = page.locator(f"#suggestions li[data-sku='{pillows['sku']}']")
    await shown.wait_for()
    assert await shown.get_attribute("data-percent") == str(round(100 * PAIRED / (PAIRED + 1)))
    assert "מיטה זוגית" in await shown.locator(".reason").inner_text()
    await console.no_serious_axe_violations(page, "customer with cross-sell suggestions (he)")
    await shown.get_by_role("button", name="הלקוח/ה רוצה").click()
    await page.wait_for_url(f"**/customers/{customer_id}#suggestions")
    answered = page.locator(f"#suggestions li[data-sku='{pillows['sku']}'] .last-offer")
    await answered.wait_for()
    assert await answered.get_attribute("data-response") == "accepted"
    await console.shot(page, "customer-cross-sell-he")

    # Marketing's report counts the offer and its answer.
    report = await api.get("/api/v1/reports/cross-sell", params={"start_time": started.isoformat()})
    assert report.status_code == 200, report.text
    (row,) = [r for r in report.json()["rows"] if r["sku"] == pillows["sku"]]
    assert (row["name"], row["offers"], row["accepted"], row["declined"]) == ("זוג כריות", 1, 1, 0)
    bad = await api.get("/api/v1/reports/cross-sell", params={"window_days": 0})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert "window_days" in bad.text
