"""The report builder in the console, against a fake gateway: the form's query becomes the
definition the gateway gets (Jalali days as Gregorian), the table shows money in its currency and
rates in percent with a total and a chart, a refusal lands on its field, a report is saved shared
with the team's reps, and a saved report opens with its name."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.datastructures import QueryParams

from crm_console.i18n import Translator
from crm_console.pages_reports import cell, chart_of, definition_from

from .conftest import CSRF, RecordingGateway, as_role

pytestmark = pytest.mark.unit

CATALOG = {
    "measures": [
        {"name": "leads", "unit": "count", "dimensions": ["source", "period"], "owned": True},
        {"name": "revenue", "unit": "money", "dimensions": ["source", "period"], "owned": True},
        {"name": "win_rate", "unit": "ratio", "dimensions": ["source", "period"], "owned": True},
    ],
    "grains": ["day", "week", "month"],
    "calendars": ["gregorian", "jalali", "hebrew"],
    "week_starts": ["monday", "saturday", "sunday"],
    "ranges": ["last_30_days", "last_quarter"],
}
RESULT: dict[str, Any] = {
    "columns": [
        {"name": "source", "kind": "dimension", "unit": "", "currency_code": ""},
        {"name": "leads", "kind": "measure", "unit": "count", "currency_code": ""},
        {"name": "revenue", "kind": "measure", "unit": "money", "currency_code": "ILS"},
        {"name": "win_rate", "kind": "measure", "unit": "ratio", "currency_code": ""},
    ],
    "rows": [
        {"keys": ["radio"], "labels": ["radio"], "values": [12, 459900, 0.25]},
        {"keys": ["website"], "labels": ["website"], "values": [3, 0, None]},
    ],
    "total": {"keys": [], "labels": [], "values": [15, 459900, 0.2]},
    "start_date": "2026-07-01",
    "end_date": "2026-09-30",
    "chart": {"type": "bar", "x": "source", "series": "", "measure": 0},
}
SAVED = {
    "id": "s1",
    "name": "לידים לפי מקור",
    "definition": {
        "measures": ["leads"],
        "dimensions": ["source"],
        "periods": {"grain": "month", "calendar": "gregorian", "week_start": "", "fiscal_year_start_month": 1},
        "filters": {},
        "range": "last_quarter",
        "start_date": None,
        "end_date": None,
    },
    "owner_id": "noa",
    "team_id": "team-media",
    "shared_roles": ["sales_rep"],
    "create_time": "2026-12-07T08:00:00Z",
}


FUNNEL = {
    "pipeline_id": "default",
    "stages": [{"id": "default-new", "name": "חדש"}, {"id": "default-won", "name": "נסגר"}],
    "rows": [{"group": "radio", "reached": [4, 1]}],
    "total": {"group": "", "reached": [4, 1]},
}
SPEED = [
    {"band": "under_5_minutes", "leads": 4, "won": 3, "lost": 1, "win_rate": 0.75, "median_seconds": 60},
    {"band": "no_response", "leads": 2, "won": 0, "lost": 0, "win_rate": None, "median_seconds": 0},
]


SCHEDULE = {
    "id": "rs1",
    "saved_report_id": "s1",
    "report_name": "לידים לפי מקור",
    "owner_id": "noa",
    "cadence": "weekly",
    "weekday": 6,
    "day_of_month": 1,
    "hour": 8,
    "recipients": ["noa@galil.example"],
    "locale": "he",
    "next_run_time": "2026-12-13T06:00:00Z",
    "last_run_time": "2026-12-06T06:00:03Z",
    "last_error": "",
    "create_time": "2026-12-01T10:00:00Z",
}
OUTSIDE = {
    "title": "Unprocessable",
    "detail": "the schedule cannot be kept: recipients[0]",
    "errors": [{"field": "recipients[0]", "detail": "an address of the company: galil.example"}],
}


# What the fake gateway answers to a read, by path.
READS: dict[str, Any] = {
    "/api/v1/reports/builder/catalog": CATALOG,
    "/api/v1/saved-reports": {"reports": [SAVED]},
    "/api/v1/saved-reports/s1": SAVED,
    "/api/v1/reports/funnel": FUNNEL,
    "/api/v1/reports/speed-to-lead": {"bands": SPEED},
    "/api/v1/reports/customer-value": {
        "status": "scored",
        "buyers": 2,
        "segments": [
            {"segment": "champions", "customers": 2, "value": {"amount_minor": 300000, "currency_code": "ILS"}}
        ],
        "top": [
            {
                "customer_id": "c1",
                "status": "scored",
                "recency": 5,
                "frequency": 5,
                "monetary": 5,
                "segment": "champions",
                "recency_days": 1,
                "purchases": 3,
                "lifetime_value": {"amount_minor": 200000, "currency_code": "ILS"},
                "yearly_value": {"amount_minor": 100000, "currency_code": "ILS"},
                "first_purchase_time": None,
                "last_purchase_time": None,
            }
        ],
    },
    "/api/v1/customers/c1": {"id": "c1", "full_name": "דנה כהן"},
    "/api/v1/sources": {"sources": [{"code": "radio", "display_name": "רדיו / Radio"}]},
    "/api/v1/me": {"subject": "noa", "roles": ["sales_manager"], "team_id": "team-media", "rep_id": ""},
    "/api/v1/report-schedules": {"schedules": [SCHEDULE]},
}
UNFIT = {
    "title": "Unprocessable",
    "detail": "no",
    "errors": [{"field": "dimensions", "detail": "tickets cannot be broken down by source"}],
}


class FakeGateway(RecordingGateway):
    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/saved-reports" and request.method == "POST":
            return httpx.Response(201, json=SAVED)
        if path == "/api/v1/saved-reports/s1/schedules":
            if b"gmail" in request.content:
                return httpx.Response(422, json=OUTSIDE, headers={"content-type": "application/problem+json"})
            return httpx.Response(201, json=SCHEDULE)
        if path == "/api/v1/report-schedules/rs1/send-now":
            return httpx.Response(202, json=SCHEDULE)
        if path in ("/api/v1/saved-reports/s1/result", "/api/v1/reports/builder/run"):
            if b"tickets" in request.content:
                return httpx.Response(422, json=UNFIT, headers={"content-type": "application/problem+json"})
            return httpx.Response(200, json=RESULT)
        if path in READS:
            return httpx.Response(200, json=READS[path])
        return httpx.Response(404, json={"title": "Not Found"})


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


def test_the_forms_query_is_the_definition_with_jalali_days_as_gregorian() -> None:
    query = QueryParams(
        "measure=leads&measure=revenue&dim1=period&dim2=source&grain=month&calendar=jalali"
        "&range=custom&start__jy=1405&start__jm=1&start__jd=1&end=2026-06-30"
    )
    assert definition_from(query) == {
        "measures": ["leads", "revenue"],
        "dimensions": ["period", "source"],
        "periods": {"grain": "month", "calendar": "jalali", "week_start": ""},
        "start_date": "2026-03-21",
        "end_date": "2026-06-30",
    }
    assert definition_from(QueryParams("measure=leads&dim2=source"))["range"] == "last_quarter"


def test_cells_read_in_the_readers_language() -> None:
    fa = Translator("fa")
    money = {"name": "revenue", "kind": "measure", "unit": "money", "currency_code": "ILS"}
    ratio = {"name": "win_rate", "kind": "measure", "unit": "ratio", "currency_code": ""}
    assert cell(fa, ratio, 0.25) == "۲۵٫۰%" and cell(fa, ratio, None) == "—"
    assert "۴٬۵۹۹" in cell(fa, money, 459900) or "4,599" in cell(fa, money, 459900)
    chart = chart_of(Translator("he"), RESULT)
    assert chart is not None and [b.label for b in chart.bars] == ["radio", "website"]


async def test_a_manager_sees_the_table_total_and_chart(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "sales_manager", locale="en")
    page = await browser.get("/reports/builder", params={"measure": ["leads", "revenue", "win_rate"], "dim1": "source"})
    assert page.status_code == 200, page.text
    assert 'class="list report"' in page.text and "svg" in page.text and "25.0%" in page.text
    assert "Total" in page.text and "/reports/builder/export?" in page.text
    # Sources by their names (an unknown code stays a code).
    assert "רדיו / Radio" in page.text and "<bdi>website</bdi>" in page.text
    [sent] = [r for r in fake.calls if r.url.path.endswith("/run")]
    assert json.loads(sent.content)["dimensions"] == ["source"] and sent.url.params["locale"] == "en"


async def test_a_refusal_lands_on_its_field(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "sales_manager", locale="en")
    page = await browser.get("/reports/builder", params={"measure": "tickets", "dim1": "source"})
    assert page.status_code == 422 and "tickets cannot be broken down by source" in page.text


async def test_a_report_is_saved_for_the_team_and_opens_with_its_name(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "sales_manager", locale="he")
    form = {
        "csrf": CSRF,
        "name": "לידים לפי מקור",
        "query": "measure=leads&dim1=source&range=last_quarter",
        "share": ["sales_rep", "admin"],
        "team_only": "1",
        "request_id": "r1",
    }
    saved = await browser.post("/reports/builder/save", data=form)
    assert saved.status_code == 303 and saved.headers["location"] == "/reports/saved/s1"
    [sent] = [r for r in fake.writes() if r.url.path == "/api/v1/saved-reports"]
    body = json.loads(sent.content)
    assert body["shared_roles"] == ["sales_rep"] and body["team_id"] == "team-media"
    assert body["definition"]["range"] == "last_quarter"
    page = await browser.get("/reports/saved/s1")
    assert page.status_code == 200 and "<h1>לידים לפי מקור</h1>" in page.text


async def test_a_saved_report_is_scheduled_by_e_mail_and_sent_now(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "sales_manager", locale="he")
    page = await browser.get("/reports/saved/s1")
    assert page.status_code == 200 and 'id="mail-h"' in page.text
    assert "noa@galil.example" in page.text and "כל שבוע · ראשון · 08:00" in page.text
    [listed] = [r for r in fake.calls if r.url.path == "/api/v1/report-schedules"]
    assert listed.url.params["saved_report_id"] == "s1"

    form = {
        "csrf": CSRF,
        "cadence": "monthly",
        "weekday": "0",
        "day_of_month": "1",
        "hour": "7",
        "recipients": "noa@galil.example; dan@galil.example",
        "locale": "fa",
        "request_id": "q1",
    }
    made = await browser.post("/reports/saved/s1/schedules", data=form)
    assert made.status_code == 303 and made.headers["location"] == "/reports/saved/s1#mail-h"
    [sent] = [r for r in fake.writes() if r.url.path == "/api/v1/saved-reports/s1/schedules"]
    assert json.loads(sent.content) == {
        "cadence": "monthly",
        "weekday": 0,
        "day_of_month": 1,
        "hour": 7,
        "recipients": ["noa@galil.example", "dan@galil.example"],
        "locale": "fa",
        "request_id": "q1",
    }

    refused = await browser.post("/reports/saved/s1/schedules", data=form | {"recipients": "boss@gmail.com"})
    assert refused.status_code == 422 and 'id="rs-recipients-err"' in refused.text
    assert "an address of the company: galil.example" in refused.text and 'value="boss@gmail.com"' in refused.text

    now = await browser.post("/reports/schedules/rs1/send-now", data={"csrf": CSRF, "report_id": "s1"})
    assert now.status_code == 303 and now.headers["location"] == "/reports/saved/s1?mail=sent#mail-h"
    assert [r.url.path for r in fake.writes()][-1] == "/api/v1/report-schedules/rs1/send-now"


async def test_the_funnel_page_shows_conversion_and_the_speed_to_lead_curve(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "sales_manager", locale="en")
    page = await browser.get("/reports/funnel")
    assert page.status_code == 200, page.text
    # Radio by its name; a quarter of its deals reached won; the band's win rate, none for the unanswered.
    assert "רדיו / Radio" in page.text and "(25%)" in page.text
    assert 'data-band="under_5_minutes"' in page.text and "75%" in page.text and "Never answered" in page.text
    # One of each section, and the page's title is text.
    assert (
        page.text.count('id="value-h"') == 1
        and "<title>" in page.text
        and "<section" not in page.text.split("</title>")[0]
    )
    # The most valuable by name, with their segment.
    assert 'data-segment="champions"' in page.text and "דנה כהן" in page.text and "Champions" in page.text
    [funnel] = [c for c in fake.calls if c.url.path.endswith("/reports/funnel")]
    assert funnel.url.params["dimension"] == "source" and "start_time" in funnel.url.params
