"""Targets vs actual through the real stack: a manager sets a target for their team and one for a
rep of it, a deal of that rep is won through the gateway, and GET /reports/targets shows the actual
(through DealClosed into reporting) to the manager and the rep, never to another team."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

from .test_golden_path import ITEMS, capture

pytestmark = pytest.mark.e2e

# ITEMS: one sofa at 4,599.00 and two pillows at 50.00.
WON_MINOR = 459_900 + 2 * 5_000


async def new_team_with_rep(api: httpx.AsyncClient) -> tuple[str, str]:
    """A team of its own and a rep in it, so no other test's deal counts for their targets."""
    suffix = uuid.uuid4().hex[:8]
    team = await api.post("/api/v1/teams", json={"id": f"team-goals-{suffix}", "name": f"צוות יעדים {suffix}"})
    assert team.status_code == 201, team.text
    rep = await api.post(
        "/api/v1/reps", json={"id": f"rep-goals-{suffix}", "name": "נועה ברק", "team_id": team.json()["id"]}
    )
    assert rep.status_code == 201, rep.text
    return team.json()["id"], rep.json()["id"]


def rows_by_subject(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["target"]["subject_kind"], r["target"]["subject_id"]): r for r in report["rows"]}


def target_body(kind: str, subject_id: str, day: str, **value: Any) -> dict[str, Any]:
    return {"subject_kind": kind, "subject_id": subject_id, "period_kind": "month", "period_start": day, **value}


async def set_targets(manager: httpx.AsyncClient, team_id: str, rep_id: str, day: str) -> tuple[str, str]:
    """The manager's team target (won amount) and their rep's (won deals) for the month of day."""
    amount = {"amount_minor": 1_000_000, "currency_code": "ILS"}
    team_target = await manager.post(
        "/api/v1/targets", json=target_body("team", team_id, day, metric="won_amount", amount=amount)
    )
    rep_target = await manager.post(
        "/api/v1/targets", json=target_body("rep", rep_id, day, metric="won_deals", count=2)
    )
    again = await manager.post("/api/v1/targets", json=target_body("rep", rep_id, day, metric="won_deals", count=3))
    other_team = await manager.post(
        "/api/v1/targets", json=target_body("team", "team-digital", day, metric="leads", count=1)
    )
    assert team_target.status_code == 201, team_target.text
    assert rep_target.status_code == 201, rep_target.text
    assert team_target.json()["period_start"] == day[:8] + "01"
    assert again.status_code == 409 and again.json()["reason"] == "TARGET_EXISTS"
    assert other_team.status_code == 403
    return team_target.json()["id"], rep_target.json()["id"]


async def win_a_deal_of(api: httpx.AsyncClient, rep_id: str, team_id: str) -> None:
    """A lead handed to the rep, converted and won through the gateway."""
    lead = await capture(api)
    assigned = await api.post(f"/api/v1/leads/{lead['id']}/assign", json={"rep_id": rep_id})
    assert assigned.status_code == 200, assigned.text
    converted = await api.post(f"/api/v1/leads/{lead['id']}/convert", json={"title": "ספה לסלון"})
    assert converted.status_code == 201, converted.text
    assert (converted.json()["owner_rep_id"], converted.json()["owner_team_id"]) == (rep_id, team_id)
    closed = await api.post(f"/api/v1/deals/{converted.json()['id']}/close", json={"outcome": "won", "items": ITEMS})
    assert closed.status_code == 200, closed.text


async def seen_by(
    stack: Stack, headers: dict[str, str], params: dict[str, str], ids: set[str]
) -> tuple[set[str], set[str]]:
    """Which of the target ids a caller sees in the report and in GET /targets."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as http:
        report = await http.get("/api/v1/reports/targets", params=params)
        listed = await http.get("/api/v1/targets", params={"page_size": 100})
    assert (report.status_code, listed.status_code) == (200, 200), report.text + listed.text
    in_report = {r["target"]["id"] for r in report.json()["rows"]}
    return in_report & ids, {t["id"] for t in listed.json()["targets"]} & ids


async def test_a_manager_sees_team_and_rep_targets_against_a_won_deal_and_another_team_sees_none(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    team_id, rep_id = await new_team_with_rep(api)
    today = datetime.now(ZoneInfo("Asia/Jerusalem")).date().isoformat()
    this_month = {"period_kind": "month", "date": today}
    manager_headers = stack.auth_headers("sales_manager", team_id=team_id)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=manager_headers) as manager:
        team_target, rep_target = await set_targets(manager, team_id, rep_id, today)
        before = (await manager.get("/api/v1/reports/targets", params=this_month)).json()
        assert {s: (r["actual_amount"], r["actual_count"]) for s, r in rows_by_subject(before).items()} == {
            ("team", team_id): ({"amount_minor": 0, "currency_code": "ILS"}, 0),
            ("rep", rep_id): (None, 0),
        }

        await win_a_deal_of(api, rep_id, team_id)

        async def counted() -> dict[str, Any] | None:
            report = (await manager.get("/api/v1/reports/targets", params=this_month)).json()
            rep_row = rows_by_subject(report).get(("rep", rep_id))
            return report if rep_row and rep_row["actual_count"] == 1 else None

        report = await eventually(counted, timeout=30)
    rows = rows_by_subject(report)
    team_row, rep_row = rows[("team", team_id)], rows[("rep", rep_id)]
    assert team_row["actual_amount"] == {"amount_minor": WON_MINOR, "currency_code": "ILS"}
    assert team_row["achieved_percent"] == pytest.approx(WON_MINOR / 1_000_000 * 100, abs=0.01)
    assert (rep_row["actual_count"], rep_row["achieved_percent"]) == (1, 50.0)
    # The run rate extrapolates over the part of the month gone by: never below the actual.
    assert team_row["projected_amount"]["amount_minor"] >= WON_MINOR and rep_row["projected_count"] >= 1
    period = report["period"]
    assert (period["kind"], period["start_date"], period["time_zone"]) == ("month", today[:8] + "01", "Asia/Jerusalem")
    assert 0 < period["elapsed_fraction"] <= 1 and period["start_time"] < period["end_time"]

    # The rep sees their own target only; another team's rep and manager see none of them.
    ids = {team_target, rep_target}
    own_rep = stack.auth_headers("sales_rep", subject=rep_id, team_id=team_id)
    other_rep = stack.auth_headers("sales_rep", subject="rep-sara", team_id="team-digital")
    other_manager = stack.auth_headers("sales_manager", team_id="team-digital")
    assert await seen_by(stack, own_rep, this_month, ids) == ({rep_target}, {rep_target})
    assert await seen_by(stack, other_rep, this_month, ids) == (set(), set())
    assert await seen_by(stack, other_manager, this_month, ids) == (set(), set())
    assert await seen_by(stack, manager_headers, this_month, ids) == (ids, ids)

    path = f"/api/v1/targets/{rep_target}"
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=other_manager) as other:
        hidden = await other.patch(path, json={"count": 9})
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=manager_headers) as manager:
        lowered = await manager.patch(path, json={"count": 1})
        wrong_value = await manager.patch(path, json={"amount": {"amount_minor": 5, "currency_code": "ILS"}})
        after = (await manager.get("/api/v1/reports/targets", params=this_month)).json()
    assert hidden.status_code == 404
    assert lowered.status_code == 200, lowered.text
    assert wrong_value.status_code == 422 and [e["field"] for e in wrong_value.json()["errors"]] == ["amount"]
    assert rows_by_subject(after)[("rep", rep_id)]["achieved_percent"] == 100.0
    audit = await api.get("/api/v1/audit-records", params={"service": "reporting", "record_id": rep_target})
    assert audit.status_code == 200, audit.text
    assert [r["action"] for r in audit.json()["audit_records"]] == ["reporting.UpdateTarget", "reporting.CreateTarget"]


async def test_a_reused_key_or_a_probed_id_reveals_nothing_of_another_team(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """Another team's manager learns nothing by reusing a key this team's target was made with, nor
    by naming this team's rep or team: the same 403 as for ones that do not exist."""
    team_id, rep_id = await new_team_with_rep(api)
    day = datetime.now(ZoneInfo("Asia/Jerusalem")).date().isoformat()
    key = {"Idempotency-Key": f"target-{uuid.uuid4()}"}
    mine = target_body("team", team_id, day, metric="leads", count=40)
    theirs = target_body("team", "team-digital", day, metric="leads", count=40)
    # Two people: the gateway's Idempotency-Key replay is per principal (subject).
    own_headers = stack.auth_headers("sales_manager", subject=f"manager-{team_id}", team_id=team_id)
    other_headers = stack.auth_headers("sales_manager", subject="manager-of-digital", team_id="team-digital")
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=own_headers) as manager,
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=other_headers) as other,
    ):
        made = await manager.post("/api/v1/targets", json=mine, headers=key)
        again = await manager.post("/api/v1/targets", json=mine, headers=key)
        reused_key = await other.post("/api/v1/targets", json=theirs, headers=key)
        reused_id = await other.post("/api/v1/targets", json={**theirs, "request_id": key["Idempotency-Key"]})
        probes = {
            name: await other.post("/api/v1/targets", json=target_body(kind, subject, day, metric="leads", count=1))
            for name, kind, subject in (
                ("rep", "rep", rep_id),
                ("no-rep", "rep", f"rep-ghost-{uuid.uuid4().hex[:8]}"),
                ("team", "team", team_id),
                ("no-team", "team", f"team-ghost-{uuid.uuid4().hex[:8]}"),
            )
        }
    assert made.status_code == 201, made.text
    assert again.status_code == 201 and again.json()["id"] == made.json()["id"]
    for reused in (reused_key, reused_id):
        assert reused.status_code == 409 and reused.json()["reason"] == "REQUEST_ID_IN_USE", reused.text
        assert made.json()["id"] not in reused.text and team_id not in reused.text
    assert {name: r.status_code for name, r in probes.items()} == dict.fromkeys(probes, 403)
    assert probes["rep"].json() == probes["no-rep"].json() and probes["team"].json() == probes["no-team"].json()
