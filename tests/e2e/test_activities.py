"""Activities end to end: a rep logs calls, notes and tasks on their lead through the gateway; the
first response stops the speed-to-lead clock (and is measured), the customer's timeline shows who
did what, reminders go out, and nobody else sees or touches any of it."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as client:
        yield client


async def captured_lead(admin: httpx.AsyncClient, source: str = "radio") -> dict[str, Any]:
    phone = f"054-{uuid.uuid4().int % 10_000_000:07d}"
    body = {"full_name": "מרים אזולאי", "phone_number": phone, "source": source, "locale": "he-IL"}
    response = await admin.post("/api/v1/leads", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def owner_client(stack: Stack, lead: dict[str, Any]) -> httpx.AsyncClient:
    owner = lead["assignment"]
    headers = stack.auth_headers("sales_rep", subject=owner["rep_id"], team_id=owner["team_id"])
    return httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers)


async def first_responses(stack: Stack, source: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{stack.ports.metrics('leads')}/metrics")).text
    match = re.search(rf'^crm_lead_first_response_seconds_count{{source="{source}"}} (\S+)$', text, re.MULTILINE)
    assert match, "crm_lead_first_response_seconds is not exported"
    return float(match.group(1))


async def test_the_first_call_stops_the_clock_and_lands_on_the_customers_timeline(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    lead = await captured_lead(admin, source="referral")
    rep = lead["assignment"]["rep_id"]
    rep_name = lead["assignment"]["rep_name"]
    before = await first_responses(stack, "referral")
    async with owner_client(stack, lead) as mine:
        note = await mine.post(f"/api/v1/leads/{lead['id']}/activities", json={"kind": "note", "body": "ביקשה מחיר"})
        call = await mine.post(
            f"/api/v1/leads/{lead['id']}/activities",
            json={"kind": "call", "outcome": "no_answer", "duration_seconds": 20, "body": "לנסות שוב בערב"},
        )
        again = await mine.post(
            f"/api/v1/leads/{lead['id']}/activities", json={"kind": "call", "outcome": "answered", "subject": "דיברנו"}
        )
        stopped = (await mine.get(f"/api/v1/leads/{lead['id']}")).json()
        listed = (await mine.get(f"/api/v1/leads/{lead['id']}/activities")).json()

    assert (note.status_code, call.status_code, again.status_code) == (201, 201, 201), call.text
    assert not note.json()["first_response"] and not again.json()["first_response"]
    assert call.json()["first_response"] and call.json()["actor"] == rep
    assert call.json()["outcome"] == "no_answer" and call.json()["duration_seconds"] == 20
    assert stopped["first_response_time"] == call.json()["occur_time"]
    assert [a["id"] for a in listed["activities"]] == [again.json()["id"], call.json()["id"], note.json()["id"]]
    assert await first_responses(stack, "referral") == before + 1

    async def timeline() -> list[dict[str, Any]] | None:
        found = (await admin.get("/api/v1/customers", params={"lead_id": lead["id"]})).json()["customers"]
        if not found:
            return None
        entries = (await admin.get(f"/api/v1/customers/{found[0]['id']}/timeline")).json()["entries"]
        return entries if len(entries) >= 4 else None

    summaries = [e["summary"] for e in await eventually(timeline, timeout=30)]
    assert f"Call — no answer (20 s) by {rep_name}: לנסות שוב בערב" in summaries
    assert f"Note by {rep_name}: ביקשה מחיר" in summaries


async def test_bad_input_is_422_naming_every_field(stack: Stack, admin: httpx.AsyncClient) -> None:
    lead = await captured_lead(admin)
    url = f"/api/v1/leads/{lead['id']}/activities"
    future = iso(datetime.now(UTC) + timedelta(hours=2))
    async with owner_client(stack, lead) as mine:
        unknown_kind = await mine.post(url, json={"kind": "fax", "body": "x"})
        wrong_fields = await mine.post(
            url, json={"kind": "note", "body": "x", "outcome": "busy", "due_time": future, "occur_time": future}
        )
        task_without_due = await mine.post(url, json={"kind": "task"})
        listed = (await mine.get(url)).json()

    def fields(response: httpx.Response) -> set[str]:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        return {e["field"] for e in response.json()["errors"]}

    assert fields(unknown_kind) == {"kind"}
    assert fields(wrong_fields) == {"outcome", "due_time", "occur_time"}
    assert fields(task_without_due) == {"subject", "due_time"}
    assert listed["activities"] == []


async def test_tasks_are_listed_by_due_time_reminded_and_completed_once(stack: Stack, admin: httpx.AsyncClient) -> None:
    lead = await captured_lead(admin)
    now = datetime.now(UTC)
    async with owner_client(stack, lead) as mine:
        url = f"/api/v1/leads/{lead['id']}/activities"
        later = await mine.post(url, json={"kind": "task", "subject": "הצעה", "due_time": iso(now + timedelta(days=1))})
        overdue = await mine.post(
            url,
            json={
                "kind": "task",
                "subject": "להתקשר",
                "due_time": iso(now - timedelta(minutes=5)),
                "remind_time": iso(now - timedelta(minutes=10)),
            },
        )
        assert later.status_code == overdue.status_code == 201, overdue.text
        tasks = (await mine.get("/api/v1/tasks", params={"page_size": 100})).json()["tasks"]
        ours = [t["id"] for t in tasks if t["lead_id"] == lead["id"]]
        assert ours == [overdue.json()["id"], later.json()["id"]]
        assert {t["rep_id"] for t in tasks} == {lead["assignment"]["rep_id"]}

        async def reminded() -> bool:
            listed = (await mine.get(url)).json()["activities"]
            return any(a["id"] == overdue.json()["id"] and a["remind_sent_time"] for a in listed)

        await eventually(reminded, timeout=30)

        done = await mine.post(f"/api/v1/activities/{overdue.json()['id']}/complete")
        twice = await mine.post(f"/api/v1/activities/{overdue.json()['id']}/complete")
        still_open = (await mine.get("/api/v1/tasks", params={"page_size": 100})).json()["tasks"]
    assert done.status_code == 200 and done.json()["complete_time"], done.text
    assert twice.status_code == 409 and twice.headers["content-type"] == "application/problem+json"
    assert [t["id"] for t in still_open if t["lead_id"] == lead["id"]] == [later.json()["id"]]


async def test_someone_elses_activities_and_tasks_are_hidden(stack: Stack, admin: httpx.AsyncClient) -> None:
    lead = await captured_lead(admin)
    task = await admin.post(
        f"/api/v1/leads/{lead['id']}/activities",
        json={"kind": "task", "subject": "x", "due_time": iso(datetime.now(UTC) + timedelta(days=1))},
    )
    assert task.status_code == 201, task.text
    assert task.json()["actor"] != lead["assignment"]["rep_id"]  # logged by an admin, on the rep's list
    stranger = stack.auth_headers("sales_rep", subject="rep-stranger", team_id="team-nowhere")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stranger) as other:
        listed = await other.get(f"/api/v1/leads/{lead['id']}/activities")
        logged = await other.post(f"/api/v1/leads/{lead['id']}/activities", json={"kind": "note", "body": "x"})
        completed = await other.post(f"/api/v1/activities/{task.json()['id']}/complete")
        their_tasks = (await other.get("/api/v1/tasks")).json()["tasks"]
        someone_elses = await other.get("/api/v1/tasks", params={"rep_id": lead["assignment"]["rep_id"]})
    assert (listed.status_code, logged.status_code, completed.status_code) == (404, 404, 404)
    assert their_tasks == [] and someone_elses.status_code == 403
    async with owner_client(stack, lead) as mine:
        assert task.json()["id"] in {t["id"] for t in (await mine.get("/api/v1/tasks")).json()["tasks"]}


async def test_deal_activities_belong_to_the_deal_and_its_lead(stack: Stack, admin: httpx.AsyncClient) -> None:
    lead = await captured_lead(admin)
    deal = (await admin.post(f"/api/v1/leads/{lead['id']}/convert", json={"title": "שולחן"})).json()
    key, now = f"meet-{uuid.uuid4()}", datetime.now(UTC) - timedelta(hours=2)
    async with owner_client(stack, lead) as mine:
        meeting = await mine.post(
            f"/api/v1/deals/{deal['id']}/activities",
            json={
                "kind": "meeting",
                "subject": "פגישה באולם התצוגה",
                "start_time": iso(datetime.now(UTC) - timedelta(hours=1)),
                "end_time": iso(datetime.now(UTC) - timedelta(minutes=15)),
            },
            headers={"Idempotency-Key": key},
        )
        # The same key again, without the gateway's (per-replica) replay: the leads service's
        # request_id dedup answers with the first activity.
        repeated = await mine.post(
            f"/api/v1/deals/{deal['id']}/activities",
            json={
                "kind": "meeting",
                "request_id": key,
                "start_time": iso(now),
                "end_time": iso(now + timedelta(hours=1)),
            },
        )
        on_deal = (await mine.get(f"/api/v1/deals/{deal['id']}/activities")).json()["activities"]
        on_lead = (await mine.get(f"/api/v1/leads/{lead['id']}/activities")).json()["activities"]
    assert meeting.status_code == 201, meeting.text
    assert meeting.json()["id"] == repeated.json()["id"]
    assert (meeting.json()["deal_id"], meeting.json()["lead_id"]) == (deal["id"], lead["id"])
    assert meeting.json()["first_response"]
    assert [a["id"] for a in on_deal] == [a["id"] for a in on_lead] == [meeting.json()["id"]]
