"""The customer page's profile edit and consent forms, against a fake gateway."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from crm_console.i18n import Translator
from crm_console.pages_customer import timeline_line

from .conftest import CSRF, RecordingGateway, as_role

pytestmark = pytest.mark.unit

DANA = {
    "id": "c1",
    "full_name": "דנה כהן",
    "phone_number": "+972501234567",
    "email": "dana@example.com",
    "locale": "he-IL",
    "lead_ids": ["lead-1"],
    "create_time": "2026-12-06T08:00:00Z",
    "etag": '"3"',
}


RUG_OFFERED = {
    "id": "o1",
    "customer_id": "c1",
    "sku": "RUG-2",
    "response": "declined",
    "offer_time": "2026-12-02T10:00:00Z",
    "user_id": "agent-yosef",
    "antecedent_sku": "SOFA-3",
    "confidence": 0.31,
}
SUGGESTIONS = {
    "customer_id": "c1",
    "status": "suggested",
    "suggestions": [
        {
            "sku": "RUG-2",
            "name": "<b>שטיח</b>",
            "because_sku": "SOFA-3",
            "because_name": "ספה",
            "because_bought_time": "2026-09-01T10:00:00Z",
            "confidence": 0.3125,
            "lift": 2.4,
            "support": 0.05,
            "buyers_of_both": 10,
            "buyers_of_because": 32,
            "last_offer": RUG_OFFERED,
        }
    ],
    "model": {"train_time": None, "buyers": 200, "needed_buyers": 20, "rules": 4, "min_buyers_of_both": 5},
}


class FakeGateway(RecordingGateway):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/customers/c1" and request.method == "GET":
            return httpx.Response(200, json=DANA)
        if path == "/api/v1/customers/c1" and request.method == "PATCH":
            return httpx.Response(200, json={**DANA, **json.loads(request.content)})
        if path == "/api/v1/customers/c1/timeline":
            return httpx.Response(200, json={"entries": [], "next_page_token": ""})
        if path == "/api/v1/customers/c1/suggestions":
            return httpx.Response(200, json=SUGGESTIONS)
        if path == "/api/v1/customers/c1/value":
            return httpx.Response(200, json=VALUE)
        if path == "/api/v1/customers/c1/suggestions/offers":
            return httpx.Response(201, json={})
        if path == "/api/v1/customers/c1/touches":
            return httpx.Response(201, json={"id": "9", "kind": "call_logged", "summary": "", "channel": "phone"})
        if path == "/api/v1/customers/c1/consents" and request.method == "POST":
            return httpx.Response(201, json={"record": {}, "states": []})
        if path == "/api/v1/customers/c1/consents":
            marketing_sms = {
                "channel": "sms",
                "purpose": "marketing",
                "granted": True,
                "record_id": 7,
                "since": "2026-12-01T10:00:00Z",
            }
            record = {
                "id": 7,
                "customer_id": "c1",
                "channel": "sms",
                "purpose": "marketing",
                "granted": True,
                "source": "web_form",
                "evidence": "signup-v3",
                "actor": "agent-yosef",
                "occur_time": "2026-12-01T10:00:00Z",
                "record_time": "2026-12-01T10:00:01Z",
            }
            return httpx.Response(200, json={"records": [record], "states": [marketing_sms]})
        return httpx.Response(404, json={"title": "Not Found"})


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


def problem(status: int, errors: list[dict[str, str]]) -> httpx.Response:
    body = {"status": status, "title": "refused", "detail": "refused", "errors": errors}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


VALUE = {
    "value": {
        "customer_id": "c1",
        "status": "scored",
        "recency": 5,
        "frequency": 4,
        "monetary": 5,
        "segment": "champions",
        "recency_days": 3,
        "purchases": 4,
        "lifetime_value": {"amount_minor": 1840000, "currency_code": "ILS"},
        "yearly_value": {"amount_minor": 920000, "currency_code": "ILS"},
        "first_purchase_time": "2024-12-01T10:00:00Z",
        "last_purchase_time": "2026-12-04T10:00:00Z",
    },
    "buyers": 240,
}


async def test_the_page_shows_the_customers_value_and_segment(browser: httpx.AsyncClient) -> None:
    as_role(browser, "service_agent", locale="en")
    page = await browser.get("/customers/c1")
    assert 'data-segment="champions"' in page.text and "Champions" in page.text
    assert "18,400" in page.text and "Recency 5, frequency 4, spend 5 (of 5, against 240 buyers)" in page.text


async def test_the_page_shows_consent_in_force_and_its_history(browser: httpx.AsyncClient) -> None:
    as_role(browser, "service_agent", locale="en")
    page = await browser.get("/customers/c1")
    assert page.status_code == 200
    assert 'data-channel="sms" data-purpose="marketing" data-granted="yes"' in page.text
    assert "signup-v3" in page.text and "Web form" in page.text and "agent-yosef" in page.text


async def test_a_profile_edit_sends_only_what_changed_on_the_version_read(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "service_agent")
    original = json.dumps({k: DANA[k] for k in ("full_name", "phone_number", "email", "locale")})
    form = {"csrf": CSRF, "etag": '"3"', "original": original, **{k: DANA[k] for k in ("full_name", "locale")}}
    sent = {**form, "phone_number": "054-111-2222", "email": DANA["email"]}
    done = await browser.post("/customers/c1/profile", data=sent)
    assert done.status_code == 303 and done.headers["location"] == "/customers/c1#profile"
    [patch] = fake.writes()
    assert patch.headers["If-Match"] == '"3"'
    assert json.loads(patch.content) == {"phone_number": "054-111-2222"}


async def test_a_refused_edit_keeps_the_input_and_says_why(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "service_agent", locale="en")
    fake.refusal = problem(422, [{"field": "phone_number", "detail": "not a valid number"}])
    form = {"csrf": CSRF, "etag": '"3"', "original": "{}", "full_name": "Dana", "phone_number": "123", "email": ""}
    refused = await browser.post("/customers/c1/profile", data={**form, "locale": "he-IL"})
    assert refused.status_code == 422
    assert 'id="phone_number-err"' in refused.text and "not a valid number" in refused.text
    assert 'value="123"' in refused.text
    fake.refusal = problem(412, [])
    stale = await browser.post("/customers/c1/profile", data={**form, "locale": "he-IL"})
    assert stale.status_code == 412 and "reload" in stale.text.lower()


async def test_a_consent_is_posted_as_given_and_a_refusal_lands_on_its_field(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "service_agent", locale="en")
    form = {"csrf": CSRF, "channel": "email", "purpose": "marketing", "source": "recorded_call", "evidence": "rec-1"}
    done = await browser.post("/customers/c1/consents", data={**form, "granted": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/customers/c1#consents"
    body = json.loads(fake.writes()[0].content)
    assert body == {**{k: form[k] for k in ("channel", "purpose", "source", "evidence")}, "granted": True}
    fake.refusal = problem(422, [{"field": "evidence", "detail": "needs evidence"}])
    refused = await browser.post("/customers/c1/consents", data={**form, "evidence": "", "granted": "yes"})
    assert refused.status_code == 422
    assert 'id="evidence-err"' in refused.text and "needs evidence" in refused.text


@pytest.mark.parametrize(
    ("entry", "locale", "line"),
    [
        (
            {"kind": "lead_captured", "facts": {"source": "radio", "campaign": "חורף"}},
            "he",
            "מקור: radio · קמפיין: חורף",
        ),
        ({"kind": "lead_captured", "facts": {"source": "tv", "again": "yes"}}, "en", "Came in again · Source: tv"),
        ({"kind": "deal_stage_changed", "facts": {"stage": "Proposal"}}, "fa", "به مرحله‌ی Proposal"),
        (
            {
                "kind": "call_logged",
                "facts": {"outcome": "no_answer", "duration_seconds": "95", "who": "Dana", "text": "later"},
            },
            "en",
            "No answer · 2 min · by Dana: later",
        ),
        (
            {
                "kind": "consent_changed",
                "facts": {"channel": "sms", "purpose": "marketing", "granted": "no", "source": "reply"},
            },
            "en",
            "SMS · Marketing: No (Reply to a message)",
        ),
        (
            {
                "kind": "risk_changed",
                "facts": {
                    "band": "high",
                    "previous_band": "medium",
                    "risk_percent": "73",
                    "reasons": "no_purchase:130,complaints:2",
                },
            },
            "en",
            "medium → high (73%) · No purchase for 130 days · 2 recent complaints",
        ),
        (
            {"kind": "risk_changed", "facts": {"band": "medium", "risk_percent": "41", "reasons": "opted_out:1"}},
            "fa",
            "نخستین سنجش ← متوسط (۴۱%) · رضایت تبلیغات را لغو کرد",
        ),
        # Recorded before facts were kept: the English summary.
        ({"kind": "deal_won", "summary": "Deal won: 4,699.00 ILS", "facts": {}}, "fa", "Deal won: 4,699.00 ILS"),
    ],
)
def test_a_timeline_entry_reads_in_the_readers_language(entry: dict[str, Any], locale: str, line: str) -> None:
    assert timeline_line(Translator(locale), entry) == line


def test_money_and_dates_in_a_timeline_line_follow_the_locale() -> None:
    won = {"kind": "deal_won", "facts": {"amount_minor": "469900", "currency_code": "ILS"}}
    assert timeline_line(Translator("en"), won) == Translator("en").money(
        {"amount_minor": 469900, "currency_code": "ILS"}
    )
    shipped = {"kind": "order_shipped", "facts": {"carrier": "UPS", "delivery_date": "2026-12-09"}}
    assert "۱۸ آذر ۱۴۰۵" in timeline_line(Translator("fa"), shipped)


async def test_the_timeline_filter_asks_for_the_departments_kinds(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "service_agent", locale="en")
    page = await browser.get("/customers/c1", params=[("dept", "orders"), ("dept", "consent"), ("dept", "nonsense")])
    assert page.status_code == 200
    [asked] = [c for c in fake.calls if c.url.path.endswith("/timeline")]
    assert asked.url.params.get_list("kind") == ["order_shipped", "consent_changed"]
    assert 'name="dept" value="orders" checked' in page.text and 'value="sales" checked' not in page.text


async def test_a_touch_is_logged_in_seconds_and_bad_minutes_stay_on_the_form(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "service_agent", locale="fa")
    form = {"csrf": CSRF, "kind": "call", "text": "پیگیری سفارش", "outcome": "answered", "request_id": "r1"}
    done = await browser.post("/customers/c1/touches", data={**form, "minutes": "۳"})
    assert done.status_code == 303 and done.headers["location"] == "/customers/c1#timeline"
    body = json.loads(fake.writes()[0].content)
    assert body == {
        "kind": "call",
        "text": "پیگیری سفارش",
        "outcome": "answered",
        "request_id": "r1",
        "duration_seconds": 180,
    }
    refused = await browser.post("/customers/c1/touches", data={**form, "minutes": "سه"})
    assert refused.status_code == 422 and 'id="duration_seconds-err"' in refused.text
    assert len(fake.writes()) == 1


async def test_suggestions_show_their_reason_and_the_last_answer(browser: httpx.AsyncClient) -> None:
    as_role(browser, "service_agent", locale="en")
    page = await browser.get("/customers/c1")
    assert 'data-sku="RUG-2" data-percent="31"' in page.text
    assert "Bought ספה on 1 Sep 2026; 31% of its 32 buyers also bought this" in page.text
    assert 'data-response="declined"' in page.text and "Offered 2 Dec 2026: not interested" in page.text
    # A product's name comes from a deal's line: text, never markup.
    assert "<b>שטיח</b>" not in page.text and "&lt;b&gt;שטיח&lt;/b&gt;" in page.text


async def test_an_answer_is_posted_and_a_refusal_says_why(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "service_agent", locale="en")
    form = {"csrf": CSRF, "sku": "RUG-2", "response": "accepted", "request_id": "r-1"}
    done = await browser.post("/customers/c1/suggestions/offers", data=form)
    assert done.status_code == 303 and done.headers["location"] == "/customers/c1#suggestions"
    [offer] = fake.writes()
    assert json.loads(offer.content) == {"sku": "RUG-2", "response": "accepted", "request_id": "r-1"}
    fake.refusal = problem(422, [{"field": "response", "detail": "must be accepted or declined"}])
    refused = await browser.post("/customers/c1/suggestions/offers", data={**form, "response": "maybe"})
    assert refused.status_code == 422 and "must be accepted or declined" in refused.text
