"""Retention lists in the console, against a fake gateway: a manager makes a list from percentages
and reads what it brought; a rep sees their calls with the reasons in words and no report; an
answer is posted for the entry it was chosen on."""

from __future__ import annotations

import json

import httpx
import pytest

from crm_console.i18n import Translator
from crm_console.pages_retention import offer_text, percent, reason_text

from .conftest import CSRF, RecordingGateway, as_role

pytestmark = pytest.mark.unit

LIST = {
    "id": "l1",
    "name": "שבוע 49",
    "team_id": "team-media",
    "threshold": 0.6,
    "control_share": 0.1,
    "called": 1,
    "control": 1,
    "created_by": "noa",
    "create_time": "2026-12-07T08:00:00Z",
}
CALL = {
    "customer_id": "c1",
    "rep_id": "rep-dana",
    "control": False,
    "risk": 0.55,
    "band": "medium",
    "reasons": [
        {"signal": "no_purchase", "points": 20, "value": 200},
        {"signal": "complaints", "points": 15, "value": 1},
    ],
    "offer": "service_recovery",
    "response": "",
    "response_time": None,
    "position": 1,
}
HELD = {**CALL, "customer_id": "c2", "rep_id": "", "control": True, "position": 2}
REPORT = {
    "list": LIST,
    "groups": [
        {
            "group": "called",
            "customers": 1,
            "responses": {"offer_accepted": 1},
            "buyers": 1,
            "revenue": [{"amount_minor": 50000, "currency_code": "ILS"}],
            "revenue_per_customer": [{"amount_minor": 50000, "currency_code": "ILS"}],
        },
        {"group": "control", "customers": 1, "responses": {}, "buyers": 0, "revenue": [], "revenue_per_customer": []},
    ],
    "retained_revenue": [{"amount_minor": 50000, "currency_code": "ILS"}],
}


class FakeGateway(RecordingGateway):
    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/retention-lists" and request.method == "POST":
            return httpx.Response(201, json=LIST)
        if path == "/api/v1/retention-lists":
            return httpx.Response(200, json={"lists": [LIST]})
        if path == "/api/v1/retention-lists/l1":
            return httpx.Response(200, json={"list": LIST, "entries": [CALL, HELD]})
        if path == "/api/v1/customers/c1":
            return httpx.Response(200, json={"id": "c1", "full_name": "דנה כהן", "phone_number": "+972501234567"})
        if path == "/api/v1/retention-lists/l1/report":
            return httpx.Response(200, json=REPORT)
        if path == "/api/v1/retention-lists/l1/entries/c1/response":
            return httpx.Response(200, json={"list": LIST, "entries": [CALL]})
        return httpx.Response(404, json={"title": "Not Found"})


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


def test_reasons_and_offers_read_in_the_readers_language() -> None:
    he, en = Translator("he"), Translator("en")
    assert reason_text(en, {"signal": "no_purchase", "value": 200}) == "No purchase for 200 days"
    assert reason_text(he, {"signal": "complaints", "value": 2}) == "2 תלונות לאחרונה"
    assert offer_text(en, "cross_sell:RUG-2") == "Offer: RUG-2" and offer_text(en, "win_back_discount")
    assert (percent("۶۰", 0.6), percent("", 0.1), percent("x", 0.1)) == (0.6, 0.1, None)


async def test_a_manager_makes_a_list_from_percentages(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "sales_manager", locale="en")
    form = {"csrf": CSRF, "name": "Week 49", "threshold": "50", "control_share": "۲۰", "max_entries": "100"}
    made = await browser.post("/retention", data={**form, "request_id": "r1"})
    assert made.status_code == 303 and made.headers["location"] == "/retention/l1"
    [sent] = fake.writes()
    assert json.loads(sent.content) == {
        "name": "Week 49",
        "request_id": "r1",
        "threshold": 0.5,
        "control_share": 0.2,
        "max_entries": 100,
    }
    wrong = await browser.post("/retention", data={**form, "threshold": "lots", "max_entries": "1.5"})
    assert wrong.status_code == 422 and 'id="threshold-err"' in wrong.text and 'id="max_entries-err"' in wrong.text


async def test_the_manager_reads_the_list_with_its_report(browser: httpx.AsyncClient) -> None:
    as_role(browser, "sales_manager", locale="en")
    page = await browser.get("/retention/l1")
    assert 'data-group="called"' in page.text and 'data-group="control"' in page.text
    assert "Offer accepted: 1" in page.text and "No purchase for 200 days" in page.text
    assert 'data-customer="c2" data-control="yes"' in page.text and "Control: not called" in page.text
    assert "Put the service right" in page.text
    # Reporting keeps ids: the name and number come from the customer, as the caller may read it.
    assert "דנה כהן" in page.text and "+972501234567" in page.text


async def test_a_rep_answers_their_call_and_sees_no_report(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "sales_rep", locale="en")
    page = await browser.get("/retention/l1")
    assert "What the list brought" not in page.text
    assert not any(c.url.path.endswith("/report") for c in fake.calls)
    done = await browser.post("/retention/l1/entries/c1", data={"csrf": CSRF, "response": "offer_accepted"})
    assert done.status_code == 303 and done.headers["location"] == "/retention/l1#c-c1"
    assert json.loads(fake.writes()[-1].content) == {"response": "offer_accepted"}
