"""Tasks and the customer page (pages_people): due today in the company's zone, and the pages
against a recording fake of the gateway; each role's menu of the people and administration screens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm_console.pages_people import due_groups

from .conftest import CSRF, as_role

pytestmark = pytest.mark.unit
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
        if path == "/api/v1/customers/c1/consents":
            states = [
                {"channel": c, "purpose": p, "granted": p == "service", "record_id": 0, "since": None}
                for c in ("sms", "email", "phone")
                for p in ("service", "marketing")
            ]
            return httpx.Response(200, json={"records": [], "states": states})
        if path == "/api/v1/customers":
            return httpx.Response(200, json={"customers": self.customers_of_lead, "next_page_token": ""})
        return httpx.Response(404, json={"title": "Not Found"})


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


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
    done = await browser.post("/tasks/a1/done", data={"csrf": CSRF})
    assert done.status_code == 303 and done.headers["location"] == "/tasks"
    assert fake.completed == ["a1"]


async def test_the_customer_page_shows_the_timeline_with_a_next_link(browser: httpx.AsyncClient) -> None:
    as_role(browser, "sales_rep", locale="fa")
    page = await browser.get("/customers/c1")
    assert page.status_code == 200
    assert '<bdi dir="ltr">+972501234567</bdi>' in page.text
    assert "سرنخ ثبت شد" in page.text and "وب‌سایت" in page.text  # kind and channel in Persian
    assert "Lead captured from website" in page.text
    # The entry's moment: Jalali text with Persian digits, ISO for machines and the Hebrew calendar.
    assert '<time datetime="2026-12-06T11:30:00+03:30" dir="rtl">۱۵ آذر ۱۴۰۵، ۱۱:۳۰</time>' in page.text
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


async def test_an_admin_gets_the_tasks_and_every_administration_screen(browser: httpx.AsyncClient) -> None:
    as_role(browser, "admin")
    page = await browser.get("/tasks")
    assert menu_of(page.text) == {"/tasks", "/admin/teams", "/admin/audit"}


async def test_a_manager_gets_teams_but_not_the_audit_log(browser: httpx.AsyncClient) -> None:
    as_role(browser, "sales_manager")
    page = await browser.get("/tasks")
    assert menu_of(page.text) == {"/tasks", "/admin/teams"}
    assert '<bdi dir="ltr">rep-dana</bdi>' in page.text  # a manager sees whose task it is
