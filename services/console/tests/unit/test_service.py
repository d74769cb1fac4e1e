"""The service desk's pure helpers (the SLA clock's words, the category tree, the status buttons,
the report's rows and chart) and its pages against a fake gateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crm_console.api import operations
from crm_console.i18n import Translator
from crm_console.pages_service import (
    attainment_chart,
    category_options,
    clock_view,
    escalation_level,
    report_row,
    span,
    status_moves,
)

from .conftest import CSRF, RecordingGateway, console_client

pytestmark = pytest.mark.unit
OPS = operations()  # the gateway's paths as the console's copy of its spec names them

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
EN, HE, FA = Translator("en"), Translator("he"), Translator("fa")


def at(minutes: int) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat()


def test_a_running_clock_reads_due_in_hours_and_minutes() -> None:
    view = clock_view(EN, {"state": "running", "due_time": at(130)}, NOW)
    assert (view.state, view.text) == ("running", "due in 2h 10m")
    assert view.moment == at(130)
    assert clock_view(HE, {"state": "running", "due_time": at(130)}, NOW).text == "יעד בעוד 2 שע׳ 10 דק׳"
    assert clock_view(FA, {"state": "running", "due_time": at(130)}, NOW).text == "مهلت: ۲ ساعت ۱۰ دقیقه دیگر"


def test_a_breached_clock_reads_how_long_ago_even_before_the_scan_marks_it() -> None:
    breached = {"state": "breached", "due_time": at(-200), "breach_time": at(-180)}
    assert clock_view(EN, breached, NOW).text == "breached 3h ago"
    # Still "running" in the answer but past its due time: it is breached all the same.
    late = clock_view(EN, {"state": "running", "due_time": at(-3 * 24 * 60 - 90)}, NOW)
    assert (late.state, late.text) == ("breached", "breached 3d 1h ago")


def test_a_paused_clock_says_why_and_a_met_one_says_met() -> None:
    paused = clock_view(EN, {"state": "paused", "paused_reason": "pending_customer", "due_time": at(10)}, NOW)
    assert (paused.state, paused.text) == ("paused", "paused — waiting for the customer")
    assert clock_view(EN, {"state": "paused", "paused_reason": "holiday"}, NOW).text == "paused"
    met = clock_view(EN, {"state": "met", "met_time": at(-5)}, NOW)
    assert (met.state, met.text, met.moment) == ("met", "met", at(-5))
    assert clock_view(EN, None, NOW).text == ""


def test_a_span_shows_its_two_largest_units_and_never_zero() -> None:
    assert span(EN, 20) == "1m"
    assert span(EN, 3600) == "1h"
    assert span(EN, 26 * 3600 + 5 * 60) == "1d 2h"


def test_the_escalation_marker_ignores_clocks_already_met() -> None:
    ticket = {
        "sla": [
            {"metric": "first_response", "state": "met", "escalation_level": 2},
            {"metric": "resolution", "state": "running", "escalation_level": 1},
        ]
    }
    assert escalation_level(ticket) == 1
    assert escalation_level({"sla": []}) == 0


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        (
            "new",
            [
                ("open", "svc_move_open"),
                ("pending_customer", "svc_move_pending_customer"),
                ("resolved", "svc_move_resolved"),
            ],
        ),
        ("open", [("pending_customer", "svc_move_pending_customer"), ("resolved", "svc_move_resolved")]),
        ("pending_customer", [("open", "svc_move_open"), ("resolved", "svc_move_resolved")]),
        ("resolved", [("open", "svc_move_reopen"), ("closed", "svc_move_closed")]),
        ("closed", []),
    ],
)
def test_the_status_buttons_follow_the_lifecycle(status: str, buttons: list[tuple[str, str]]) -> None:
    assert status_moves(status) == buttons


CATEGORIES = [
    {"id": "product", "parent_id": "", "names": {"he": "מוצר", "fa": "محصول", "en": "Product"}},
    {"id": "billing", "parent_id": "", "names": {"he": "חיוב", "en": "Billing"}},
    {"id": "product.damage", "parent_id": "product", "names": {"he": "נזק", "fa": "آسیب", "en": "Damage"}},
    {"id": "billing.refund", "parent_id": "billing", "names": {"he": "החזר", "fa": "بازپرداخت", "en": "Refund"}},
    {"id": "orphan", "parent_id": "gone", "names": {"en": "Orphan"}},
]


def test_the_category_options_are_the_tree_in_the_readers_language() -> None:
    assert category_options(CATEGORIES, "he") == [
        ("product", "מוצר"),
        ("product.damage", "— נזק"),
        ("billing", "חיוב"),
        ("billing.refund", "— החזר"),
        ("orphan", "Orphan"),
    ]
    # A name missing in Persian falls back to English.
    assert ("billing", "Billing") in category_options(CATEGORIES, "fa")


ROW = {
    "key": "complaints",
    "opened": 4,
    "resolved": 3,
    "backlog": 1,
    "sla": [
        {"metric": "first_response", "met": 3, "breached": 1, "attainment": 0.75},
        {"metric": "resolution", "met": 2, "breached": 0, "attainment": 1.0},
    ],
    "survey_answers": 2,
    "csat_average": 4.5,
    "csat_satisfied": 1.0,
}


def test_a_report_row_shows_attainment_per_metric_and_csat_to_one_decimal() -> None:
    row = report_row(EN, ROW, "Complaints")
    assert [(m["metric"], m["text"], m["detail"]) for m in row["metrics"]] == [
        ("first_response", "75%", "3 of 4"),
        ("next_response", "—", ""),
        ("resolution", "100%", "2 of 2"),
    ]
    assert (row["csat"], row["satisfied"]) == ("4.5", "100%")
    assert report_row(FA, ROW, "x")["csat"] == "۴٫۵"
    assert report_row(EN, {**ROW, "survey_answers": 0}, "x")["csat"] == "—"


def test_the_attainment_chart_grows_from_the_inline_start_side() -> None:
    rows = [report_row(EN, ROW, "Complaints")]
    ltr, _ = attainment_chart(rows, rtl=False)
    rtl, height = attainment_chart(rows, rtl=True)
    first_ltr, first_rtl = ltr[0].bars[0], rtl[0].bars[0]
    assert first_ltr.width == first_rtl.width == 340 * 0.75
    assert first_ltr.x == 150  # after the label column, on the left
    assert first_rtl.x + first_rtl.width == 560 - 150  # ends where the right-hand label column starts
    assert rtl[0].label_x > ltr[0].label_x
    assert height > 0


# ------------------------------------------------------------------ pages against a fake gateway

TICKET = {
    "id": "t1",
    "number": 1042,
    "customer_id": "c1",
    "order_id": "",
    "product_sku": "",
    "kind": "complaint",
    "channel": "phone",
    "priority": "high",
    "category_id": "product.damage",
    "subject": "Broken sofa leg",
    "description": "",
    "status": "pending_customer",
    "queue_id": "complaints",
    "assignee_id": "agent-yosef",
    "sla": [
        {
            "metric": "resolution",
            "state": "paused",
            "target_seconds": 14400,
            "elapsed_seconds": 600,
            "due_time": None,
            "met_time": None,
            "breach_time": None,
            "paused_reason": "pending_customer",
            "escalation_level": 0,
        }
    ],
    "create_time": "2026-12-06T08:00:00Z",
}
NOTE = {
    "id": 2,
    "visibility": "internal_note",
    "body": "check stock",
    "author_name": "agent-yosef",
    "create_time": None,
}


PROBLEM = {"content-type": "application/problem+json"}
CHILDREN_OPEN = {
    "status": 409,
    "title": "conflict",
    "detail": "open child tasks",
    "errors": [{"field": "status", "detail": "1 child task(s) are still open"}],
}
QUEUES = [{"id": "complaints", "names": {"he": "תלונות", "en": "Complaints"}}]
# The fake gateway's answers by path (the desk's own routes as the console's spec copy names them).
ANSWERS: dict[str, httpx.Response] = {
    "/api/v1/tickets": httpx.Response(200, json={"tickets": [TICKET], "next_page_token": "p2"}),
    "/api/v1/tickets/t1": httpx.Response(200, json=TICKET, headers={"ETag": '"7"'}),
    "/api/v1/tickets/t1/messages": httpx.Response(200, json={"messages": [NOTE]}),
    "/api/v1/tickets/t1/status": httpx.Response(409, json=CHILDREN_OPEN, headers=PROBLEM),
    OPS["listTicketCategories"].path: httpx.Response(200, json={"categories": CATEGORIES}),
    OPS["listSupportQueues"].path: httpx.Response(200, json={"queues": QUEUES}),
    "/api/v1/customers": httpx.Response(200, json={"customers": [{"id": "c1"}], "next_page_token": ""}),
    "/api/v1/customers/c1": httpx.Response(200, json={"id": "c1", "full_name": "Dana Cohen"}),
    OPS["submitSurvey"].path.format(token="good-token-123456789"): httpx.Response(
        200, json={"score": 5, "ticket_number": 1042}
    ),
}


class FakeDesk(RecordingGateway):
    def answer(self, request: httpx.Request) -> httpx.Response:
        return ANSWERS.get(request.url.path) or httpx.Response(404, json={"title": "Not Found"})


async def test_the_list_filters_reach_the_gateway_and_show_the_paused_clock() -> None:
    fake = FakeDesk()
    async with console_client(fake, "service_agent", subject="agent-yosef", locale="en") as browser:
        page = await browser.get("/service/tickets?status=open&status=pending_customer&mine=true&at_risk=true")
    assert page.status_code == 200
    sent = next(c for c in fake.calls if c.url.path == "/api/v1/tickets")
    assert sent.url.params.get_list("status") == ["open", "pending_customer"]
    assert (sent.url.params["assignee_id"], sent.url.params["at_risk"]) == ("agent-yosef", "true")
    assert "paused — waiting for the customer" in page.text
    assert '<bdi dir="ltr" class="ticket-number">#1042</bdi>' in page.text
    assert "page_token=p2" in page.text and "status=pending_customer" in page.text


async def test_a_status_move_sends_the_etag_and_a_409_shows_on_the_page() -> None:
    fake = FakeDesk()
    async with console_client(fake, "service_agent", locale="en") as browser:
        page = await browser.get("/service/tickets/t1")
        assert 'value="&#34;7&#34;"' in page.text or 'value="&quot;7&quot;"' in page.text
        assert "internal" in page.text and "check stock" in page.text
        answer = await browser.post(
            "/service/tickets/t1/status", data={"csrf": CSRF, "etag": '"7"', "status": "resolved"}
        )
    assert answer.status_code == 409
    [move] = [c for c in fake.writes() if c.url.path.endswith("/status")]
    assert move.headers["If-Match"] == '"7"'
    assert json.loads(move.content) == {"status": "resolved"}
    assert "1 child task(s) are still open" in answer.text


async def test_a_rep_sees_the_ticket_without_forms() -> None:
    async with console_client(FakeDesk(), "sales_rep", locale="en") as browser:
        page = await browser.get("/service/tickets/t1")
    assert page.status_code == 200
    assert "/service/tickets/t1/status" not in page.text and "/service/tickets/t1/messages" not in page.text


async def test_the_survey_needs_no_session_and_sends_no_users_token() -> None:
    fake = FakeDesk()
    async with console_client(fake) as browser:
        ask = await browser.get("/s/good-token-123456789?lang=fa")
        assert ask.status_code == 200 and 'dir="rtl"' in ask.text and 'lang="fa"' in ask.text
        thanks = await browser.post("/s/good-token-123456789?lang=fa", data={"score": "5"})
        invalid = await browser.post("/s/unknown-token-123456789?lang=en", data={"score": "3"})
        bad = await browser.post("/s/good-token-123456789?lang=en", data={"score": "9"})
    assert thanks.status_code == 200 and "سپاس" in thanks.text
    [sent, _] = fake.writes()
    assert json.loads(sent.content) == {"score": 5}
    # No user's token: the link's token is the credential.
    assert "Authorization" not in sent.headers  # the public route: no user's token, no token at all
    assert invalid.status_code == 404 and "This link is not valid." in invalid.text
    assert bad.status_code == 422 and len(fake.writes()) == 2


async def test_a_refused_ticket_comes_back_with_the_field_marked() -> None:
    fake = FakeDesk()
    fake.refusal = httpx.Response(
        422,
        json={"status": 422, "title": "invalid", "errors": [{"field": "subject", "detail": "is required"}]},
        headers={"content-type": "application/problem+json"},
    )
    form: dict[str, Any] = {
        "csrf": CSRF,
        "customer_id": "c1",
        "kind": "complaint",
        "channel": "phone",
        "priority": "normal",
        "category_id": "product.damage",
        "subject": " ",
    }
    async with console_client(fake, "service_agent", locale="en") as browser:
        page = await browser.post("/service/tickets/new", data=form)
    assert page.status_code == 422
    assert 'id="subject" name="subject" maxlength="200" required value="" aria-invalid="true"' in page.text


async def test_a_complaint_about_an_order_finds_the_customer_its_lead_became() -> None:
    fake = FakeDesk()
    async with console_client(fake, "service_agent", locale="en") as browser:
        page = await browser.get("/service/tickets/new?order_id=o1&lead_id=l1&kind=complaint")
    assert page.status_code == 200
    [lookup] = [c for c in fake.calls if c.url.path == "/api/v1/customers"]
    assert lookup.url.params["lead_id"] == "l1"
    assert 'name="customer_id" value="c1"' in page.text and "Dana Cohen" in page.text
    assert 'name="order_id" dir="ltr" maxlength="64" autocomplete="off" value="o1"' in page.text
    assert '<option value="complaint" selected>' in page.text


def test_the_timeline_tells_a_ticket_in_the_reader_s_language() -> None:
    from crm_console.i18n import Translator
    from crm_console.pages_customer import timeline_line

    opened = {"kind": "ticket_opened", "facts": {"number": "1042", "ticket_kind": "complaint", "subject": "שבור"}}
    resolved = {"kind": "ticket_resolved", "facts": {"number": "1042", "ticket_kind": "complaint", "sla_met": "no"}}
    answered = {"kind": "survey_answered", "facts": {"number": "1042", "score": "4"}}
    assert timeline_line(Translator("en"), opened) == "Ticket #1042 · Complaint: שבור"
    assert timeline_line(Translator("he"), resolved) == "פנייה #1042 · תלונה · באיחור"
    assert timeline_line(Translator("fa"), answered) == "درخواست #1042 · امتیاز ۴ از ۵"
    breached = {
        "kind": "ticket_sla_breached",
        "facts": {"number": "1042", "sla_metric": "first_response", "sla_met": "no"},
    }
    assert timeline_line(Translator("he"), breached) == "פנייה #1042 · מענה ראשון · באיחור"
    assert timeline_line(Translator("en"), breached) == "Ticket #1042 · First response · SLA missed"
