"""Tasks, the customer page and the administration screens: the pure helpers (due today in the
company's zone, reps grouped by team, audit filters and paging links), and the pages against a
recording fake of the gateway."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm_console import api
from crm_console.app import create_app
from crm_console.pages_people import AUDIT_SERVICES, audit_query, due_groups, next_href, reps_by_team
from crm_console.session import LOCALE_COOKIE, SESSION_COOKIE, Sealer, Session
from crm_console.settings import ConsoleSettings

pytestmark = pytest.mark.unit
KEY = base64.b64encode(os.urandom(32)).decode()
JERUSALEM = ZoneInfo("Asia/Jerusalem")
TEHRAN = ZoneInfo("Asia/Tehran")


def task(task_id: str, due: str | None) -> dict[str, Any]:
    return {"id": task_id, "subject": f"task {task_id}", "due_time": due, "lead_id": "lead-1", "deal_id": ""}


def test_overdue_then_due_today_then_later_in_the_company_zone() -> None:
    # 21:30 UTC on 5 Dec is 23:30 in Jerusalem (still the 5th) and 01:00 on the 6th in Tehran.
    now = datetime(2026, 12, 5, 21, 30, tzinfo=UTC)
    tasks = [
        task("later", "2026-12-07T09:00:00Z"),
        task("tonight", "2026-12-05T21:50:00Z"),  # 23:50 in Jerusalem: today there
        task("late", "2026-12-05T08:00:00Z"),
        task("no-due", None),
        task("after-midnight", "2026-12-05T22:30:00+00:00"),  # 00:30 on the 6th in Jerusalem
        task("oldest", "2026-12-01T08:00:00Z"),
    ]
    israel = {key: [t["id"] for t in found] for key, found in due_groups(tasks, now, JERUSALEM)}
    assert israel == {
        "tasks_overdue": ["oldest", "late"],
        "tasks_today": ["tonight"],
        "tasks_later": ["after-midnight", "later", "no-due"],
    }
    # In Tehran it is already the 6th: both tasks of tonight in UTC (01:20 and 02:00 there) are today's.
    iran = {key: [t["id"] for t in found] for key, found in due_groups(tasks, now, TEHRAN)}
    assert iran["tasks_today"] == ["tonight", "after-midnight"]
    assert iran["tasks_later"] == ["later", "no-due"]


def test_reps_are_grouped_under_their_team_and_strays_last() -> None:
    teams = [{"id": "t1", "name": "North"}, {"id": "t2", "name": "South"}]
    reps = [
        {"id": "r2", "name": "Yossi", "team_id": "t1"},
        {"id": "r1", "name": "Dana", "team_id": "t1"},
        {"id": "r3", "name": "Omid", "team_id": "t9"},
    ]
    grouped = [(team["id"], [r["id"] for r in found]) for team, found in reps_by_team(teams, reps)]
    assert grouped == [("t1", ["r1", "r2"]), ("t2", []), ("", ["r3"])]
    assert [team["id"] for team, _ in reps_by_team(teams, reps[:2])] == ["t1", "t2"]


def test_audit_filters_are_trimmed_and_the_service_is_always_a_known_one() -> None:
    assert audit_query({"service": "orders", "record_id": " o1 ", "actor": "", "other": "x"}) == {
        "service": "orders",
        "record_id": "o1",
    }
    assert audit_query({"service": "nope"}) == {"service": "leads"}
    assert audit_query({}) == {"service": "leads"}
    href = next_href("/admin/audit", {"service": "orders", "actor": "rep dana"}, "tok/1=")
    assert parse_qs(urlsplit(href).query) == {"service": ["orders"], "actor": ["rep dana"], "page_token": ["tok/1="]}


def test_the_audit_services_are_the_gateways() -> None:
    spec = json.loads(api.SPEC_PATH.read_text())
    params = spec["paths"]["/api/v1/audit-records"]["get"]["parameters"]
    service = next(p for p in params if p["name"] == "service")
    assert tuple(service["schema"]["enum"]) == AUDIT_SERVICES


# ------------------------------------------------------------------ the pages against a fake gateway


class FakeGateway:
    """The gateway's answers for these pages; records every request."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.customers_of_lead: list[dict[str, Any]] = []
        self.completed: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        path = request.url.path
        now = datetime.now(UTC)
        if path == "/api/v1/tasks":
            overdue = task("a1", "2020-01-01T08:00:00Z") | {"rep_id": "rep-dana"}
            later = task("a2", now.replace(year=now.year + 1).isoformat()) | {"rep_id": "rep-dana"}
            return httpx.Response(200, json={"tasks": [overdue, later], "next_page_token": "p2"})
        if path.startswith("/api/v1/activities/") and path.endswith("/complete"):
            self.completed.append(path.split("/")[4])
            return httpx.Response(200, json={"id": path.split("/")[4]})
        if path == "/api/v1/customers/c1":
            return httpx.Response(
                200,
                json={
                    "id": "c1",
                    "full_name": "דנה כהן",
                    "phone_number": "+972501234567",
                    "email": "dana@example.com",
                    "locale": "he-IL",
                    "lead_ids": ["lead-1"],
                    "create_time": "2026-12-06T08:00:00Z",
                },
            )
        if path == "/api/v1/customers/c1/timeline":
            entry = {
                "id": "e1",
                "kind": "lead_captured",
                "summary": "Lead captured from website",
                "channel": "web",
                "event_id": "ev1",
                "occur_time": "2026-12-06T08:00:00Z",
            }
            return httpx.Response(200, json={"entries": [entry], "next_page_token": "t2"})
        if path == "/api/v1/customers":
            return httpx.Response(200, json={"customers": self.customers_of_lead, "next_page_token": ""})
        if path == "/api/v1/teams":
            team = {"id": "t1", "name": "צפון", "manager_id": "mgr-1", "active": True, "active_reps": 1}
            return httpx.Response(200, json={"teams": [team], "next_page_token": ""})
        if path == "/api/v1/reps":
            rep = {
                "id": "rep-dana",
                "name": "Dana",
                "team_id": "t1",
                "active": True,
                "away": True,
                "available": False,
                "unavailable_reason": "away",
                "capacity": None,
                "territories": ["IL-TA"],
                "product_lines": ["tv"],
                "open_leads": 3,
            }
            return httpx.Response(200, json={"reps": [rep]})
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
        return httpx.Response(404, json={"title": "Not Found"})


def signed_in(*roles: str) -> str:
    session = Session(
        token="tok", subject="someone", name="someone", roles=roles, expires_at=time.time() + 60, csrf="c" * 32
    )
    return Sealer(KEY).seal_session(session)


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
async def browser(fake: FakeGateway) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ConsoleSettings(session_key=KEY), transport=httpx.MockTransport(fake))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost:8081") as client:
        yield client


def as_role(browser: httpx.AsyncClient, *roles: str, locale: str = "he") -> None:
    browser.cookies.set(SESSION_COOKIE, signed_in(*roles))
    browser.cookies.set(LOCALE_COOKIE, locale)


def menu_of(html: str) -> set[str]:
    return {href for href in ("/tasks", "/admin/teams", "/admin/audit") if f'<a href="{href}"' in html}


async def test_tasks_page_shows_overdue_first_and_done_completes_the_task(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "sales_rep")
    page = await browser.get("/tasks")
    assert page.status_code == 200
    assert page.text.index("task a1") < page.text.index("task a2")
    assert 'id="tasks_overdue-h"' in page.text and 'id="tasks_later-h"' in page.text
    assert 'id="tasks_today-h"' not in page.text  # an empty group is not shown
    assert 'href="/tasks?page_token=p2"' in page.text
    assert menu_of(page.text) == {"/tasks"}  # a rep gets no administration screens
    refused = await browser.post("/tasks/a1/done", data={"csrf": "wrong"})
    assert refused.status_code == 403 and fake.completed == []
    done = await browser.post("/tasks/a1/done", data={"csrf": "c" * 32})
    assert done.status_code == 303 and done.headers["location"] == "/tasks"
    assert fake.completed == ["a1"]


async def test_the_customer_page_shows_the_timeline_with_a_next_link(browser: httpx.AsyncClient) -> None:
    as_role(browser, "sales_rep", locale="fa")
    page = await browser.get("/customers/c1")
    assert page.status_code == 200
    assert '<bdi dir="ltr">+972501234567</bdi>' in page.text
    assert "سرنخ ثبت شد" in page.text and "وب‌سایت" in page.text  # kind and channel in Persian
    assert "Lead captured from website" in page.text
    assert 'href="/customers/c1?page_token=t2"' in page.text
    assert 'href="/leads/lead-1"' in page.text


async def test_a_leads_customer_redirects_once_made_and_says_so_before(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "sales_rep")
    pending = await browser.get("/leads/lead-1/customer")
    assert pending.status_code == 404 and "כרטיס הלקוח נוצר" in pending.text
    fake.customers_of_lead = [{"id": "c1"}]
    found = await browser.get("/leads/lead-1/customer")
    assert found.status_code == 303 and found.headers["location"] == "/customers/c1"
    asked = [c for c in fake.calls if c.url.path == "/api/v1/customers"][-1]
    assert asked.url.params["lead_id"] == "lead-1"


async def test_admin_sees_teams_with_reps_and_the_filtered_audit_log(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "admin")
    teams = await browser.get("/admin/teams")
    assert teams.status_code == 200
    assert "צפון" in teams.text and '<bdi dir="ltr" class="tag">IL-TA</bdi>' in teams.text
    assert "ללא הגבלה" in teams.text  # no capacity limit
    assert menu_of(teams.text) == {"/tasks", "/admin/teams", "/admin/audit"}
    audit = await browser.get("/admin/audit", params={"service": "leads", "actor": "rep-dana", "record_id": ""})
    assert audit.status_code == 200 and "lead.assigned" in audit.text
    sent = [c for c in fake.calls if c.url.path == "/api/v1/audit-records"][-1]
    assert dict(sent.url.params) == {"service": "leads", "actor": "rep-dana", "page_size": "50"}
    assert 'href="/admin/audit?service=leads&amp;actor=rep-dana&amp;page_token=k2"' in audit.text


async def test_a_manager_gets_teams_but_not_the_audit_log(browser: httpx.AsyncClient) -> None:
    as_role(browser, "sales_manager")
    page = await browser.get("/tasks")
    assert menu_of(page.text) == {"/tasks", "/admin/teams"}
    assert '<bdi dir="ltr">rep-dana</bdi>' in page.text  # a manager sees whose task it is
