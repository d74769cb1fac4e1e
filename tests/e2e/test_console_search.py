"""Finding a customer from the console's header in a real browser against the whole system: a
service agent types a Persian name as an Arabic keyboard spells it, with a vowel letter too many,
and finds the customer the lead became; then the same customer by a phone number typed the local
way. axe-core on the results; screenshots in Hebrew and Persian."""

from __future__ import annotations

import random
import re
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Consonants only (plus the final ی): a made-up surname no other test's customer has.
CONSONANTS = "بپتجچدرزسشفکگلمن"


async def test_a_service_agent_finds_a_customer_by_another_spelling_and_by_phone(console: Any, stack: Stack) -> None:
    surname = "".join(random.choice(CONSONANTS) for _ in range(5)) + "ی"
    phone = f"05{random.randint(0, 9)}{random.randint(1_000_000, 9_999_999)}"
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        body = {"full_name": f"مریم {surname}", "phone_number": phone, "source": "radio", "locale": "fa-IR"}
        captured = await api.post("/api/v1/leads", json=body)
        assert captured.status_code == 201, captured.text

    # As typed on an Arabic keyboard (ي for ی) and with an alef the name does not have: the same
    # consonants, another spelling.
    misspelt = "مريم " + surname[:2] + "ا" + surname[2:-1] + "ي"
    page = await console.page()
    await console.sign_in(page, "service_agent", "/search")
    box = page.get_by_role("search").get_by_role("searchbox")
    await box.fill(misspelt)
    await box.press("Enter")
    await page.wait_for_url(re.compile(r"/search\?query="))
    row = page.locator("table.search-results tr", has_text=surname)
    # The customer is made from the lead's events: search again until it is there.
    await console.reload_until(page, row)
    assert await row.get_attribute("data-match") == "name_sounds_like"
    assert "כתיב אחר" in await row.inner_text()
    assert await page.locator("html").get_attribute("dir") == "rtl"
    await console.shot(page, "search-he")
    await console.no_serious_axe_violations(page, "search (he)")

    local = f"{phone[:3]}-{phone[3:6]}-{phone[6:]}"
    await page.goto(f"{stack.console_url}/search?query={local}")
    by_phone = page.locator("table.search-results tr[data-match=phone]", has_text=surname)
    await by_phone.wait_for()
    assert await page.locator("table.search-results tbody tr").count() == 1

    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", level=1, name="جستجوی مشتری").wait_for()
    assert "تلفن" in await by_phone.inner_text()
    await console.shot(page, "search-fa")
    await console.no_serious_axe_violations(page, "search (fa)")

    await by_phone.get_by_role("link").click()
    await page.get_by_role("heading", level=1, name=re.compile(surname)).wait_for()
