"""The console's tasks, customer page and administration screens in a real browser against the
whole system: a rep sees a task due today and marks it done, opens the lead's customer (made from
the lead's events) with its timeline in Hebrew and Persian; an administrator reads the teams with
their reps and the audit log of the lead. axe-core on each screen; screenshots per locale."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm_devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
JERUSALEM = ZoneInfo("Asia/Jerusalem")


def due_later_today() -> str:
    """A due time still ahead and still today in Israel (the company's day for Hebrew): half way
    to local midnight, at most an hour ahead."""
    now = datetime.now(UTC)
    local = now.astimezone(JERUSALEM)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (now + min(timedelta(hours=1), (midnight - local) / 2)).isoformat()


async def test_a_rep_completes_todays_task_and_reads_the_customers_timeline(console: Any, stack: Stack) -> None:
    suffix = random.randint(1000, 9999)
    name, subject = f"מיכל אברהם {suffix}", f"להתקשר בחזרה {suffix}"
    late, later = f"לשלוח הצעה {suffix}", f"פגישת המשך {suffix}"
    now = datetime.now(UTC)
    due = {subject: due_later_today(), late: (now - timedelta(hours=3)).isoformat()}
    lead = await console.lead_for_dana(name, due | {later: (now + timedelta(days=3)).isoformat()})
    page = await console.page()
    await console.sign_in(page, "sales_rep", "/tasks")
    # Overdue first, then today's, then later ones.
    sections = page.locator("section.task-group")
    await sections.first.wait_for()
    order = [await s.get_attribute("class") for s in await sections.all()]
    assert order == ["task-group tasks_overdue", "task-group tasks_today", "task-group tasks_later"], order
    assert await page.locator("section.tasks_overdue tr", has_text=late).count() == 1
    assert await page.locator("section.tasks_later tr", has_text=later).count() == 1
    today = page.locator("section.tasks_today")
    await today.get_by_role("heading", name=re.compile("להיום")).wait_for()
    row = today.locator("tr", has_text=subject)
    await row.wait_for()
    await console.shot(page, "tasks-he")
    await console.no_serious_axe_violations(page, "tasks (he)")
    await row.get_by_role("button", name=re.compile("בוצע")).click()
    await page.wait_for_url(re.compile(r"/tasks$"))
    assert await page.locator("tr", has_text=subject).count() == 0
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=stack.auth_headers("sales_rep"), timeout=15
    ) as mine:
        still_open = (await mine.get("/api/v1/tasks", params={"page_size": 100})).json()["tasks"]
    assert subject not in {t["subject"] for t in still_open}

    # The customer is made from the lead's events: the page says so until it is there.
    await page.goto(f"{stack.console_url}/leads/{lead['id']}/customer")
    heading = page.get_by_role("heading", level=1, name=re.compile(re.escape(name)))
    await console.reload_until(page, heading)
    assert re.search(r"/customers/[^/]+$", page.url)
    assert await page.locator(f"bdi[dir=ltr]:has-text('{lead['phone_number']}')").count() == 1
    await console.reload_until(page, page.locator(".customer-timeline li[data-kind=task_logged]"))
    captured = page.locator(".customer-timeline li[data-kind=lead_captured]")
    assert "ליד נקלט" in await captured.inner_text()
    await console.shot(page, "customer-he")
    await console.no_serious_axe_violations(page, "customer (he)")

    await page.get_by_role("link", name="فارسی").click()
    assert await page.locator("html").get_attribute("dir") == "rtl"
    await page.get_by_role("heading", name="خط زمانی").wait_for()
    # The capture time in the Solar Hijri calendar and Persian digits (the year is 14xx).
    assert re.search(r"۱۴[۰-۹]{2}", await captured.inner_text())
    assert "سرنخ ثبت شد" in await captured.inner_text()
    await console.shot(page, "customer-fa")
    await console.no_serious_axe_violations(page, "customer (fa)")
    await page.goto(f"{stack.console_url}/tasks")
    await page.get_by_role("heading", name=re.compile("عقب‌افتاده")).wait_for()
    await page.locator("section.tasks_later tr", has_text=later).wait_for()
    await console.shot(page, "tasks-fa")
    await console.no_serious_axe_violations(page, "tasks (fa)")


async def test_an_admin_reads_teams_with_reps_and_the_audit_log(console: Any, stack: Stack) -> None:
    lead = await console.lead_for_dana(f"רון שלום {random.randint(1000, 9999)}")
    page = await console.page()
    await console.sign_in(page, "admin", "/admin/teams")
    await page.get_by_role("heading", level=1, name="צוותים ונציגים").wait_for()
    await page.locator("tr[data-rep=rep-dana]").wait_for()
    assert await console.menu_link(page, "יומן ביקורת").count() == 1  # the admin's menu
    await console.shot(page, "teams-he")
    await console.no_serious_axe_violations(page, "teams (he)")

    await console.menu(page, "יומן ביקורת")
    await page.get_by_label("מזהה רשומה").fill(lead["id"])
    await page.get_by_role("button", name="סינון").click()
    await page.wait_for_url(re.compile(rf"record_id={lead['id']}"))
    rows = page.locator("table.audit tbody tr")
    await rows.first.wait_for()
    assert await rows.count() >= 1
    for text in await rows.all_inner_texts():
        assert lead["id"] in text
    await console.shot(page, "audit-he")
    await console.no_serious_axe_violations(page, "audit (he)")

    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", level=1, name="گزارش ممیزی").wait_for()
    await console.shot(page, "audit-fa")
    await page.goto(f"{stack.console_url}/admin/teams")
    await page.locator("tr[data-rep=rep-dana]").wait_for()
    await console.shot(page, "teams-fa")
    await console.no_serious_axe_violations(page, "teams (fa)")

    # A rep has neither screen in the menu, and the gateway refuses the audit log to them.
    rep = await console.page()
    await console.sign_in(rep, "sales_rep", "/admin/audit")
    assert await console.menu_link(rep, "יומן ביקורת").count() == 0
    await rep.get_by_text("אין לך הרשאה לזה.").wait_for()
