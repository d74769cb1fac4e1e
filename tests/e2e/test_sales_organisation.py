"""The sales organisation through the gateway, against the running system: an admin creates a team
and a rep, a routing rule sends a product line there and the next captured lead goes to the new
rep; the team's manager and the rep see what they should; once the rep is deactivated the next
lead goes elsewhere while the first stays theirs; a team is deactivated only once nothing gives it
work. Every change is in leads' audit log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
async def seeded_rules(api: httpx.AsyncClient) -> AsyncIterator[list[dict[str, Any]]]:
    """The current rule set (as PUT bodies); put back afterwards, whatever the test did."""
    current = (await api.get("/api/v1/routing-rules")).json()["rules"]
    yield current
    restored = await api.put("/api/v1/routing-rules", json={"rules": current})
    assert restored.status_code == 200, restored.text


def client(stack: Stack, role: str, **kw: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers(role, **kw))


async def capture(api: httpx.AsyncClient, line: str) -> dict[str, Any]:
    phone = f"054-{uuid.uuid4().int % 10_000_000:07d}"
    body = {"full_name": "רונית שלום", "phone_number": phone, "source": "radio", "product_line": line}
    response = await api.post("/api/v1/leads", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_team_and_rep_made_through_the_api_take_leads_until_deactivated(
    stack: Stack, api: httpx.AsyncClient, seeded_rules: list[dict[str, Any]]
) -> None:
    suffix = uuid.uuid4().hex[:8]
    team_id, rep_id, manager, line = f"team-{suffix}", f"rep-{suffix}", f"manager-{suffix}", f"org-{suffix}"

    team = await api.post("/api/v1/teams", json={"id": team_id, "name": f"צוות {suffix}", "manager_id": manager})
    rep = await api.post(
        "/api/v1/reps",
        json={"id": rep_id, "name": "ليلا کریمی", "team_id": team_id, "product_lines": [line], "capacity": 20},
    )
    assert (team.status_code, rep.status_code) == (201, 201), team.text + rep.text
    assert (rep.json()["team_id"], rep.json()["available"], rep.headers["etag"]) == (team_id, True, '"1"')
    rule = {"name": f"e2e {suffix}", "priority": -3, "product_lines": [line], "team_id": team_id}
    replaced = await api.put("/api/v1/routing-rules", json={"rules": [rule, *seeded_rules]})
    assert replaced.status_code == 200, replaced.text

    first = await capture(api, line)
    assert (first["assignment"]["rep_id"], first["assignment"]["team_id"]) == (rep_id, team_id)

    await the_manager_and_the_rep_see_their_own(stack, team_id, rep_id, manager)

    # A team with an active rep stays active: 409 naming the rule.
    refused = await api.patch(f"/api/v1/teams/{team_id}", json={"active": False}, headers={"If-Match": "*"})
    assert (refused.status_code, refused.json()["reason"]) == (409, "TEAM_HAS_ACTIVE_REPS")
    assert refused.headers["content-type"] == "application/problem+json"

    stale = await api.patch(f"/api/v1/reps/{rep_id}", json={"active": False}, headers={"If-Match": '"0"'})
    deactivated = await api.patch(
        f"/api/v1/reps/{rep_id}", json={"active": False}, headers={"If-Match": rep.headers["etag"]}
    )
    assert stale.status_code == 412, stale.text
    assert deactivated.status_code == 200, deactivated.text
    assert (deactivated.json()["active"], deactivated.json()["unavailable_reason"]) == (False, "inactive")

    second = await capture(api, line)
    assert second["assignment"]["rep_id"] != rep_id
    routing = (await api.get(f"/api/v1/leads/{second['id']}/routing")).json()
    [tried] = [r for r in routing["routing_explanation"]["rules"] if r["team_id"] == team_id]
    assert [(c["rep_id"], c["skip_reason"]) for c in tried["candidates"]] == [(rep_id, "inactive")]

    # The first lead stays with the rep, in the team: their manager and they still see it.
    async with client(stack, "sales_manager", subject=manager, team_id=team_id) as boss:
        team_leads = (await boss.get("/api/v1/leads", params={"page_size": 100})).json()["leads"]
    async with client(stack, "sales_rep", subject=rep_id, team_id=team_id) as me:
        kept = await me.get(f"/api/v1/leads/{first['id']}")
    assert first["id"] in {lead["id"] for lead in team_leads}
    assert (kept.status_code, kept.json()["assignment"]["rep_id"]) == (200, rep_id)

    await the_team_closes_once_nothing_gives_it_work(api, team_id, seeded_rules)

    audit = await api.get("/api/v1/audit-records", params={"service": "leads", "record_id": rep_id})
    actions = [(r["action"], r["actor"]) for r in audit.json()["audit_records"]]
    assert actions == [("leads.UpdateRep", "admin-avi"), ("leads.CreateRep", "admin-avi")]


async def the_manager_and_the_rep_see_their_own(stack: Stack, team_id: str, rep_id: str, manager: str) -> None:
    """The team's manager reads their team and its reps (not another team) but does not deactivate
    anyone; the rep sees themselves with their lead and does not move themselves."""
    async with client(stack, "sales_manager", subject=manager, team_id=team_id) as boss:
        own_team = await boss.get(f"/api/v1/teams/{team_id}")
        other_team = await boss.get("/api/v1/teams/team-media")
        team_reps = (await boss.get("/api/v1/reps")).json()["reps"]
        not_theirs = await boss.patch(f"/api/v1/reps/{rep_id}", json={"active": False})
    async with client(stack, "sales_rep", subject=rep_id, team_id=team_id) as me:
        myself = (await me.get("/api/v1/reps")).json()["reps"]
        moved_myself = await me.patch(f"/api/v1/reps/{rep_id}", json={"team_id": "team-media"})
    assert (own_team.status_code, own_team.json()["active_reps"]) == (200, 1)
    assert other_team.status_code == 404
    assert [r["id"] for r in team_reps] == [rep_id]
    assert (not_theirs.status_code, moved_myself.status_code) == (403, 403)
    assert [(r["id"], r["open_leads"]) for r in myself] == [(rep_id, 1)]


async def the_team_closes_once_nothing_gives_it_work(
    api: httpx.AsyncClient, team_id: str, seeded_rules: list[dict[str, Any]]
) -> None:
    """No active rep is left, but a routing rule still gives the team leads (409); without the rule
    the team is deactivated and leaves the list of active teams."""
    ruled = await api.patch(f"/api/v1/teams/{team_id}", json={"active": False}, headers={"If-Match": "*"})
    assert (ruled.status_code, ruled.json()["reason"]) == (409, "TEAM_IN_ROUTING_RULES")
    assert (await api.put("/api/v1/routing-rules", json={"rules": seeded_rules})).status_code == 200
    current = await api.get(f"/api/v1/teams/{team_id}")
    closed = await api.patch(
        f"/api/v1/teams/{team_id}", json={"active": False}, headers={"If-Match": current.headers["etag"]}
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["active"], closed.json()["active_reps"]) == (False, 0)
    listed = (await api.get("/api/v1/teams")).json()["teams"]
    assert team_id not in {t["id"] for t in listed}
