"""The sales manager's screens in a real browser against the whole system: an SLA breach and the
team's work lists, a possible duplicate merged side by side, targets against actual as a chart
mirrored in right-to-left, and the routing rules editor naming the field the gateway refused.

The data each screen needs is made through the gateway's API first (the e2e stack has the seeded
teams, reps and rules, not the demo data). Screenshots: ``.state/test-artifacts/console/manager-*``.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
TEAM = "team-media"  # the demo manager's team (the dev issuer's sales_manager)


def gateway(stack: Stack, role: str = "admin") -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(role), timeout=15)


def phone() -> str:
    return f"054-{uuid.uuid4().int % 10_000_000:07d}"


def surname() -> str:
    # A made-up surname per test: name matches stay among this test's leads.
    return "".join("בגדזטלמנסקרשת"[int(c, 16) % 13] for c in uuid.uuid4().hex[:5])


@pytest.fixture
async def rules_restored(stack: Stack) -> AsyncIterator[list[dict[str, Any]]]:
    """The current routing rules; put back afterwards, whatever the test did."""
    async with gateway(stack) as api:
        current = (await api.get("/api/v1/routing-rules")).json()["rules"]
        yield current
        restored = await api.put("/api/v1/routing-rules", json={"rules": current})
        assert restored.status_code == 200, restored.text


async def test_a_breached_lead_shows_in_breaches_and_in_its_reps_work_list(
    console: Any, stack: Stack, rules_restored: list[dict[str, Any]]
) -> None:
    line = f"e2e-mgr-{uuid.uuid4().hex[:8]}"
    fast = {"name": "SLA 1s", "priority": -5, "product_lines": [line], "team_id": TEAM, "sla_seconds": 1}
    name = f"רונית {surname()}"
    async with gateway(stack) as api:
        assert (await api.put("/api/v1/routing-rules", json={"rules": [fast, *rules_restored]})).status_code == 200
        captured = await api.post(
            "/api/v1/leads",
            json={"full_name": name, "phone_number": phone(), "source": "radio", "product_line": line},
        )
        assert captured.status_code == 201, captured.text
        lead = captured.json()
    async with gateway(stack, "sales_manager") as manager:

        async def breached() -> dict[str, Any] | None:
            found = (await manager.get("/api/v1/sla-breaches", params={"page_size": 100})).json()["sla_breaches"]
            return next((b for b in found if b["lead_id"] == lead["id"]), None)

        await eventually(breached, timeout=30)

    page = await console.page()
    await console.sign_in(page, "sales_manager", "/manager/breaches")
    assert await page.locator("html").get_attribute("dir") == "rtl"
    link = page.get_by_role("link", name=name)
    await link.wait_for()
    assert await link.get_attribute("href") == f"/leads/{lead['id']}"
    row = page.locator("tr", has=link)
    assert lead["assignment"]["rep_name"] in await row.inner_text()
    await console.shot(page, "manager-breaches-he")
    await console.no_serious_axe_violations(page, "SLA breaches (he)")
    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", name="نقض‌های SLA").wait_for()
    await console.shot(page, "manager-breaches-fa")
    await page.get_by_role("link", name="עברית").click()

    await console.menu(page, "רשימות העבודה של הצוות")
    rep_section = page.locator(
        "section.rep-work", has=page.get_by_role("heading", name=re.compile(lead["assignment"]["rep_name"]))
    )
    overdue = rep_section.locator("tr.overdue", has=page.get_by_role("link", name=name))
    await overdue.wait_for()
    assert "באיחור" in await overdue.inner_text()
    await page.get_by_role("heading", name="לידים שלא שויכו").wait_for()
    await console.shot(page, "manager-team-he")
    await console.no_serious_axe_violations(page, "team work lists (he)")
    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", name="سرنخ‌های واگذارنشده").wait_for()
    await console.shot(page, "manager-team-fa")


async def test_a_possible_duplicate_is_merged_from_the_side_by_side_page(console: Any, stack: Stack) -> None:
    family = surname()
    # An address of its own: the shared stack's other tests match leads on e-mail too.
    email = f"moshe-{random.randint(10**8, 10**9)}@example.com"
    async with gateway(stack) as api:
        a = await api.post(
            "/api/v1/leads", json={"full_name": f"מֹשֶׁה {family}", "phone_number": phone(), "source": "radio"}
        )
        b = await api.post(
            "/api/v1/leads",
            json={"full_name": f"{family}, משה", "phone_number": phone(), "source": "radio", "email": email},
        )
        assert a.status_code == b.status_code == 201, (a.text, b.text)
        keep, duplicate = a.json(), b.json()

        async def pair() -> dict[str, Any] | None:
            found = (
                await api.get("/api/v1/possible-duplicates", params={"lead_id": duplicate["id"], "status": "open"})
            ).json()["possible_duplicates"]
            return found[0] if found else None

        the_pair = await eventually(pair)

    page = await console.page()
    await console.sign_in(page, "sales_manager", "/manager/duplicates")
    row = page.locator(f"tr[data-pair='{the_pair['id']}']")
    await row.wait_for()
    await console.shot(page, "manager-duplicates-he")
    await console.no_serious_axe_violations(page, "possible duplicates (he)")
    await row.get_by_role("link").click()
    await page.get_by_role("heading", name="השוואת לידים").wait_for()
    assert await page.locator("section.side").count() == 2
    assert await page.locator(f"bdi:has-text('{duplicate['phone_number']}')").count() == 1
    await console.shot(page, "manager-pair-he")
    await console.no_serious_axe_violations(page, "duplicate pair (he)")
    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", name="مقایسه‌ی سرنخ‌ها").wait_for()
    await console.shot(page, "manager-pair-fa")
    await page.get_by_role("link", name="עברית").click()

    await (
        page.locator(f"section.side[data-lead='{keep['id']}']").get_by_role("button", name="מיזוג לתוך ליד זה").click()
    )
    await page.get_by_text("הלידים מוזגו.").wait_for()
    assert await page.locator(f"tr[data-pair='{the_pair['id']}']").count() == 0
    async with gateway(stack) as api:
        tomb = (await api.get(f"/api/v1/leads/{duplicate['id']}")).json()
    assert tomb["merged_into_lead_id"] == keep["id"]


async def test_targets_against_actual_are_a_table_and_a_chart_mirrored_in_right_to_left(
    console: Any, stack: Stack
) -> None:
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Jerusalem")).date().isoformat()
    async with gateway(stack, "sales_manager") as manager:
        for body in (
            {"subject_kind": "team", "subject_id": TEAM, "metric": "won_amount",
             "amount": {"amount_minor": 5_000_000, "currency_code": "ILS"}},
            {"subject_kind": "rep", "subject_id": "rep-dana", "metric": "won_deals", "count": 4},
        ):  # fmt: skip
            made = await manager.post("/api/v1/targets", json={**body, "period_kind": "month", "period_start": today})
            assert made.status_code in (201, 409), made.text  # 409: set by an earlier run on this stack
    async with gateway(stack) as api:  # one deal of rep-dana won, so the chart has an actual bar
        lead = await api.post(
            "/api/v1/leads", json={"full_name": f"אבי {surname()}", "phone_number": phone(), "source": "radio"}
        )
        assert lead.status_code == 201, lead.text
        assert (await api.post(f"/api/v1/leads/{lead.json()['id']}/assign", json={"rep_id": "rep-dana"})).is_success
        deal = (await api.post(f"/api/v1/leads/{lead.json()['id']}/convert", json={})).json()
        line = {"sku": "SOFA", "description": "ספה", "quantity": 1,
                "unit_price": {"amount_minor": 459_900, "currency_code": "ILS"}}  # fmt: skip
        won = await api.post(f"/api/v1/deals/{deal['id']}/close", json={"outcome": "won", "items": [line]})
        assert won.status_code == 200, won.text

    page = await console.page()
    await console.sign_in(page, "sales_manager", "/manager/targets")
    chart = page.locator("svg.bars")
    await console.reload_until(page, page.locator("svg.bars rect.actual:not([width='0.0'])"))
    assert await page.locator("svg.bars title").first.text_content() == "יעדים מול ביצוע"
    assert "דנה לוי" in await page.locator("tr", has_text="עסקאות שנסגרו").first.inner_text()
    # Right to left: every target bar ends at the axis on the right (bars grow from the inline start).
    box = await chart.bounding_box()
    bar = await page.locator("svg.bars rect.target").first.bounding_box()
    assert bar["x"] + bar["width"] > box["x"] + box["width"] / 2
    await console.shot(page, "manager-targets-he")
    await console.no_serious_axe_violations(page, "targets (he)")
    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", name="هدف در برابر عملکرد").wait_for()
    await console.shot(page, "manager-targets-fa")
    await page.get_by_role("link", name="English").click()
    await page.get_by_role("heading", name="Targets vs actual").wait_for()
    ltr_bar = await page.locator("svg.bars rect.target").first.bounding_box()
    assert ltr_bar["x"] < box["x"] + box["width"] / 2  # left to right: from the left
    await console.shot(page, "manager-targets-en")


async def test_the_rules_editor_shows_the_gateways_refusal_next_to_the_field(
    console: Any, stack: Stack, rules_restored: list[dict[str, Any]]
) -> None:
    page = await console.page()
    await console.sign_in(page, "admin", "/manager/routing-rules")
    team = page.locator("#r0-team_id")
    await team.fill("team-nowhere")
    await page.get_by_role("button", name="שמירה").click()
    error = page.locator("#r0-team_id-err")
    await error.wait_for()
    assert await team.get_attribute("aria-invalid") == "true"
    assert await team.input_value() == "team-nowhere"  # the edit is kept to be corrected
    await console.shot(page, "manager-rules-error-he")
    await console.no_serious_axe_violations(page, "routing rules (he)")
    async with gateway(stack) as api:
        assert (await api.get("/api/v1/routing-rules")).json()["rules"] == rules_restored
    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", name="قواعد مسیریابی").wait_for()
    await console.shot(page, "manager-rules-fa")
