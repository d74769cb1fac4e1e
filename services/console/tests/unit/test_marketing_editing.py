"""Creating and editing campaigns: money typed as text (Persian digits, thousands marks) to minor
units, only the changed fields in the PATCH, and the pages against a recording fake of the gateway."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.datastructures import FormData

from crm_console.forms import changed_fields, money_text, parse_money
from crm_console.pages_marketing import campaign_input, campaign_values

from .conftest import CSRF, RecordingGateway, as_role, hidden

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("typed", "minor"),
    [
        ("12,500.50", 1_250_050),
        ("12500.5", 1_250_050),
        ("۱۲٬۵۰۰٫۵۰", 1_250_050),  # Persian digits, thousands and decimal marks
        ("0", 0),
        (" 7 ", 700),
        ("1,000,000", 100_000_000),
    ],
)
def test_an_amount_becomes_integer_minor_units(typed: str, minor: int) -> None:
    assert parse_money(typed, "ILS") == {"amount_minor": minor, "currency_code": "ILS"}


@pytest.mark.parametrize("typed", ["-5", "1.234", "12,50", "abc", "1e3", "1..2"])
def test_an_unreadable_amount_is_refused_before_the_gateway(typed: str) -> None:
    with pytest.raises(ValueError):
        parse_money(typed, "ILS")


def test_no_amount_is_no_money_and_only_offered_currencies_pass() -> None:
    assert parse_money("", "ILS") is None
    with pytest.raises(ValueError):
        parse_money("5", "GBP")
    assert money_text({"amount_minor": 1_250_050, "currency_code": "ILS"}) == "12500.50"
    assert money_text({"amount_minor": 500_000, "currency_code": "IRR"}) == "5000"
    assert money_text(None) == ""


def test_an_edited_budget_is_the_only_field_sent_and_empty_dates_clear() -> None:
    record = {
        "id": "c1",
        "source": "radio",
        "name": "חורף",
        "starts_on": "2026-01-01",
        "ends_on": None,
        "budget": {"amount_minor": 100_000, "currency_code": "ILS"},
        "actual_cost": None,
    }
    form = FormData(
        [
            ("name", "חורף"),
            ("starts_on", "2026-01-01"),
            ("ends_on", ""),
            ("budget_amount", "2,000"),
            ("budget_currency", "ILS"),
            ("actual_cost_amount", ""),
            ("actual_cost_currency", "ILS"),
        ]
    )
    values, typed, problems = campaign_input(form)
    assert problems == {} and typed["budget"] == "2,000"
    assert changed_fields(values, campaign_values(record)) == {
        "budget": {"amount_minor": 200_000, "currency_code": "ILS"}
    }
    cleared = campaign_input(FormData([("name", "חורף"), ("starts_on", "")]))[0]
    assert changed_fields(cleared, campaign_values(record)) == {
        "starts_on": None,
        "budget": None,
    }
    assert campaign_input(FormData([("budget_amount", "x"), ("budget_currency", "ILS")]))[2] == {
        "budget": "mkt_bad_amount"
    }


# ------------------------------------------------------------------ the pages against a fake gateway

CAMPAIGN = {
    "id": "c1",
    "source": "radio",
    "name": "חורף",
    "starts_on": "2026-01-01",
    "ends_on": "2026-03-31",
    "budget": {"amount_minor": 100_000, "currency_code": "ILS"},
    "actual_cost": {"amount_minor": 25_000, "currency_code": "ILS"},
    "create_time": None,
    "update_time": None,
}


class FakeGateway(RecordingGateway):
    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method in ("POST", "PATCH"):
            return httpx.Response(201, json={**CAMPAIGN, **json.loads(request.content), "id": "c2"})
        if path == "/api/v1/sources":
            return httpx.Response(200, json={"sources": [{"code": "radio", "display_name": "רדיו"}]})
        if path == "/api/v1/campaigns":
            return httpx.Response(200, json={"campaigns": [CAMPAIGN], "next_page_token": ""})
        if path == "/api/v1/campaigns/c1":
            return httpx.Response(200, json=CAMPAIGN)
        return httpx.Response(404, json={"title": "Not Found"})


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


async def test_a_manager_reads_campaigns_without_edit_links(browser: httpx.AsyncClient) -> None:
    as_role(browser, "sales_manager")
    page = await browser.get("/marketing/campaigns")
    assert "חורף" in page.text and "/marketing/campaigns/new" not in page.text and "/edit" not in page.text
    as_role(browser, "marketing")
    page = await browser.get("/marketing/campaigns")
    assert 'href="/marketing/campaigns/new"' in page.text and 'href="/marketing/campaigns/c1/edit"' in page.text


async def test_a_new_campaign_posts_money_in_minor_units(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "marketing", locale="fa")
    form = await browser.get("/marketing/campaigns/new")
    assert form.status_code == 200 and '<option value="IRR" selected>' in form.text
    # Persian: the dates are picked in the Solar Hijri calendar; 1 Farvardin 1405 is 21 March 2026.
    assert 'name="starts_on__jm"' in form.text and 'type="date"' not in form.text
    data = {
        "csrf": CSRF,
        "source": "radio",
        "name": "بهار",
        "starts_on__jy": "1405",
        "starts_on__jm": "1",
        "starts_on__jd": "1",
        "ends_on__jy": "",
        "ends_on__jm": "",
        "ends_on__jd": "",
        "budget_amount": "۵۰۰٬۰۰۰",
        "budget_currency": "IRR",
        "actual_cost_amount": "",
        "actual_cost_currency": "IRR",
    }
    done = await browser.post("/marketing/campaigns/new", data=data)
    assert done.status_code == 303 and done.headers["location"] == "/marketing/campaigns#campaign-c2"
    assert json.loads(fake.writes()[0].content) == {
        "source": "radio",
        "name": "بهار",
        "starts_on": "2026-03-21",
        "ends_on": None,
        "budget": {"amount_minor": 50_000_000, "currency_code": "IRR"},
        "actual_cost": None,
    }
    bad = await browser.post("/marketing/campaigns/new", data={**data, "budget_amount": "5.555"})
    assert bad.status_code == 422 and len(fake.writes()) == 1
    assert 'aria-invalid="true" aria-describedby="budget-err budget-hint"' in bad.text
    assert 'value="5.555"' in bad.text and 'value="بهار"' in bad.text


async def test_an_edit_sends_the_changed_budget_only_and_a_clash_keeps_the_input(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "admin")
    form = await browser.get("/marketing/campaigns/c1/edit")
    assert 'value="1000"' in form.text and 'value="250"' in form.text
    data = {
        "csrf": CSRF,
        "original": hidden(form.text, "original"),
        "name": "חורף",
        "starts_on": "2026-01-01",
        "ends_on": "2026-03-31",
        "budget_amount": "1,500",
        "budget_currency": "ILS",
        "actual_cost_amount": "250",
        "actual_cost_currency": "ILS",
    }
    done = await browser.post("/marketing/campaigns/c1/edit", data=data)
    assert done.status_code == 303
    sent = fake.writes()[0]
    assert sent.method == "PATCH" and json.loads(sent.content) == {
        "budget": {"amount_minor": 150_000, "currency_code": "ILS"}
    }
    fake.refusal = httpx.Response(409, json={"title": "Conflict", "status": 409, "detail": "name taken in radio"})
    clash = await browser.post("/marketing/campaigns/c1/edit", data={**data, "name": "קיץ"})
    assert clash.status_code == 409 and "name taken in radio" in clash.text and 'value="קיץ"' in clash.text
