"""The console in a real browser (the distribution's headless Chromium through Playwright) against
the whole system: sign in at the issuer as each role, work a lead to a won deal and a shipped
order in Hebrew, the SMS visible on the order, Persian with Jalali dates, English left to right,
a drag on the pipeline board, and axe-core on every main screen.

Screenshots of the main screens per locale are kept as test artefacts in
``$CRM_TEST_ARTIFACTS`` (default ``.state/test-artifacts/console``).
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_a_rep_works_a_lead_to_a_shipped_order_in_hebrew(console: Any, stack: Stack) -> None:
    name = f"אורית לוי {random.randint(100, 999)}"
    lead = await console.lead_for_dana(name)
    page = await console.page()
    await console.sign_in(page, "sales_rep", "/work")
    assert await page.locator("html").get_attribute("dir") == "rtl"
    assert await page.locator("html").get_attribute("lang") == "he"
    await page.get_by_role("link", name=name).wait_for()
    await console.shot(page, "work-list-he")
    await console.no_serious_axe_violations(page, "work list (he)")

    await page.get_by_role("link", name=name).click()
    await page.get_by_role("heading", name="למה הליד הגיע אליי").wait_for()
    assert await page.locator(f"bdi:has-text('{lead['phone_number']}')").count() == 1  # an isolated LTR run
    await page.get_by_label("נושא").fill("שיחת היכרות")
    await page.get_by_role("button", name="שמירה").click()
    await page.get_by_text("שיחת היכרות").wait_for()
    await console.shot(page, "lead-he")
    await console.no_serious_axe_violations(page, "lead (he)")

    await page.get_by_role("button", name="המרה לעסקה").click()
    await page.wait_for_url(re.compile(r"/deals/"))
    deal_id = page.url.rsplit("/", 1)[1]
    await page.get_by_role("button", name="Qualified").click()
    await page.locator("li[aria-current=step]", has_text="Qualified").wait_for()
    await page.get_by_label("מק״ט").fill("TV-55")
    await page.get_by_label("תיאור").fill("טלוויזיה 55 אינץ׳")
    await page.get_by_label("מחיר ליחידה").fill("3499.90")
    await page.get_by_role("button", name="סגירה בהצלחה").last.click()
    await page.get_by_text("נסגרה בהצלחה").wait_for()
    order_link = page.get_by_role("link", name=re.compile("הזמנה"))
    await console.reload_until(page, order_link)
    await console.shot(page, "deal-won-he")
    await console.no_serious_axe_violations(page, "deal (he)")
    order_path = await order_link.first.get_attribute("href")

    await page.get_by_role("button", name="יציאה").click()
    await page.wait_for_url(re.compile(r"/signed-out$"))
    clerk = await console.page()
    await console.sign_in(clerk, "orders_clerk", order_path)
    await clerk.get_by_label("מספר מעקב").fill("IL123456789")
    await clerk.get_by_role("button", name="משלוח").click()
    await clerk.locator("dd", has_text="נשלחה").wait_for()  # the order's status: shipped
    # The shipment SMS, accepted by the provider, in Hebrew with the delivery date.
    sms = clerk.locator(".timeline li[data-status=sent]", has_text="UPS")
    await console.reload_until(clerk, sms)
    assert "IL123456789" in await sms.inner_text()
    await console.shot(clerk, "order-shipped-he")
    await console.no_serious_axe_violations(clerk, "order (he)")
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        deal = (await api.get(f"/api/v1/deals/{deal_id}")).json()
        assert deal["status"] == "won"


async def test_persian_is_right_to_left_with_jalali_dates_and_english_left_to_right(console: Any, stack: Stack) -> None:
    name = f"زهرا محمدی {random.randint(100, 999)}"
    await console.lead_for_dana(name)
    page = await console.page()
    await console.sign_in(page, "sales_rep", "/work")
    await page.get_by_role("link", name="فارسی").click()
    assert await page.locator("html").get_attribute("dir") == "rtl"
    assert await page.locator("html").get_attribute("lang") == "fa"
    await page.get_by_role("heading", name="فهرست کار من").wait_for()
    row = page.locator("tr", has_text=name)
    # The capture date in the Solar Hijri calendar, in Persian digits (the year is 14xx).
    assert re.search(r"۱۴[۰-۹]{2}", await row.inner_text())
    await console.shot(page, "work-list-fa")
    await console.no_serious_axe_violations(page, "work list (fa)")
    await page.get_by_role("link", name="English").click()
    assert await page.locator("html").get_attribute("dir") == "ltr"
    await page.get_by_role("heading", name="My work list").wait_for()
    await console.shot(page, "work-list-en")
    # 360 px wide: still usable (the table folds into rows).
    narrow = await console.page(width=360)
    await console.sign_in(narrow, "sales_rep", "/work")
    await narrow.get_by_role("link", name=name).wait_for()
    await console.shot(narrow, "work-list-360px")


async def test_a_manager_drags_a_deal_to_another_stage_on_the_board(console: Any, stack: Stack) -> None:
    lead = await console.lead_for_dana(f"נועה מזרחי {random.randint(100, 999)}")
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        deal = (await api.post(f"/api/v1/leads/{lead['id']}/convert", json={})).json()
    page = await console.page(width=1600)
    await console.sign_in(page, "sales_manager", f"/pipelines/{deal['pipeline_id']}/board")
    card = page.locator(f"li.card[data-deal='{deal['id']}']")
    await card.wait_for()
    await console.shot(page, "board-he")
    await console.no_serious_axe_violations(page, "board (he)")
    target = page.locator("section.column", has=page.get_by_role("heading", name=re.compile("Proposal")))
    await card.drag_to(target)
    await target.locator(f"li.card[data-deal='{deal['id']}']").wait_for()
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        for _ in range(20):
            moved = (await api.get(f"/api/v1/deals/{deal['id']}")).json()
            if moved["stage_id"] != deal["stage_id"]:
                break
            await asyncio.sleep(0.25)
    stages = {s["id"]: s["name"] for s in (await _pipeline(stack, deal["pipeline_id"]))["stages"]}
    assert stages[moved["stage_id"]] == "Proposal"
    await page.get_by_role("link", name="فارسی").click()
    await card.wait_for()
    await console.shot(page, "board-fa")


async def _pipeline(stack: Stack, pipeline_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        answer: dict[str, Any] = (await api.get(f"/api/v1/pipelines/{pipeline_id}")).json()
    return answer


async def test_a_rep_builds_a_quote_previews_its_pdf_sends_it_and_the_acceptance_wins_the_deal(
    console: Any, stack: Stack
) -> None:
    lead = await console.lead_for_dana(f"יוסי כהן {random.randint(100, 999)}")
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        sku = f"SOFA-{random.randint(10_000, 99_999)}"
        product = await api.post(
            "/api/v1/products",
            json={
                "sku": sku,
                "names": {"he": "ספה תלת-מושבית", "fa": "مبل سه‌نفره", "en": "Sofa"},
                "unit": "unit",
                "tax_class": "standard",
            },
        )
        assert product.status_code == 201, product.text
        price_list = await api.post(
            "/api/v1/price-lists",
            json={
                "name": f"מחירון ספות {random.randint(100, 999)}",
                "currency_code": "ILS",
                "country_code": "IL",
                "valid_from": "2026-01-01",
                "items": [{"product_id": product.json()["id"], "unit_price": {"amount_minor": 459_000}}],
            },
        )
        assert price_list.status_code == 201, price_list.text
        deal = (await api.post(f"/api/v1/leads/{lead['id']}/convert", json={})).json()
    page = await console.page()
    await console.sign_in(page, "sales_rep", f"/deals/{deal['id']}")
    await page.get_by_label("מחירון").select_option(price_list.json()["id"])
    await page.locator("#product_id_0").select_option(product.json()["id"])
    await page.locator("#quantity_0").fill("2")
    await page.get_by_role("button", name="הצעת מחיר חדשה").click()
    draft = page.locator("tr[data-status=draft]")
    await draft.wait_for()
    # The PDF preview is the gateway's rendering, passed through with the user's session.
    href = await draft.get_by_role("link").get_attribute("href")
    pdf = await page.request.get(f"{stack.console_url}{href}")
    assert pdf.headers["content-type"] == "application/pdf"
    assert (await pdf.body()).startswith(b"%PDF")
    await console.no_serious_axe_violations(page, "deal with a quote (he)")
    await page.get_by_role("button", name="שליחה ללקוח").click()
    await page.locator("tr[data-status=sent]").wait_for()
    await page.get_by_role("button", name="הלקוח אישר").click()
    await page.get_by_text("נסגרה בהצלחה").wait_for()
    await console.reload_until(page, page.get_by_role("link", name=re.compile("הזמנה")))
    await console.shot(page, "deal-quote-accepted-he")
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        won = (await api.get(f"/api/v1/deals/{deal['id']}")).json()
    assert won["status"] == "won"
    assert [(i["sku"], i["quantity"]) for i in won["items"]] == [(sku, 2)]
