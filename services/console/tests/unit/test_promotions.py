"""The promotion screens: their pure parts (the form read into the gateway's body, the actions a
status offers, progress, delivery rate) and their pages against a recording fake of the gateway
(what previewAudience, createPromotion and the actions are sent; what each page shows)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.datastructures import FormData

from crm_console.pages_promotions import (
    actions,
    audience_input,
    delivery_rate,
    placed_errors,
    promotion_input,
    promotion_progress,
    word_list,
)

from .conftest import CSRF, console_client, session

pytestmark = pytest.mark.unit

REQUEST_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def form(**fields: Any) -> FormData:
    items: list[tuple[str, str]] = []
    for key, value in fields.items():
        items += [(key, v) for v in value] if isinstance(value, list) else [(key, value)]
    return FormData(items)


def test_words_are_split_on_latin_and_persian_commas_and_lines() -> None:
    assert word_list(" ספה, כורסה ،مبل\nفرش ,, ") == ["ספה", "כורסה", "مبل", "فرش"]
    assert word_list("") == []


def test_the_audience_reads_days_in_the_users_zone_and_money_in_minor_units() -> None:
    audience, problems = audience_input(
        form(
            products="sofa, ספה",
            purchased_after="2025-12-06",
            min_lifetime_value="1,500.50",
            min_lifetime_value_currency="ILS",
            locales=["fa-IR", "xx-XX"],
            include_open_complaints="on",
        ),
        "he",
    )
    assert problems == {}
    assert audience["products"] == ["sofa", "ספה"] and audience["tags"] == []
    assert audience["purchased_after"] == "2025-12-05T22:00:00+00:00"  # Jerusalem's midnight
    assert "purchased_before" not in audience
    assert (audience["min_lifetime_value_minor"], audience["currency_code"]) == (150_050, "ILS")
    assert audience["locales"] == ["fa-IR"]
    assert audience["include_open_complaints"] is True and audience["include_low_satisfaction"] is False


def test_a_jalali_day_that_does_not_exist_and_a_bad_amount_are_refused_on_their_fields() -> None:
    _, problems = audience_input(
        form(
            purchased_before__jy="1404", purchased_before__jm="12", purchased_before__jd="31", min_lifetime_value="-5"
        ),
        "fa",
    )
    assert problems == {"purchased_before": "promo_bad_date", "min_lifetime_value": "promo_bad_amount"}
    audience, problems = audience_input(
        form(purchased_after__jy="1404", purchased_after__jm="9", purchased_after__jd="15"), "fa"
    )
    assert problems == {} and audience["purchased_after"] == "2025-12-05T20:30:00+00:00"  # Tehran's midnight


def test_the_promotion_sends_only_the_texts_written_and_an_email_subject_only_for_email() -> None:
    body, problems = promotion_input(
        form(
            name=" ספות ",
            channel="sms",
            text_fa_subject="ignored for an SMS",
            text_fa_body="تخفیف مبل {date} لغو۱۱",
            text_he_body="  ",
            sms_part_price="0.12",
            sms_part_price_currency="ILS",
            request_id=REQUEST_ID,
        ),
        "he",
    )
    assert problems == {}
    assert body["name"] == "ספות" and body["request_id"] == REQUEST_ID
    assert body["texts"] == [{"locale": "fa-IR", "subject": "", "body": "تخفیف مبل {date} لغو۱۱", "variant": "A"}]
    assert "test_percent" not in body  # no variant B, no test
    assert (body["sms_part_price_minor"], body["currency_code"]) == (12, "ILS")
    nothing, problems = promotion_input(form(name="x", channel="email", request_id="not-a-uuid"), "en")
    assert problems == {"texts": "promo_no_text"} and nothing["request_id"] != "not-a-uuid"


def test_the_gateways_text_errors_land_on_the_text_of_their_language() -> None:
    texts = [{"locale": "he-IL", "body": "a"}, {"locale": "fa-IR", "body": "b"}]
    placed = placed_errors(
        {
            "texts[1].body": "missing لغو۱۱",
            "texts.0.body": "too long",
            "audience.tags": "too many",
            "sms_part_price_minor": "too big",
            "request_id": "odd",
        },
        texts,
    )
    assert placed == {
        "text_fa": "missing لغو۱۱",
        "text_he": "too long",
        "tags": "too many",
        "sms_part_price": "too big",
        "": "odd",
    }


@pytest.mark.parametrize(
    ("status", "roles", "offered"),
    [
        ("draft", ("marketing",), ["schedule", "cancel"]),
        ("sending", ("marketing",), ["pause", "cancel"]),
        ("paused", ("admin",), ["resume", "cancel"]),
        ("awaiting_approval", ("marketing",), ["cancel"]),
        ("awaiting_approval", ("sales_manager",), ["approve"]),
        ("awaiting_approval", ("admin",), ["approve", "cancel"]),
        ("sending", ("sales_manager",), []),
        ("completed", ("admin",), []),
    ],
)
def test_a_status_offers_only_what_it_allows_to_the_roles_that_may(
    status: str, roles: tuple[str, ...], offered: list[str]
) -> None:
    assert actions({"status": status}, session(*roles)) == offered


def test_progress_is_indeterminate_while_the_audience_resolves_then_counts() -> None:
    assert promotion_progress({"status": "sending", "audience_resolved": False, "recipients": 900}).value is None
    running = promotion_progress({"status": "sending", "audience_resolved": True, "recipients": 10, "processed": 4})
    assert (running.value, running.maximum, running.finished) == (4, 10, False)
    done = promotion_progress({"status": "completed", "recipients": 10, "processed": 10})
    assert done.finished and done.value == done.maximum
    assert promotion_progress({"status": "paused", "recipients": 10, "processed": 3}).finished  # nothing moves
    assert delivery_rate({"delivered": 3, "undelivered": 1, "sent": 9}) == 0.75
    assert delivery_rate({"delivered": 0, "undelivered": 0}) is None


# ------------------------------------------------------------------ pages against a fake gateway

PROMOTION = {
    "id": "p1",
    "name": "מבצע ספות",
    "channel": "sms",
    "audience": {},
    "texts": [{"locale": "he-IL", "subject": "", "body": "פרסומת: ספות {date}"}],
    "status": "sending",
    "send_time": "2026-12-06T08:00:00Z",
    "recipients": 120,
    "processed": 60,
    "audience_resolved": True,
    "sms_part_price_minor": 10,
    "currency_code": "ILS",
    "created_by": "marketer-shira",
    "scheduled_by": "marketer-shira",
    "approved_by": "",
    "link_url": "",
    "test_percent": 20,
    "winner_rule": "clicks",
    "winner_wait_minutes": 240,
    "winner_variant": "B",
    "winner_time": "2026-12-06T12:00:00Z",
    "track_opens": False,
    "create_time": "2026-12-06T07:00:00Z",
    "update_time": None,
    "complete_time": None,
    "row_version": 3,
}
ROW = {
    "locale": "he-IL",
    "recipients": 120,
    "sent": 60,
    "delivered": 45,
    "undelivered": 5,
    "failed": 1,
    "suppressed": 2,
    "opted_out": 1,
    "clicked": 7,
    "opened": 0,
    "sms_parts": 60,
    "cost_minor": 600,
}
REPORT = {
    "promotion": PROMOTION,
    "total": {**ROW, "locale": ""},
    "variants": [ROW],
    "split": [{**ROW, "locale": "", "variant": "A", "clicked": 2}, {**ROW, "locale": "", "variant": "B", "clicked": 5}],
    "remaining": 60,
    "results": {
        "window_days": 30,
        "recipients": 60,
        "buyers": 2,
        "deals_won": 2,
        "revenue": [{"amount_minor": 1_200_000, "currency_code": "ILS"}],
        "revenue_per_cost": 2000.0,
        "cost_per_buyer": {"amount_minor": 300, "currency_code": "ILS"},
    },
}
DRAFT = {**PROMOTION, "id": "p2", "status": "draft", "channel": "email", "track_opens": True, "email_price_minor": 3}
DRAFT_REPORT = {
    **REPORT,
    "promotion": DRAFT,
    "total": {**ROW, "locale": "", "opened": 4},
    "variants": [{**ROW, "opened": 4}],
    "split": [],
    "results": None,
}
ESTIMATE = {
    "promotion_id": "p2",
    "channel": "email",
    "reachable": 30,
    "sms_parts": 0,
    "cost_minor": 90,
    "currency_code": "ILS",
    "locales": [
        {"locale": "he-IL", "recipients": 20, "parts_per_message": 0, "sms_parts": 0},
        {"locale": "", "recipients": 10, "parts_per_message": 0, "sms_parts": 0},
    ],
}
PREVIEW = {
    "matched": 24,
    "reachable": 4,
    "no_consent": 20,
    "no_address": 0,
    "open_complaint": 0,
    "low_satisfaction": 0,
    "sample": [{"customer_id": "c1", "full_name": "مریم کاظمی", "address": "+9891•••••733", "locale": "fa-IR"}],
}


LIST = {
    "id": "l1",
    "name": "מבקרי התערוכה",
    "members": 2,
    "lines": 4,
    "error_count": 2,
    "errors": [
        {"line_number": 4, "field": "phone_number", "message": "not a phone number"},
        {"line_number": 5, "field": "phone_number", "message": "no customer with this phone number"},
    ],
    "created_by": "marketer-shira",
    "create_time": "2026-12-06T07:00:00Z",
}


class FakeGateway:
    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.refusal: httpx.Response | None = None

    def posted(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(c.content or b"null") for c in self.calls if c.method == "POST" and c.url.path == path]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        path, method = request.url.path, request.method
        if method == "POST" and self.refusal is not None:
            return self.refusal
        answers: dict[tuple[str, str], Any] = {
            ("GET", "/api/v1/promotions"): {"promotions": [PROMOTION], "next_page_token": ""},
            ("GET", "/api/v1/promotions/p1/report"): REPORT,
            ("GET", "/api/v1/promotions/p2/report"): DRAFT_REPORT,
            ("GET", "/api/v1/promotions/p2/estimate"): ESTIMATE,
            ("POST", "/api/v1/audience-previews"): PREVIEW,
            ("POST", "/api/v1/promotions"): {**PROMOTION, "status": "draft"},
            ("GET", "/api/v1/audience-lists"): {"lists": [LIST], "next_page_token": ""},
            ("GET", "/api/v1/audience-lists/l1"): LIST,
            ("POST", "/api/v1/audience-lists"): LIST,
        }
        if (method, path) in answers:
            created = path in ("/api/v1/promotions", "/api/v1/audience-lists") and method == "POST"
            return httpx.Response(201 if created else 200, json=answers[(method, path)])
        if method == "POST" and path.startswith("/api/v1/promotions/p1/"):
            return httpx.Response(200, json=PROMOTION)
        return httpx.Response(404, json={"title": "Not Found"})


def marketer(fake: FakeGateway, locale: str = "he") -> httpx.AsyncClient:
    return console_client(fake, "marketing", locale=locale, token="tok-mkt", subject="marketer-shira")


NEW = {
    "csrf": CSRF,
    "request_id": REQUEST_ID,
    "name": "ספות",
    "channel": "sms",
    "products": "sofa",
    "text_he_body": "פרסומת: {name}, ספות במבצע. להסרה השיבו הסר",
}


async def test_a_preview_counts_the_audience_and_keeps_the_form_without_saving() -> None:
    fake = FakeGateway()
    async with marketer(fake) as client:
        blank = await client.get("/marketing/promotions/new")
        shown = await client.post("/marketing/promotions/new", data={**NEW, "action": "preview"})
    assert blank.status_code == 200 and 'name="text_fa_body"' in blank.text
    assert shown.status_code == 200
    assert '<dd data-count="matched">24</dd>' in shown.text and '<dd data-count="reachable">4</dd>' in shown.text
    assert "+9891•••••733" in shown.text and "ספות במבצע" in shown.text  # the text is kept
    assert f'name="request_id" value="{REQUEST_ID}"' in shown.text  # the same draft on "save"
    assert fake.posted("/api/v1/audience-previews") == [
        {
            "channel": "sms",
            "audience": {
                "tags": [],
                "cities": [],
                "sources": [],
                "products": ["sofa"],
                "locales": [],
                "list_id": "",
                "include_open_complaints": False,
                "include_low_satisfaction": False,
            },
        }
    ]
    assert fake.posted("/api/v1/promotions") == []


async def test_saving_creates_the_draft_once_and_opens_it() -> None:
    fake = FakeGateway()
    async with marketer(fake) as client:
        saved = await client.post("/marketing/promotions/new", data={**NEW, "action": "create"})
        empty = await client.post("/marketing/promotions/new", data={"csrf": CSRF, "name": "x", "action": "create"})
        forged = await client.post("/marketing/promotions/new", data={**NEW, "csrf": "wrong", "action": "create"})
    assert saved.status_code == 303 and saved.headers["location"] == "/marketing/promotions/p1"
    assert empty.status_code == 422 and 'id="texts-err"' in empty.text
    assert forged.status_code == 403
    sent = fake.posted("/api/v1/promotions")
    assert len(sent) == 1 and sent[0]["request_id"] == REQUEST_ID and sent[0]["texts"][0]["locale"] == "he-IL"
    assert [c.headers["authorization"] for c in fake.calls if c.method == "POST"] == ["Bearer tok-mkt"]


async def test_the_gateways_refusal_of_a_text_is_shown_on_that_text() -> None:
    fake = FakeGateway()
    fake.refusal = httpx.Response(
        422,
        json={"title": "Unprocessable", "errors": [{"field": "texts[0].body", "detail": "חסרה המילה פרסומת"}]},
    )
    async with marketer(fake) as client:
        refused = await client.post("/marketing/promotions/new", data={**NEW, "action": "create"})
    assert refused.status_code == 422
    assert 'id="text_he-err">חסרה המילה פרסומת' in refused.text
    assert "ספות במבצע" in refused.text


async def test_the_page_shows_progress_delivery_and_revenue_and_its_part_alone() -> None:
    fake = FakeGateway()
    async with marketer(fake, "fa") as client:
        listed = await client.get("/marketing/promotions")
        page = await client.get("/marketing/promotions/p1")
        part = await client.get("/marketing/promotions/p1/progress")
    assert listed.status_code == 200 and "מבצע ספות" in listed.text and "۶۰ / ۱۲۰" in listed.text
    assert page.status_code == 200 and 'data-promotion-progress="/marketing/promotions/p1/progress"' in page.text
    assert 'action="/marketing/promotions/p1/pause"' in page.text and "/schedule" not in page.text
    for html in (page.text, part.text):
        assert '<progress id="promotion-bar" aria-labelledby="progress-h" max="120" value="60">' in html
        assert '<td class="num" data-count="delivery_rate">۹۰%</td>' in html  # 45 of 50 known
        assert '<dd data-count="buyers">۲</dd>' in html and '<dd data-count="revenue_per_cost">۲٬۰۰۰</dd>' in html
        assert "data-finished" not in html
        assert '<dd data-count="cost_per_buyer">' in html and "۳٫۰۰" in html
        assert 'data-winner="B"' in html and '<tr data-variant="B"><th scope="row">B</th>' in html
    assert "<html" not in part.text


async def test_a_draft_shows_its_estimated_cost_and_a_tracked_one_its_opens() -> None:
    fake = FakeGateway()
    async with marketer(fake) as client:
        draft = await client.get("/marketing/promotions/p2")
        part = await client.get("/marketing/promotions/p2/progress")
        sending = await client.get("/marketing/promotions/p1")
    html = draft.text
    assert draft.status_code == 200 and 'class="promotion-estimate"' in html
    assert '<td class="num" data-count="reachable">30</td>' in html
    assert '<tr data-locale=""><th scope="row">ללא שפה (הנוסח הראשון)</th>' in html  # the first text's
    assert "₪" in html.split('data-count="cost"', 1)[1].split("</strong>", 1)[0]
    assert "parts_per_message" not in html  # e-mail: no SMS parts
    assert '<td class="num" data-count="opened">4</td>' in html  # tracked opens: a column of their own
    # The live part polls without the estimate (no call to customers every two seconds).
    assert "promotion-estimate" not in part.text
    assert [c.url.path for c in fake.calls].count("/api/v1/promotions/p2/estimate") == 1
    # Sending, not tracked: neither an estimate nor an opens column.
    assert "promotion-estimate" not in sending.text and 'data-count="opened"' not in sending.text


async def test_an_action_posts_to_its_operation_and_a_refusal_stays_on_the_page() -> None:
    fake = FakeGateway()
    async with marketer(fake) as client:
        paused = await client.post("/marketing/promotions/p1/pause", data={"csrf": CSRF})
        scheduled = await client.post(
            "/marketing/promotions/p1/schedule",
            data={"csrf": CSRF, "send_time": "2026-12-24T10:00", "row_version": "3"},
        )
        unknown = await client.post("/marketing/promotions/p1/delete", data={"csrf": CSRF})
        fake.refusal = httpx.Response(
            422, json={"title": "Unprocessable", "errors": [{"field": "send_time", "detail": "in the past"}]}
        )
        past = await client.post(
            "/marketing/promotions/p1/schedule", data={"csrf": CSRF, "send_time": "2020-01-01T10:00"}
        )
    assert paused.status_code == 303 and scheduled.status_code == 303
    assert fake.posted("/api/v1/promotions/p1/pause") == [None]
    assert fake.posted("/api/v1/promotions/p1/schedule")[0] == {
        "send_time": "2026-12-24T08:00:00+00:00",
        "row_version": 3,
    }
    assert unknown.status_code == 404 and not fake.posted("/api/v1/promotions/p1/delete")
    # The promotion is sending now, so its schedule field is gone: the refusal is said above.
    assert past.status_code == 422 and '<p class="notice" role="alert">in the past</p>' in past.text


async def test_a_list_upload_goes_as_csv_and_opens_its_page_with_the_lines_not_matched() -> None:
    fake = FakeGateway()
    visitors = b"phone_number\n050-1234567\n"
    async with marketer(fake) as client:
        shown = await client.get("/marketing/audience-lists")
        sent = await client.post(
            "/marketing/audience-lists",
            data={"csrf": CSRF, "name": "מבקרי התערוכה", "all_or_nothing": "on", "idempotency_key": REQUEST_ID},
            files={"file": ("visitors.csv", visitors, "text/csv")},
        )
        page = await client.get("/marketing/audience-lists/l1")
        picked = await client.get("/marketing/promotions/new", params={"list_id": "l1"})
    assert shown.status_code == 200 and 'href="/marketing/audience-lists/l1"' in shown.text
    assert sent.status_code == 303 and sent.headers["location"] == "/marketing/audience-lists/l1"
    [upload] = [c for c in fake.calls if c.method == "POST" and c.url.path == "/api/v1/audience-lists"]
    assert upload.content == visitors and upload.headers["content-type"] == "text/csv"
    assert upload.headers["idempotency-key"] == REQUEST_ID
    assert dict(upload.url.params) == {"name": "מבקרי התערוכה", "all_or_nothing": "true"}
    assert '<dd data-count="members">2</dd>' in page.text and "no customer with this phone number" in page.text
    assert 'href="/marketing/promotions/new?list_id=l1"' in page.text
    assert '<option value="l1" selected>' in picked.text


async def test_an_all_or_nothing_refusal_lists_its_lines_and_a_wrong_file_is_said_on_the_field() -> None:
    fake = FakeGateway()
    files = {"file": ("visitors.csv", b"phone_number\n12\n", "text/csv")}
    async with marketer(fake) as client:
        fake.refusal = httpx.Response(
            422, json={"title": "x", "errors": [{"field": "lines[2].phone_number", "detail": "not a phone number"}]}
        )
        lines = await client.post("/marketing/audience-lists", data={"csrf": CSRF, "name": "x"}, files=files)
        fake.refusal = httpx.Response(
            422, json={"title": "x", "errors": [{"field": "content", "detail": "the file is not UTF-8 text"}]}
        )
        encoding = await client.post("/marketing/audience-lists", data={"csrf": CSRF, "name": "x"}, files=files)
        missing = await client.post("/marketing/audience-lists", data={"csrf": CSRF, "name": "x"})
    assert lines.status_code == 422 and '<td>2</td><td><bdi dir="ltr">phone_number</bdi></td>' in lines.text
    assert encoding.status_code == 422 and 'id="file-err">the file is not UTF-8 text' in encoding.text
    assert missing.status_code == 422 and 'id="file-err"' in missing.text


def test_a_variant_b_and_a_test_share_become_the_ab_settings_and_errors_find_their_text() -> None:
    body, problems = promotion_input(
        form(
            name="x",
            channel="sms",
            text_he_body="A",
            text_b_he_body="B",
            test_percent="20",
            winner_rule="revenue",
            winner_wait_hours="۲۴",
        ),
        "he",
    )
    assert problems == {}
    assert [(t["variant"], t["locale"]) for t in body["texts"]] == [("A", "he-IL"), ("B", "he-IL")]
    assert (body["test_percent"], body["winner_rule"], body["winner_wait_minutes"]) == (20, "revenue", 1440)
    assert body["track_opens"] is False
    tracked, _ = promotion_input(form(name="x", channel="email", text_he_body="A", track_opens="on"), "he")
    assert tracked["track_opens"] is True
    waiting, _ = promotion_input(form(name="x", channel="sms", text_he_body="A", open_tickets="some"), "he")
    assert waiting["audience"]["open_tickets"] == "some" and "open_tickets" not in body["audience"]
    _, problems = promotion_input(form(name="x", channel="sms", text_he_body="A", test_percent="70"), "he")
    assert problems == {"test_percent": "promo_bad_percent"}
    placed = placed_errors({"texts[1].body": "no opt-out", "winner_wait_minutes": "too long"}, body["texts"])
    assert placed == {"text_b_he": "no opt-out", "winner_wait_hours": "too long"}
