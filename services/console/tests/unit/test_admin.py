"""The administrator's screens (pages_admin): the pure helpers (audit and dead-letter filters,
shortened errors, paging links), the audit log, and the dead letters with their replay form
against a recording fake of the gateway (a replay once, then 409)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from crm_console import api
from crm_console.pages_admin import BACKEND_SERVICES, audit_query, dead_letter_query, short_error
from crm_console.web import next_href

from .conftest import CSRF, as_role

pytestmark = pytest.mark.unit
LONG_ERROR = "DecodeError: Error parsing message with type 'crm.sales.v1.DealClosed'" + " x" * 60 + "\nTraceback"


def test_the_filters_keep_a_known_service_a_trimmed_consumer_and_open_only() -> None:
    assert dead_letter_query({"service": "orders", "consumer": " orders-deal-closed ", "open_only": "1"}) == {
        "service": "orders",
        "consumer": "orders-deal-closed",
        "open_only": "1",
    }
    assert dead_letter_query({"service": "billing", "consumer": "", "page_token": "t"}) == {"service": "leads"}
    assert dead_letter_query({"consumer": "c" * 150})["consumer"] == "c" * 100


def test_an_error_is_cut_to_its_first_line_and_a_short_one_is_left_whole() -> None:
    assert short_error("boom") == ""
    assert short_error("boom\nTraceback (most recent call last)") == "boom …"
    cut = short_error(LONG_ERROR, limit=40)
    assert len(cut) == 40 and cut.endswith("…") and LONG_ERROR.startswith(cut[:-1])


def test_the_audit_filters_are_trimmed_and_the_service_is_always_a_known_one() -> None:
    assert audit_query({"service": "orders", "record_id": " o1 ", "actor": "", "other": "x"}) == {
        "service": "orders",
        "record_id": "o1",
    }
    assert audit_query({"service": "nope"}) == {"service": "leads"}
    assert audit_query({}) == {"service": "leads"}
    href = next_href("/admin/audit", {"service": "orders", "actor": "rep dana"}, "tok/1=")
    assert parse_qs(urlsplit(href).query) == {"service": ["orders"], "actor": ["rep dana"], "page_token": ["tok/1="]}


@pytest.mark.parametrize("path", ["/api/v1/audit-records", "/api/v1/dead-letters"])
def test_the_services_are_the_gateways(path: str) -> None:
    spec = json.loads(api.SPEC_PATH.read_text())
    params = spec["paths"][path]["get"]["parameters"]
    service = next(p for p in params if p["name"] == "service")
    assert tuple(service["schema"]["enum"]) == BACKEND_SERVICES


def letter(letter_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": letter_id,
        "consumer": "orders-deal-closed",
        "subject": "crm.sales.deal_closed",
        "event_id": f"ev-{letter_id}",
        "event_type": "crm.sales.v1.DealClosed",
        "headers": {},
        "payload": "",
        "payload_size": 0,
        "error": "boom",
        "deliveries": 1,
        "create_time": "2026-12-06T08:00:00Z",
        "replay_time": None,
        **fields,
    }


class FakeGateway:
    """One audit record; two orders letters (7 open with a long error, 6 replayed); 7 replays
    once, then 409."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.replayed: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        path = request.url.path
        if path == "/api/v1/audit-records":
            record = {
                "id": 7,
                "actor": "rep-dana",
                "action": "lead.assigned",
                "record_type": "lead",
                "record_id": "lead-1",
                "create_time": "2026-12-06T08:00:00Z",
                "request_id": "req-1",
                "details_json": '{"rep_id": "rep-dana"}',
            }
            return httpx.Response(200, json={"audit_records": [record], "next_page_token": "k2"})
        if path == "/api/v1/dead-letters":
            letters = [letter(7, error=LONG_ERROR), letter(6, replay_time="2026-12-06T09:00:00Z")]
            return httpx.Response(200, json={"dead_letters": letters, "next_page_token": "n2"})
        if path.startswith("/api/v1/dead-letters/") and path.endswith("/replay"):
            if path in self.replayed:
                problem = {"title": "Conflict", "status": 409, "detail": "dead letter 7 was already replayed"}
                return httpx.Response(409, json=problem, headers={"content-type": "application/problem+json"})
            self.replayed.append(path)
            return httpx.Response(200, json=letter(7, replay_time="2026-12-06T10:00:00Z"))
        return httpx.Response(404, json={"title": "Not Found"})


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


def admin_menu(html: str) -> list[str]:
    """The administration menu's entries, in the order shown."""
    return re.findall(r'<a href="(/admin/[^"?]*)"', html)


async def test_an_admin_reads_the_filtered_audit_log_with_a_next_link(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "admin")
    audit = await browser.get("/admin/audit", params={"service": "leads", "actor": "rep-dana", "record_id": ""})
    assert audit.status_code == 200 and "lead.assigned" in audit.text
    sent = [c for c in fake.calls if c.url.path == "/api/v1/audit-records"][-1]
    assert dict(sent.url.params) == {"service": "leads", "actor": "rep-dana", "page_size": "50"}
    assert 'href="/admin/audit?service=leads&amp;actor=rep-dana&amp;page_token=k2"' in audit.text
    # The administrator's menu: teams first, then the audit log and dead letters (pages_org and
    # pages_admin register them in the other order).
    assert admin_menu(audit.text)[:3] == ["/admin/teams", "/admin/audit", "/admin/dead-letters"]


async def test_an_admin_sees_the_services_letters_with_replay_on_open_ones(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "admin")
    page = await browser.get("/admin/dead-letters", params={"service": "orders", "consumer": "orders-deal-closed"})

    assert page.status_code == 200
    assert 'href="/admin/dead-letters"' in page.text  # in the admin's menu
    sent = fake.calls[-1]
    assert dict(sent.url.params) == {
        "service": "orders",
        "consumer": "orders-deal-closed",
        "include_replayed": "true",
        "page_size": "50",
    }
    assert page.text.count('action="/admin/dead-letters/orders/7/replay"') == 1
    assert 'action="/admin/dead-letters/orders/6/replay"' not in page.text  # replayed already
    assert "<details>" in page.text and "Traceback" in page.text  # the whole error, folded
    assert "crm.sales.v1.DealClosed" in page.text and "עדיין לא" in page.text
    assert 'href="/admin/dead-letters?service=orders&amp;consumer=orders-deal-closed&amp;page_token=n2"' in page.text


async def test_open_only_asks_for_unreplayed_letters(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "admin", locale="fa")
    page = await browser.get("/admin/dead-letters", params={"service": "orders", "open_only": "1"})

    assert page.status_code == 200 and "رویدادهای شکست‌خورده" in page.text
    assert fake.calls[-1].url.params["include_replayed"] == "false"


async def test_replay_goes_back_to_the_list_with_a_notice_and_a_second_one_says_why_not(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "admin")
    form = {"csrf": CSRF, "consumer": "orders-deal-closed", "page_token": "p1"}

    refused = await browser.post("/admin/dead-letters/orders/7/replay", data={**form, "csrf": "wrong"})
    assert refused.status_code == 403 and fake.replayed == []

    done = await browser.post("/admin/dead-letters/orders/7/replay", data=form)
    assert done.status_code == 303 and fake.replayed == ["/api/v1/dead-letters/orders/7/replay"]
    assert parse_qs(urlsplit(done.headers["location"]).query) == {
        "service": ["orders"],
        "consumer": ["orders-deal-closed"],
        "page_token": ["p1"],
        "notice": ["dl_replayed_notice"],
    }
    shown = await browser.get(done.headers["location"])
    assert "האירוע נשלח מחדש לצרכן שלו." in shown.text

    again = await browser.post("/admin/dead-letters/orders/7/replay", data=form)
    assert again.status_code == 409
    assert "האירוע הזה כבר נשלח מחדש" in again.text and 'role="alert"' in again.text


async def test_an_unknown_notice_or_service_is_never_used(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "admin")
    page = await browser.get("/admin/dead-letters", params={"notice": "<script>x</script>"})
    assert page.status_code == 200 and "<script>x" not in page.text
    assert fake.calls[-1].url.params["service"] == "leads"

    unknown = await browser.post("/admin/dead-letters/billing/7/replay", data={"csrf": CSRF})
    assert unknown.status_code == 404 and fake.replayed == []


async def test_a_manager_has_no_dead_letters_in_the_menu(browser: httpx.AsyncClient) -> None:
    as_role(browser, "sales_manager")
    page = await browser.get("/tasks")
    assert 'href="/admin/dead-letters"' not in page.text
