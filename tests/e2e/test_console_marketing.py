"""The console's marketing screens in a real browser against the whole system: a marketer uploads
a Hebrew and Persian lead list with one bad phone number, watches the import reach its end and
reads the bad line's error; then the reports with their charts and a new web form key with the
snippet to paste. Hebrew first, then Persian; axe-core on each screen, screenshots kept.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def israeli_phone() -> str:
    return f"05{random.randint(0, 4)}-{random.randint(1_000_000, 9_999_999)}"


def iranian_phone() -> str:
    return f"0912 {random.randint(100, 999)} {random.randint(1000, 9999)}"


async def test_a_marketer_imports_a_list_watches_it_finish_and_reads_the_bad_line(
    console: Any, stack: Stack, tmp_path: Path
) -> None:
    suffix = random.randint(100, 999)
    rows = [
        "full_name,phone_number,city,locale",
        f"שירה כהן {suffix},{israeli_phone()},תל אביב,he-IL",
        f"מרים לוי {suffix},{israeli_phone()},חיפה,he-IL",
        f"سارا محمدی {suffix},{iranian_phone()},تهران,fa-IR",
        f"טלפון שגוי {suffix},12,ירושלים,he-IL",
    ]
    csv = tmp_path / f"רשימה-{suffix}.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")

    page = await console.page()
    await console.sign_in(page, "marketing", "/marketing/imports")
    assert await page.locator("html").get_attribute("dir") == "rtl"
    await page.get_by_role("heading", name="העלאת קובץ לידים (CSV)").wait_for()
    await console.no_serious_axe_violations(page, "imports (he)")
    await page.get_by_label("קובץ CSV").set_input_files(str(csv))
    await page.get_by_label("מקור").select_option("radio")
    await page.get_by_label("לייבא את התקינות ולדווח על השגויות").check()
    await page.get_by_role("button", name="ייבוא").click()
    await page.wait_for_url(re.compile(r"/marketing/imports/[^/]+$"))

    # marketing.js swaps the progress part in every second until the import is finished.
    finished = page.locator("[data-import-progress] [data-finished]")
    await finished.wait_for(timeout=60_000)
    assert await page.locator(".import-status").inner_text() == "הושלם"
    bar = page.locator("#import-bar")
    assert await bar.get_attribute("value") == await bar.get_attribute("max")
    assert await page.locator("[data-count=rows_read]").inner_text() == "4"
    assert await page.locator("[data-count=rows_imported]").inner_text() == "3"
    assert await page.locator("[data-count=error_count]").inner_text() == "1"
    error_row = page.locator(".row-errors tbody tr")
    assert await error_row.count() == 1
    cells = await error_row.locator("td").all_inner_texts()
    assert cells[0] == "5" and cells[1] == "phone_number"  # the bad row is the file's fifth line
    await console.shot(page, "marketing-import-he")
    await console.no_serious_axe_violations(page, "import (he)")

    await page.goto(f"{stack.console_url}/lang/fa?next={page.url.split(stack.console_url, 1)[1]}")
    await page.get_by_role("heading", name=re.compile("پیشرفت")).wait_for()
    assert await page.locator("[data-count=rows_imported]").inner_text() == "۳"
    await console.shot(page, "marketing-import-fa")
    await console.no_serious_axe_violations(page, "import (fa)")

    await page.goto(f"{stack.console_url}/marketing/imports")
    await page.get_by_role("link", name=csv.name).wait_for()


async def test_reports_chart_right_to_left_and_a_new_form_key_shows_its_snippet(console: Any, stack: Stack) -> None:
    # A campaign with its cost and a lead of it: the reports fill once reporting has read the events.
    name = f"אביב {random.randint(1000, 9999)}"
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as api:
        campaign = await api.post(
            "/api/v1/campaigns",
            headers=stack.auth_headers("marketing"),
            json={"source": "radio", "name": name, "actual_cost": {"amount_minor": 1_250_000, "currency_code": "ILS"}},
        )
        assert campaign.status_code == 201, campaign.text
        lead = {"full_name": "דנה", "phone_number": israeli_phone(), "source": "radio", "campaign": name}
        captured = await api.post("/api/v1/leads", headers=stack.auth_headers(), json=lead)
        assert captured.status_code == 201, captured.text
    page = await console.page()
    await console.sign_in(page, "marketing", "/marketing/reports")
    await console.reload_until(page, page.locator("svg.bar-chart text", has_text=name))
    for chart in await page.locator("svg.bar-chart").all():
        # Right to left: every bar ends at the same right edge (beside its label) and grows leftwards.
        box = await chart.bounding_box()
        bar = await chart.locator("rect").first.bounding_box()
        assert bar is not None and box is not None
        assert abs((bar["x"] + bar["width"]) - (box["x"] + box["width"] - 180)) < 2
    assert await page.get_by_role("cell", name="‏12,500.00 ₪").count() or await page.get_by_text("12,500").count()
    await console.shot(page, "marketing-reports-he")
    await console.no_serious_axe_violations(page, "reports (he)")

    await page.goto(f"{stack.console_url}/marketing/web-forms")
    name = f"טופס יצירת קשר {random.randint(100, 999)}"
    await page.get_by_label("שם הטופס").fill(name)
    await page.get_by_label("מקור", exact=True).select_option("website")
    await page.get_by_role("button", name="יצירת מפתח").click()
    snippet = page.locator(".created-key pre.snippet code")
    await snippet.wait_for()
    text = await snippet.inner_text()
    assert 'action="http' in text and '/api/v1/public/web-form-submissions"' in text
    assert 'name="key" value="' in text and "…" not in text.split('name="key"')[1].split(">")[0]
    assert await page.locator(".created-key pre.snippet").get_attribute("dir") == "ltr"
    await console.shot(page, "marketing-web-forms-he")
    await console.no_serious_axe_violations(page, "web forms (he)")

    await page.goto(f"{stack.console_url}/lang/fa?next=/marketing/reports")
    await page.get_by_role("heading", name="سرنخ‌ها به تفکیک منبع").wait_for()
    await console.shot(page, "marketing-reports-fa")
    await console.no_serious_axe_violations(page, "reports (fa)")


async def test_a_marketer_creates_a_campaign_and_edits_its_budget(console: Any, stack: Stack) -> None:
    name = f"מבצע סתיו {random.randint(1000, 9999)}"
    page = await console.page()
    await console.sign_in(page, "marketing", "/marketing/campaigns")
    await page.get_by_role("link", name="קמפיין חדש").click()
    await page.get_by_role("heading", level=1, name="קמפיין חדש").wait_for()
    await page.get_by_label("מקור", exact=True).select_option("radio")
    await page.get_by_label("שם הקמפיין").fill(name)
    await page.get_by_label("תאריך התחלה").fill("2026-09-01")
    await page.get_by_label("תאריך סיום").fill("2026-10-31")
    await page.locator("#budget_amount").fill("10,000")
    await page.locator("#budget_currency").select_option("ILS")
    await console.shot(page, "campaign-new-he")
    await console.no_serious_axe_violations(page, "new campaign (he)")
    await page.get_by_role("button", name="שמירה").click()
    await page.wait_for_url(re.compile(r"/marketing/campaigns#campaign-"))
    row = page.locator("tr[data-campaign]", has_text=name)
    await row.wait_for()
    assert "10,000.00" in await row.inner_text()

    await row.get_by_role("link", name=re.compile("עריכה")).click()
    await page.get_by_role("heading", level=1, name=re.compile(re.escape(name))).wait_for()
    assert await page.locator("#budget_amount").input_value() == "10000"
    # A budget that does not read as money is refused by the console before the gateway.
    await page.locator("#budget_amount").fill("12.345")
    await page.get_by_role("button", name="שמירה").click()
    await page.locator("#budget-err").wait_for()
    assert await page.locator("#budget_amount").get_attribute("aria-invalid") == "true"
    await console.no_serious_axe_violations(page, "campaign refused (he)")
    await page.locator("#budget_amount").fill("12,500.50")
    await page.get_by_role("button", name="שמירה").click()
    await page.wait_for_url(re.compile(r"/marketing/campaigns#campaign-"))
    await row.wait_for()
    assert "12,500.50" in await row.inner_text()
    campaign_id = await row.get_attribute("data-campaign")
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=stack.auth_headers("marketing"), timeout=15
    ) as api:
        saved = (await api.get(f"/api/v1/campaigns/{campaign_id}")).json()
    assert saved["budget"] == {"amount_minor": 1_250_050, "currency_code": "ILS"}
    assert saved["name"] == name and saved["starts_on"] == "2026-09-01" and saved["ends_on"] == "2026-10-31"
    await console.shot(page, "campaigns-he")
    await console.no_serious_axe_violations(page, "campaigns (he)")

    await page.goto(f"{stack.console_url}/lang/fa?next=/marketing/campaigns/{campaign_id}/edit")
    await page.get_by_role("heading", level=1, name=re.compile("ویرایش کمپین")).wait_for()
    await console.shot(page, "campaign-edit-fa")
    await console.no_serious_axe_violations(page, "campaign edit (fa)")
    await page.goto(f"{stack.console_url}/marketing/campaigns")
    await page.locator("tr[data-campaign]", has_text=name).wait_for()
    await console.shot(page, "campaigns-fa")
