"""The console's promotion screens in a real browser against the whole system: a marketer
previews an audience of sofa buyers (counts and a masked sample), writes a Hebrew and a Persian
SMS, saves the draft, sends it now and watches it finish; delivery receipts arrive and the page
shows them per text and in total, in Hebrew and in Persian. Each buyer gets exactly one SMS.
axe-core on each screen, screenshots kept.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

from .test_promotions import FA_SMS, HE_SMS, PATIENCE, SOFA, a_buyer, as_typed, sent_to, unique_phone

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def two_sofa_buyers(stack: Stack, api: httpx.AsyncClient, tag: str) -> tuple[str, str]:
    """Maryam (Persian) and Dana (Hebrew) bought a sofa and consented to advertising by SMS; their
    phones, once customers can see the purchases (DealClosed reaches them a moment later)."""
    maryam, dana = unique_phone("+98912"), unique_phone("+97250")
    agent = httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers("service_agent"))
    marketing = httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers("marketing"))
    async with agent, marketing:
        buy = partial(a_buyer, api, agent, tag=tag, items=SOFA, consents=("sms",))
        await buy(name="مریم کاظمی", phone=maryam, locale="fa-IR")
        await buy(name="דנה לוי", phone=dana, locale="he-IL")

        async def both_bought() -> bool | None:
            body = {"channel": "sms", "audience": {"tags": [tag], "products": ["ספה"]}}
            answer = await marketing.post("/api/v1/audience-previews", json=body)
            return True if answer.json().get("reachable") == 2 else None

        await eventually(both_bought, timeout=PATIENCE)
    return maryam, dana


async def test_a_marketer_previews_an_audience_sends_an_sms_and_watches_its_delivery(
    console: Any, stack: Stack, api: httpx.AsyncClient, sms: httpx.AsyncClient
) -> None:
    tag = f"console-promo-{unique_phone('')[-7:]}"
    maryam, dana = await two_sofa_buyers(stack, api, tag)

    page = await console.page()
    await console.sign_in(page, "marketing", "/marketing/promotions")
    await page.get_by_role("link", name="דיוור חדש").click()
    await page.get_by_role("heading", name="דיוור חדש").wait_for()
    await page.get_by_label("שם הדיוור").fill(f"כריות לרוכשי ספות {tag}")
    await page.get_by_label("תגיות").fill(tag)
    await page.get_by_label(re.compile("^מוצרים שנקנו")).fill("ספה")
    await page.get_by_role("button", name="תצוגה מקדימה של הקהל").click()
    await page.locator("[data-count=reachable]").wait_for()
    assert await page.locator("[data-count=matched]").inner_text() == "2"
    assert await page.locator("[data-count=reachable]").inner_text() == "2"
    sample = await page.locator("table.sample tbody").inner_text()
    assert "•" in sample and maryam not in sample and dana not in sample  # who, not how to reach them
    await console.no_serious_axe_violations(page, "new promotion with its preview (he)")
    await console.shot(page, "promotion-new-he")

    await page.locator("#text_he_body").fill(HE_SMS)
    await page.locator("#text_fa_body").fill(FA_SMS)
    await page.get_by_label("מחיר חלק SMS").fill("0.08")
    await page.get_by_role("button", name="שמירה כטיוטה").click()
    await page.wait_for_url(re.compile(r"/marketing/promotions/[^/]+$"))
    assert await page.locator(".promotion-status").inner_text() == "טיוטה"
    # Before sending, the draft shows what it will cost: each language's recipients and SMS parts.
    estimate = page.locator(".promotion-estimate")
    assert await estimate.locator("[data-total] [data-count=reachable]").inner_text() == "2"
    assert await estimate.locator("tr[data-locale=fa-IR] [data-count=recipients]").inner_text() == "1"
    parts = int(await estimate.locator("[data-total] [data-count=sms_parts]").inner_text())
    assert parts >= 2 and "₪" in await estimate.locator("[data-count=cost]").inner_text()
    await console.no_serious_axe_violations(page, "draft promotion with its estimate (he)")
    await console.shot(page, "promotion-draft-estimate-he")
    await page.get_by_role("button", name="תזמון ושליחה").click()  # no time picked: now

    # marketing.js swaps the progress part in while it sends, until it is finished.
    await page.locator(".promotion-progress[data-status=completed]").wait_for(timeout=PATIENCE * 1000)
    total = page.locator("[data-total] [data-count=sent]")
    assert await total.inner_text() == "2"
    # The fake provider's signed receipts come back through the gateway a moment after each send.
    await console.reload_until(page, page.locator("[data-total] [data-count=delivered]", has_text="2"))
    assert await page.locator("[data-total] [data-count=delivery_rate]").inner_text() == "100%"
    assert await page.locator("[data-total] [data-count=sms_parts]").inner_text() == str(parts)  # as estimated
    assert not await page.locator(".promotion-estimate").count()  # sent: the report, not an estimate
    await console.no_serious_axe_violations(page, "promotion (he)")
    await console.shot(page, "promotion-he")

    path = page.url.split(stack.console_url, 1)[1]
    await page.goto(f"{stack.console_url}/lang/fa?next={path}")
    await page.get_by_role("heading", name=re.compile("پیشرفت")).wait_for()
    assert await page.locator("[data-total] [data-count=delivered]").inner_text() == "۲"
    await console.no_serious_axe_violations(page, "promotion (fa)")
    await console.shot(page, "promotion-fa")

    for phone in (maryam, dana):
        assert len(await sent_to(sms, phone)) == 1


async def test_a_marketer_uploads_a_list_reads_its_bad_lines_and_previews_it_as_an_audience(
    console: Any, stack: Stack, api: httpx.AsyncClient, tmp_path: Any
) -> None:
    tag = f"console-list-{unique_phone('')[-7:]}"
    maryam, dana = await two_sofa_buyers(stack, api, tag)
    csv = tmp_path / f"מבקרים-{tag}.csv"
    csv.write_text(f"שם,phone_number\nמרים,{as_typed(maryam)}\nדנה,{as_typed(dana)}\nשגוי,12\n", encoding="utf-8")

    page = await console.page()
    await console.sign_in(page, "marketing", "/marketing/audience-lists")
    await page.get_by_label("שם הרשימה").fill(f"מבקרי התערוכה {tag}")
    await page.get_by_label("קובץ CSV").set_input_files(str(csv))
    await page.get_by_role("button", name="העלאה").click()
    await page.wait_for_url(re.compile(r"/marketing/audience-lists/[^/]+$"))
    assert await page.locator("[data-count=members]").inner_text() == "2"
    assert await page.locator("[data-count=error_count]").inner_text() == "1"
    bad = await page.locator(".row-errors tbody tr td").all_inner_texts()
    assert bad[:2] == ["4", "phone_number"]
    await console.no_serious_axe_violations(page, "audience list (he)")
    await console.shot(page, "audience-list-he")

    await page.get_by_role("link", name="דיוור לרשימה").click()
    await page.get_by_role("heading", name="דיוור חדש").wait_for()
    await page.get_by_role("button", name="תצוגה מקדימה של הקהל").click()
    await page.locator("[data-count=reachable]").wait_for()
    assert await page.locator("[data-count=matched]").inner_text() == "2"
    assert await page.locator("[data-count=reachable]").inner_text() == "2"
