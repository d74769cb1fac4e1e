"""Routing rules and the speed-to-lead SLA through the gateway, against the running system: rules
managed over the API take effect on the next capture, a breach is escalated to the team's manager
by the leads service's own job, the fallback queue and assigning by hand, reps' availability."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e


def lead_body(product_line: str, locale: str = "he-IL") -> dict[str, Any]:
    phone = f"054-{uuid.uuid4().int % 10_000_000:07d}"
    return {
        "full_name": "מיכל אדלר",
        "phone_number": phone,
        "source": "radio",
        "locale": locale,
        "product_line": product_line,
    }


@pytest.fixture
async def seeded_rules(api: httpx.AsyncClient) -> AsyncIterator[list[dict[str, Any]]]:
    """The current rule set (as PUT bodies); put back afterwards, whatever the test did."""
    current = (await api.get("/api/v1/routing-rules")).json()["rules"]
    yield current
    restored = await api.put("/api/v1/routing-rules", json={"rules": current})
    assert restored.status_code == 200, restored.text
    for rep_id in ("rep-omid", "rep-sara", "rep-yael"):
        await api.patch(f"/api/v1/reps/{rep_id}", json={"away": False, "capacity": None})


def client(stack: Stack, role: str, **kw: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers(role, **kw))


async def test_rule_set_versions_conflicts_and_field_errors(api: httpx.AsyncClient, seeded_rules) -> None:
    read = await api.get("/api/v1/routing-rules")
    assert read.status_code == 200
    assert {"rule-broadcast", "rule-digital", "rule-default"} <= {r["id"] for r in read.json()["rules"]}
    etag = read.headers["etag"]

    stale = await api.put(
        "/api/v1/routing-rules", json={"rules": seeded_rules}, headers={"If-Match": f'"{read.json()["version"] + 5}"'}
    )
    clash = await api.put(
        "/api/v1/routing-rules",
        json={"rules": [{**seeded_rules[0], "id": "a"}, {**seeded_rules[0], "id": "b"}]},
    )
    invalid = await api.put(
        "/api/v1/routing-rules",
        json={"rules": [seeded_rules[0], {"name": "x", "priority": 99_999, "team_id": "team-nowhere"}]},
    )
    unchanged = await api.get("/api/v1/routing-rules")
    fresh = await api.put("/api/v1/routing-rules", json={"rules": seeded_rules}, headers={"If-Match": etag})

    assert stale.status_code == 412, stale.text
    assert clash.status_code == 409, clash.text
    assert invalid.status_code == 422, invalid.text
    assert invalid.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in invalid.json()["errors"]] == ["rules[1].team_id"]
    assert unchanged.json() == read.json()
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["version"] == read.json()["version"] + 1
    assert fresh.headers["etag"] != etag


async def test_a_forgotten_lead_breaches_and_escalates_to_the_manager(
    stack: Stack, api: httpx.AsyncClient, seeded_rules
) -> None:
    line = f"e2e-sla-{uuid.uuid4().hex[:8]}"
    fast = {"name": "SLA test", "priority": -1, "product_lines": [line], "team_id": "team-digital", "sla_seconds": 1}
    assert (await api.put("/api/v1/routing-rules", json={"rules": [fast, *seeded_rules]})).status_code == 200

    captured = await api.post("/api/v1/leads", json=lead_body(line))
    assert captured.status_code == 201, captured.text
    lead = captured.json()
    assert lead["assignment"]["team_id"] == "team-digital"
    assert lead["first_response_due_time"] is not None

    async with client(stack, "sales_manager", subject="manager-digital", team_id="team-digital") as manager:

        async def breach() -> dict[str, Any] | None:
            found = (await manager.get("/api/v1/sla-breaches", params={"page_size": 100})).json()["sla_breaches"]
            return next((b for b in found if b["lead_id"] == lead["id"]), None)

        seen = await eventually(breach, timeout=30)
        routing = (await manager.get(f"/api/v1/leads/{lead['id']}/routing")).json()
    async with client(stack, "sales_manager", subject="manager-media", team_id="team-media") as other_team:
        hidden = (await other_team.get("/api/v1/sla-breaches", params={"page_size": 100})).json()
        other_filter = await other_team.get("/api/v1/sla-breaches", params={"team_id": "team-digital"})

    assert seen["action"] == "escalate"
    assert seen["manager_id"] == "manager-digital"
    assert seen["rep_id"] == lead["assignment"]["rep_id"]
    assert routing["sla_breached"] is True
    assert routing["escalated_to"] == "manager-digital"
    assert routing["routing_explanation"]["outcome"] == "assigned"
    assert routing["routing_explanation"]["rules"][0]["strategy"] == "round_robin"
    assert lead["id"] not in {b["lead_id"] for b in hidden["sla_breaches"]}
    assert other_filter.status_code == 403


async def test_a_lead_nobody_can_take_waits_in_the_queue_until_a_manager_assigns_it(
    stack: Stack, api: httpx.AsyncClient, seeded_rules
) -> None:
    line = f"e2e-queue-{uuid.uuid4().hex[:8]}"
    vip = {
        "name": "Omid's VIPs",
        "priority": -2,
        "product_lines": [line],
        "strategy": "named_rep",
        "rep_id": "rep-omid",
    }
    # The VIP rule alone, so that no other rule (the catch-all) takes the lead over.
    assert (await api.put("/api/v1/routing-rules", json={"rules": [vip]})).status_code == 200
    async with client(stack, "sales_rep", subject="rep-omid", team_id="team-digital") as omid:
        away = await omid.patch("/api/v1/reps/rep-omid", json={"away": True})
        no_cap = await omid.patch("/api/v1/reps/rep-omid", json={"capacity": 50})
        not_mine = await omid.patch("/api/v1/reps/rep-sara", json={"away": True})
    assert away.status_code == 200 and away.json()["available"] is False
    assert no_cap.status_code == 403
    assert not_mine.status_code == 404

    queued = (await api.post("/api/v1/leads", json=lead_body(line, "fa-IR"))).json()
    assert (await api.put("/api/v1/routing-rules", json={"rules": seeded_rules})).status_code == 200
    assert queued["assignment"]["rep_id"] == ""
    assert queued["assignment"]["team_id"] == "team-digital"

    async with client(stack, "sales_manager", subject="manager-digital", team_id="team-digital") as manager:
        queue = (await manager.get("/api/v1/lead-queue", params={"page_size": 100})).json()["leads"]
        [waiting] = [lead for lead in queue if lead["id"] == queued["id"]]
        outside = await manager.post(f"/api/v1/leads/{queued['id']}/assign", json={"rep_id": "rep-dana"})
        assigned = await manager.post(f"/api/v1/leads/{queued['id']}/assign", json={"rep_id": "rep-sara"})
    async with client(stack, "sales_manager", subject="manager-media", team_id="team-media") as media:
        media_queue = (await media.get("/api/v1/lead-queue", params={"page_size": 100})).json()["leads"]
    async with client(stack, "sales_rep", subject="rep-sara", team_id="team-digital") as sara:
        work = (await sara.get("/api/v1/my-leads", params={"page_size": 100})).json()["items"]
        someone_elses = await sara.get("/api/v1/my-leads", params={"rep_id": "rep-yael"})

    assert [c["skip_reason"] for c in waiting["routing_explanation"]["rules"][0]["candidates"]] == ["away"]
    assert queued["id"] not in {lead["id"] for lead in media_queue}
    assert outside.status_code == 422
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignment"]["rep_id"] == "rep-sara"
    [item] = [i for i in work if i["lead"]["id"] == queued["id"]]
    assert item["responded"] is False
    assert someone_elses.status_code == 403


async def test_reps_see_themselves_and_managers_their_team(stack: Stack) -> None:
    async with client(stack, "sales_rep", subject="rep-yael", team_id="team-digital") as yael:
        mine = (await yael.get("/api/v1/reps")).json()["reps"]
    async with client(stack, "sales_manager", subject="manager-media", team_id="team-media") as manager:
        team = (await manager.get("/api/v1/reps")).json()["reps"]
        other = await manager.get("/api/v1/reps", params={"team_id": "team-digital"})
        hidden = await manager.patch("/api/v1/reps/rep-yael", json={"away": False})
        bad = await manager.patch(
            "/api/v1/reps/rep-dana",
            json={"time_zone": "Mars/Base", "working_hours": [{"day": "sun", "start": "17:00", "end": "09:00"}]},
        )

    assert [r["id"] for r in mine] == ["rep-yael"]
    assert {r["team_id"] for r in team} == {"team-media"} and len(team) >= 2
    assert other.status_code == 403
    assert hidden.status_code == 404
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"rep.time_zone", "rep.working_hours[0].end"}
