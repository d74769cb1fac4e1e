"""The customer page in a real browser against the whole system: a service agent corrects the
phone number on the version read, records a consent to SMS advertising with its evidence, and then
the customer's "remove me"; the page shows the state in force and the history, and the gateway
agrees. axe-core on the page; screenshots in Hebrew and Persian."""

from __future__ import annotations

import random
import re
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def record_sms_marketing(page: Any, choice: str, source: str, evidence: str = "") -> None:
    """Fill and send the consent form for SMS advertising (the Hebrew labels), back on the page."""
    consents = page.locator("#consents")
    await consents.get_by_label("ערוץ").select_option("sms")
    await consents.get_by_label("מטרה").select_option("marketing")
    await consents.get_by_label(choice).check()
    await consents.get_by_label("איך ניתנה").select_option(source)
    await consents.get_by_label("אסמכתה").fill(evidence)
    await consents.get_by_role("button", name="תיעוד הסכמה").click()
    await page.wait_for_url(re.compile(r"#consents$"))


async def test_an_agent_edits_the_profile_and_records_consent_given_then_withdrawn(console: Any, stack: Stack) -> None:
    name = f"אורנה דגן {random.randint(1000, 9999)}"
    lead = await console.lead_for_dana(name)
    new_phone = f"054-{random.randint(100, 999)}-{random.randint(1000, 9999)}"

    page = await console.page()
    await console.sign_in(page, "service_agent", f"/leads/{lead['id']}/customer")
    heading = page.get_by_role("heading", level=1, name=re.compile(re.escape(name)))
    await console.reload_until(page, heading)
    customer_url = page.url

    await page.locator("#profile summary").click()
    await page.get_by_label("טלפון", exact=True).fill(new_phone)
    await page.locator("#profile").get_by_role("button", name="שמירה").click()
    await page.wait_for_url(re.compile(r"/customers/[^/#]+#profile$"))
    digits = "+972" + new_phone.replace("-", "")[1:]
    assert await page.locator(f"dd bdi:has-text('{digits}')").count() == 1

    await record_sms_marketing(page, "נתן הסכמה", "recorded_call", "rec-2026-12-06-001")
    sms_marketing = page.locator("tr[data-channel=sms][data-purpose=marketing]")
    assert await sms_marketing.get_attribute("data-granted") == "yes"
    await record_sms_marketing(page, "ביטל הסכמה", "reply")
    assert await sms_marketing.get_attribute("data-granted") == "no"
    assert await page.locator("table.consent-history tbody tr").count() == 2
    # The timeline filtered to one department: the consent entries only.
    await page.locator(".timeline-filter").get_by_label("הסכמות").check()
    await page.locator(".timeline-filter").get_by_role("button").click()
    await page.wait_for_url(re.compile(r"dept=consent"))
    kinds = await page.locator(".customer-timeline li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds == ["consent_changed", "consent_changed"]
    await console.shot(page, "customer-consent-he")
    await console.no_serious_axe_violations(page, "customer with consent (he)")

    customer_id = customer_url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=stack.auth_headers("service_agent"), timeout=15
    ) as api:
        found = (await api.get(f"/api/v1/customers/{customer_id}/consents")).json()
    [state] = [s for s in found["states"] if (s["channel"], s["purpose"]) == ("sms", "marketing")]
    assert state["granted"] is False
    assert [(r["granted"], r["source"]) for r in found["records"]] == [(False, "reply"), (True, "recorded_call")]

    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", level=2, name="رضایت‌ها").wait_for()
    await page.goto(customer_url)  # Persian now, the whole timeline
    # The timeline reads in Persian from each entry's facts, not the English summary.
    consent_lines = page.locator(".customer-timeline li[data-kind=consent_changed] .summary")
    # Timeline items off screen are not rendered (content-visibility: auto), and innerText is empty
    # for them: read the text the page holds.
    assert (await consent_lines.last.text_content() or "").strip() == "پیامک · تبلیغات: مخالف (پاسخ به پیام)"
    captured = page.locator(".customer-timeline li[data-kind=lead_captured]")
    assert "منبع: website" in (await captured.text_content() or "")
    await console.shot(page, "customer-consent-fa")
    await console.no_serious_axe_violations(page, "customer with consent (fa)")
