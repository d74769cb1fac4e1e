"""The marketing screens: their pure parts (progress, period, charts, snippet) and their pages
against a recording fake of the gateway (what is sent to importLeads, what each page shows)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm_console.charts import bar_chart
from crm_console.pages_marketing import (
    budget_spent,
    idempotency_key,
    import_progress,
    main_currency,
    period,
    web_form_snippet,
)

from .conftest import CSRF, console_client

pytestmark = pytest.mark.unit


def test_progress_is_indeterminate_while_validating_then_counts_the_valid_rows() -> None:
    assert import_progress({"status": "validating", "rows_read": 300}).value is None
    running = import_progress({"status": "importing", "rows_valid": 10, "rows_imported": 3, "duplicates": 1})
    assert (running.value, running.maximum, running.finished) == (4, 10, False)
    for status in ("completed", "rejected"):
        done = import_progress({"status": status, "rows_valid": 0})
        assert done.finished and done.value == done.maximum


def test_a_period_is_whole_local_days_as_utc_instants() -> None:
    bounds = period("2026-03-01", "2026-03-31", ZoneInfo("Asia/Jerusalem"))
    assert bounds == {"start_time": "2026-02-28T22:00:00+00:00", "end_time": "2026-03-31T21:00:00+00:00"}
    assert period("", "nonsense", ZoneInfo("Asia/Tehran")) == {}


def test_bars_grow_from_the_inline_start_and_mirror_in_right_to_left() -> None:
    items = [("רדיו", 10.0, "10"), ("טלוויזיה", 5.0, "5")]
    ltr, rtl = bar_chart(items, rtl=False), bar_chart(items, rtl=True)
    assert ltr.bars[0].bar_width == 2 * ltr.bars[1].bar_width  # the longest fills the plot
    for left, right in zip(ltr.bars, rtl.bars, strict=True):
        assert right.bar_x == pytest.approx(ltr.width - left.bar_x - left.bar_width)
        assert right.label_x == pytest.approx(ltr.width - left.label_x)
        assert right.value_x == pytest.approx(ltr.width - left.value_x)
    # Every bar starts at the same edge: the left one in LTR, the right one in RTL.
    assert {b.bar_x for b in ltr.bars} == {ltr.bars[0].bar_x}
    assert {round(b.bar_x + b.bar_width, 6) for b in rtl.bars} == {round(rtl.bars[0].bar_x + rtl.bars[0].bar_width, 6)}
    assert bar_chart([], rtl=True).bars == () and bar_chart([("x", 0.0, "0")], rtl=False).bars[0].bar_width == 0


def test_charts_compare_one_currency_and_budgets_are_spent_in_theirs() -> None:
    ils = {"amount_minor": 100, "currency_code": "ILS"}
    assert main_currency([ils, None, {"amount_minor": 5, "currency_code": "USD"}, ils]) == "ILS"
    assert main_currency([None]) == ""
    assert budget_spent({"budget": {"amount_minor": 400, "currency_code": "ILS"}, "actual_cost": ils}) == 0.25
    assert budget_spent({"budget": {"amount_minor": 0, "currency_code": "ILS"}, "actual_cost": ils}) is None
    assert budget_spent({"budget": {"amount_minor": 9, "currency_code": "USD"}, "actual_cost": ils}) is None


def test_the_snippet_posts_the_key_to_the_public_route_and_escapes_everything() -> None:
    labels = {"full_name": 'שם "מלא"', "phone": "טלפון", "email": "דוא״ל", "send": "<שליחה>"}
    snippet = web_form_snippet("https://api.example.co.il/", 'k"<x>', "he", labels)
    assert '<form method="post" action="https://api.example.co.il/api/v1/public/web-form-submissions"' in snippet
    assert 'name="key" value="k&quot;&lt;x&gt;"' in snippet
    assert 'dir="rtl" lang="he"' in snippet and 'value="he-IL"' in snippet
    assert "שם &quot;מלא&quot;" in snippet and "&lt;שליחה&gt;" in snippet
    assert 'name="website"' in snippet and "left:" not in snippet  # the honeypot, clipped in place
    assert 'dir="ltr" lang="en"' in web_form_snippet("http://gw", "k", "en", labels)


def test_only_a_uuid_from_the_form_becomes_the_idempotency_key() -> None:
    given = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert idempotency_key(given) == given
    assert idempotency_key("x\r\nInjected: 1") != "x\r\nInjected: 1"


# ------------------------------------------------------------------ pages against a fake gateway

IMPORT = {
    "id": "imp-1",
    "source": "radio",
    "campaign_id": "c1",
    "campaign": "אביב ברדיו",
    "file_name": "רשימה.csv",
    "mode": "skip_invalid",
    "status": "importing",
    "rows_read": 3,
    "rows_valid": 2,
    "rows_imported": 1,
    "duplicates": 0,
    "error_count": 1,
    "errors": [{"row_number": 3, "line_number": 4, "field": "phone_number", "message": "not a phone number"}],
    "reject_reason": "",
    "create_actor": "marketer-shira",
    "create_time": "2026-12-06T08:00:00Z",
    "update_time": "2026-12-06T08:00:01Z",
    "complete_time": None,
}
CAMPAIGN = {
    "id": "c1",
    "source": "radio",
    "name": "אביב ברדיו",
    "starts_on": "2026-03-01",
    "ends_on": "2026-05-31",
    "budget": {"amount_minor": 4_000_000, "currency_code": "ILS"},
    "actual_cost": {"amount_minor": 3_150_000, "currency_code": "ILS"},
    "create_time": None,
    "update_time": None,
}


class FakeGateway:
    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        path, method = request.url.path, request.method
        answers: dict[tuple[str, str], Any] = {
            ("GET", "/api/v1/sources"): {"sources": [{"code": "radio", "display_name": "Radio"}]},
            ("GET", "/api/v1/campaigns"): {"campaigns": [CAMPAIGN], "next_page_token": ""},
            ("GET", "/api/v1/campaigns/c1"): CAMPAIGN,
            ("GET", "/api/v1/lead-imports"): {"lead_imports": [IMPORT], "next_page_token": ""},
            ("GET", "/api/v1/lead-imports/imp-1"): IMPORT,
            ("POST", "/api/v1/lead-imports"): IMPORT,
            ("GET", "/api/v1/reports/sources"): {
                "rows": [
                    {"source": "radio", "leads": 12, "won_deals": 1, "lost_deals": 0, "revenue": [], "cost": []},
                    {"source": "tv", "leads": 3, "won_deals": 0, "lost_deals": 1, "revenue": [], "cost": []},
                ]
            },
            ("GET", "/api/v1/reports/campaigns"): {
                "rows": [
                    {
                        "campaign_id": "c1",
                        "source": "radio",
                        "name": "אביב ברדיו",
                        "budget": CAMPAIGN["budget"],
                        "cost": CAMPAIGN["actual_cost"],
                        "leads": 12,
                        "won_deals": 1,
                        "lost_deals": 0,
                        "revenue": [{"amount_minor": 7_800_000, "currency_code": "ILS"}],
                        "cost_per_lead": {"amount_minor": 262_500, "currency_code": "ILS"},
                        "return_on_cost": 2.48,
                    }
                ]
            },
            ("GET", "/api/v1/web-form-keys"): {"web_form_keys": [], "next_page_token": ""},
            ("GET", "/api/v1/reports/attribution"): {
                "rows": [
                    {
                        "key": "radio",
                        "name": "radio",
                        "cost": [CAMPAIGN["actual_cost"]],
                        "credits": [
                            {
                                "model": "first",
                                "deals": 2.0,
                                "revenue": [],
                                "cost_per_deal": [{"amount_minor": 1_575_000, "currency_code": "ILS"}],
                                "return_on_cost": 2.48,
                            },
                            {"model": "linear", "deals": 1.5, "revenue": [], "cost_per_deal": [], "return_on_cost": 0},
                        ],
                    }
                ],
                "unavailable": [{"model": "markov", "reason": "too few journeys"}],
                "journeys": 12,
                "conversions": 2,
            },
        }
        if (method, path) == ("POST", "/api/v1/web-form-keys"):
            body = json.loads(request.content)
            key = {
                "id": "k1",
                "display_name": body["display_name"],
                "source": body["source"],
                "campaign": body["campaign"],
                "secret_prefix": "wf_abc",
                "create_time": "2026-12-06T08:00:00Z",
                "revoke_time": None,
                "create_actor": "marketer-shira",
            }
            return httpx.Response(201, json={"web_form_key": key, "secret": "wf_abcSECRET", "html_snippet": "<form>"})
        if (method, path) in answers:
            return httpx.Response(201 if method == "POST" else 200, json=answers[(method, path)])
        return httpx.Response(404, json={"title": "Not Found"})


def marketer(fake: FakeGateway, locale: str = "he") -> httpx.AsyncClient:
    """A browser signed in as a marketer whose token the tests look for in the gateway's calls."""
    return console_client(fake, "marketing", locale=locale, token="tok-mkt", subject="marketer-shira")


async def test_an_upload_sends_the_files_bytes_as_csv_with_its_query_and_idempotency_key() -> None:
    fake = FakeGateway()
    key = "0f8fad5b-d9cb-469f-a165-70867728950e"
    csv = "full_name,phone_number\nדנה,050-1234567\n".encode()
    async with marketer(fake) as client:
        page = await client.get("/marketing/imports")
        assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
        assert 'href="/marketing/imports"' in page.text  # the menu entry of the marketing role
        sent = await client.post(
            "/marketing/imports",
            data={
                "csrf": CSRF,
                "source": "radio",
                "campaign": "c1",
                "mode": "skip_invalid",
                "idempotency_key": key,
            },
            files={"file": ("רשימה.csv", csv, "text/csv")},
        )
        assert sent.status_code == 303 and sent.headers["location"] == "/marketing/imports/imp-1"
        refused = await client.post("/marketing/imports", data={"csrf": "wrong"}, files={"file": ("a.csv", b"x")})
        assert refused.status_code == 403
    uploads = [c for c in fake.calls if c.method == "POST" and c.url.path == "/api/v1/lead-imports"]
    assert len(uploads) == 1
    upload = uploads[0]
    assert upload.content == csv and upload.headers["content-type"] == "text/csv"
    assert upload.headers["idempotency-key"] == key and upload.headers["authorization"] == "Bearer tok-mkt"
    query = {k: v[0] for k, v in parse_qs(upload.url.query.decode()).items()}
    assert query == {"source": "radio", "campaign": "c1", "mode": "skip_invalid", "file_name": "רשימה.csv"}


async def test_an_upload_without_a_file_names_the_field_and_calls_nothing() -> None:
    fake = FakeGateway()
    async with marketer(fake) as client:
        answer = await client.post("/marketing/imports", data={"csrf": CSRF, "source": "radio"})
    assert answer.status_code == 422 and 'aria-describedby="file-hint file-err"' in answer.text
    assert not [c for c in fake.calls if c.method == "POST"]


async def test_the_import_page_and_its_progress_part_show_counts_and_line_errors() -> None:
    async with marketer(FakeGateway()) as client:
        page = await client.get("/marketing/imports/imp-1")
        part = await client.get("/marketing/imports/imp-1/progress")
    assert page.status_code == 200 and '<script src="/static/marketing.js" defer>' in page.text
    assert 'data-import-progress="/marketing/imports/imp-1/progress"' in page.text
    for html in (page.text, part.text):
        assert '<progress id="import-bar" aria-labelledby="progress-h" max="2" value="1">' in html
        assert "data-finished" not in html  # still importing: the script keeps asking
        assert "<td>4</td>" in html and "phone_number" in html and "not a phone number" in html
    assert "<html" not in part.text


async def test_campaigns_reports_and_a_new_form_key_in_persian() -> None:
    fake = FakeGateway()
    async with marketer(fake, "fa") as client:
        listed = await client.get("/marketing/campaigns")
        one = await client.get("/marketing/campaigns/c1")
        reports = await client.get("/marketing/reports", params={"start": "2026-03-01", "end": "2026-03-31"})
        created = await client.post(
            "/marketing/web-forms", data={"csrf": CSRF, "display_name": "فرم تماس", "source": "radio"}
        )
    assert listed.status_code == 200 and "אביב ברדיו" in listed.text and "۳۱٬۵۰۰" in listed.text
    assert one.status_code == 200 and "۷۹%" in one.text  # 31,500 of a 40,000 budget
    assert reports.status_code == 200 and reports.text.count('<svg class="bar-chart" role="img"') == 2
    assert 'direction="rtl"' in reports.text and "۱۲" in reports.text
    assert '<td class="num" data-model="first" data-count="deals">۲</td>' in reports.text  # 2.0, Persian digits
    assert '<td class="num" data-model="linear" data-count="deals">۱٫۵</td>' in reports.text
    attribution_calls = [c for c in fake.calls if c.url.path == "/api/v1/reports/attribution"]
    assert attribution_calls[0].url.params.get_list("models") == ["first", "linear"]
    report_calls = [c for c in fake.calls if c.url.path == "/api/v1/reports/sources"]
    assert "start_time=2026-02-28T20%3A30%3A00%2B00%3A00" in str(report_calls[0].url)  # Tehran's midnight
    assert created.status_code == 201
    assert '<pre class="snippet" dir="ltr"><code>&lt;form method=&#34;post&#34;' in created.text
    assert "wf_abcSECRET" in created.text and "lang=&#34;fa&#34;" in created.text
