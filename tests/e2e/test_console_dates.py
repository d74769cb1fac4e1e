"""Dates in the user's calendar, in a real browser against the whole system: a Persian rep sets a
task's due day in the Solar Hijri calendar and its time, and the gateway holds that moment in
Tehran; on Hebrew pages every date also shows its Hebrew-calendar date. axe-core on both."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jdatetime
import pytest

from crm_devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
TEHRAN = ZoneInfo("Asia/Tehran")
HEBREW_MONTHS = re.compile(r"תשרי|חשוון|כסלו|טבת|שבט|אדר|ניסן|אייר|סיוון|תמוז|אב|אלול")


async def test_a_persian_rep_sets_a_due_day_in_the_jalali_calendar(console: Any, stack: Stack) -> None:
    lead = await console.lead_for_dana(f"نیما کاظمی {random.randint(1000, 9999)}")
    due = (datetime.now(TEHRAN) + timedelta(days=9)).date()
    jalali = jdatetime.date.fromgregorian(date=due)
    subject = f"تماس پیگیری {random.randint(1000, 9999)}"

    page = await console.page()
    await console.sign_in(page, "sales_rep", f"/leads/{lead['id']}")
    await page.get_by_role("link", name="فارسی").click()
    await page.locator("#kind").select_option("task")
    await page.locator("#subject").fill(subject)
    await page.locator("#due_time__jd").select_option(str(jalali.day))
    await page.locator("#due_time__jm").select_option(str(jalali.month))
    await page.locator("#due_time__jy").select_option(str(jalali.year))
    await page.locator("#due_time__time").fill("10:30")
    await console.shot(page, "lead-task-jalali-fa")
    await console.no_serious_axe_violations(page, "lead with the Jalali due day (fa)")
    await page.get_by_role("button", name="ذخیره").click()
    await page.wait_for_url(re.compile(rf"/leads/{lead['id']}$"))

    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=stack.auth_headers("sales_rep"), timeout=15
    ) as api:
        tasks = (await api.get("/api/v1/tasks", params={"page_size": 100})).json()["tasks"]
    [task] = [t for t in tasks if t["subject"] == subject]
    assert datetime.fromisoformat(task["due_time"]).astimezone(TEHRAN).replace(tzinfo=None) == datetime(
        due.year, due.month, due.day, 10, 30
    )

    # Hebrew: the Gregorian dates, each with its Hebrew-calendar date beside it.
    await page.get_by_role("link", name="עברית").click()
    label = page.locator("time[datetime] + .hebrew-date").first
    await label.wait_for()
    assert HEBREW_MONTHS.search(await label.inner_text())
    await console.shot(page, "lead-hebrew-dates-he")
    await console.no_serious_axe_violations(page, "lead with Hebrew dates (he)")
