"""The sales organisation through RoutingService against real PostgreSQL: teams and reps created,
edited, moved and deactivated, each change audited; what routing does with them on the next capture;
the rules that keep the directory and the rule set consistent, under concurrency too."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import func, select

from crm.leads.v1 import leads_pb2, leads_pb2_grpc, routing_pb2, routing_pb2_grpc
from crm_kit.caller import acting_as
from crm_kit.service import Service
from crm_kit.testing import local_channel, violated_fields
from crm_leads.db import messaging, reps, teams

pytestmark = pytest.mark.integration


@pytest.fixture
async def stubs(service: Service) -> AsyncIterator[tuple[routing_pb2_grpc.RoutingServiceStub, Any]]:
    ch = local_channel(service.settings.grpc_port)
    yield routing_pb2_grpc.RoutingServiceStub(ch), leads_pb2_grpc.LeadsServiceStub(ch)
    await ch.close()


@pytest.fixture
def routing(stubs: tuple[routing_pb2_grpc.RoutingServiceStub, Any]) -> routing_pb2_grpc.RoutingServiceStub:
    return stubs[0]


@pytest.fixture
def leads(stubs: tuple[Any, leads_pb2_grpc.LeadsServiceStub]) -> leads_pb2_grpc.LeadsServiceStub:
    return stubs[1]


def reason_of(err: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(err)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def mask(*paths: str) -> FieldMask:
    return FieldMask(paths=list(paths))


async def new_team(routing: routing_pb2_grpc.RoutingServiceStub, team_id: str, **kw: Any) -> routing_pb2.Team:
    team = routing_pb2.Team(name=kw.pop("name", f"צוות {team_id}"), active=kw.pop("active", True), **kw)
    return (await routing.CreateTeam(routing_pb2.CreateTeamRequest(team=team, team_id=team_id))).team


async def new_rep(
    routing: routing_pb2_grpc.RoutingServiceStub, rep_id: str, team_id: str, **kw: Any
) -> routing_pb2.Rep:
    rep = routing_pb2.Rep(name=kw.pop("name", f"Rep {rep_id}"), team_id=team_id, active=kw.pop("active", True), **kw)
    return (await routing.CreateRep(routing_pb2.CreateRepRequest(rep=rep, rep_id=rep_id))).rep


async def route_line_to(
    routing: routing_pb2_grpc.RoutingServiceStub, line: str, team_id: str, *, alone: bool = False
) -> None:
    """A rule sending product line `line` to team_id first, before the seeded rules (or alone: no
    rule to fall through to)."""
    current = [] if alone else (await routing.ListRoutingRules(routing_pb2.ListRoutingRulesRequest())).rules
    rule = routing_pb2.RoutingRule(id=f"rule-{line}", name=line, priority=-1, product_lines=[line], team_id=team_id)
    await routing.ReplaceRoutingRules(routing_pb2.ReplaceRoutingRulesRequest(rules=[rule, *current]))


async def drop_rule(routing: routing_pb2_grpc.RoutingServiceStub, rule_id: str) -> None:
    current = (await routing.ListRoutingRules(routing_pb2.ListRoutingRulesRequest())).rules
    kept = [r for r in current if r.id != rule_id]
    await routing.ReplaceRoutingRules(routing_pb2.ReplaceRoutingRulesRequest(rules=kept))


async def capture(leads: leads_pb2_grpc.LeadsServiceStub, line: str, **kw: Any) -> leads_pb2.Lead:
    phone = f"052-{uuid.uuid4().int % 10_000_000:07d}"
    request = leads_pb2.CaptureLeadRequest(
        full_name="דני רז", phone_number=phone, source="radio", product_line=line, **kw
    )
    return (await leads.CaptureLead(request)).lead


async def audit(service: Service, record_type: str, record_id: str) -> list[Any]:
    table = messaging.audit_log
    async with service.db.engine.connect() as conn:
        query = select(table).where(table.c.record_type == record_type, table.c.record_id == record_id)
        return list((await conn.execute(query.order_by(table.c.id))).all())


async def test_teams_and_reps_are_created_read_listed_and_audited(routing, service) -> None:
    with acting_as("admin-noa", "req-org-1"):
        team = await new_team(routing, "team-north", name="  צוות  צפון ", manager_id="manager-north")
        rep = await new_rep(
            routing,
            "rep-avi",
            "team-north",
            capacity=4,
            time_zone="Asia/Tehran",
            territories=["Haifa", "haifa", "צפון"],
            product_lines=["sofas"],
            working_hours=[routing_pb2.WorkingHours(day="sat", start="08:00", end="16:00")],
        )
    generated = await new_team(routing, "")

    read = (await routing.GetTeam(routing_pb2.GetTeamRequest(team_id="team-north"))).team
    listed = (await routing.ListTeams(routing_pb2.ListTeamsRequest())).teams
    assert (team.name, team.manager_id, team.active, team.etag, team.active_reps) == (
        "צוות צפון",
        "manager-north",
        True,
        '"1"',
        0,
    )
    assert read.active_reps == 1
    assert generated.id.startswith("team-")
    assert {"team-media", "team-digital", "team-north", generated.id} == {t.id for t in listed}
    assert (rep.team_id, rep.capacity, rep.time_zone, rep.etag) == ("team-north", 4, "Asia/Tehran", '"1"')
    assert (list(rep.territories), list(rep.product_lines)) == (["Haifa", "צפון"], ["sofas"])
    [created_team] = await audit(service, "team", "team-north")
    [created_rep] = await audit(service, "rep", "rep-avi")
    assert (created_team.action, created_team.actor, created_team.request_id) == (
        "leads.CreateTeam",
        "admin-noa",
        "req-org-1",
    )
    assert created_rep.action == "leads.CreateRep"
    assert created_rep.details["territories"] == ["Haifa", "צפון"]

    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await new_team(routing, "team-north")
    with pytest.raises(grpc.aio.AioRpcError) as rep_taken:
        await new_rep(routing, "rep-dana", "team-north")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await routing.GetTeam(routing_pb2.GetTeamRequest(team_id="team-nowhere"))
    assert (taken.value.code(), reason_of(taken.value)) == (grpc.StatusCode.ALREADY_EXISTS, "TEAM_EXISTS")
    assert (rep_taken.value.code(), reason_of(rep_taken.value)) == (grpc.StatusCode.ALREADY_EXISTS, "REP_EXISTS")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_input_names_every_field_and_writes_nothing(routing, service) -> None:
    async def counts() -> tuple[int, int]:
        async with service.db.engine.connect() as conn:
            return (
                (await conn.execute(select(func.count()).select_from(teams))).scalar_one(),
                (await conn.execute(select(func.count()).select_from(reps))).scalar_one(),
            )

    before = await counts()
    bad_rep = routing_pb2.Rep(
        name=" ",
        team_id="team-media",
        capacity=-3,
        time_zone="Europe/Atlantis",
        territories=[""],
        working_hours=[routing_pb2.WorkingHours(day="fri", start="25:00", end="26:00")],
    )
    with pytest.raises(grpc.aio.AioRpcError) as rep:
        await routing.CreateRep(routing_pb2.CreateRepRequest(rep=bad_rep, rep_id="bad id"))
    with pytest.raises(grpc.aio.AioRpcError) as fields:
        await routing.CreateRep(routing_pb2.CreateRepRequest(rep=bad_rep))
    with pytest.raises(grpc.aio.AioRpcError) as unknown_team:
        await new_rep(routing, "rep-x", "team-nowhere")
    with pytest.raises(grpc.aio.AioRpcError) as team:
        await routing.CreateTeam(routing_pb2.CreateTeamRequest(team=routing_pb2.Team(name="", manager_id="a b")))
    with pytest.raises(grpc.aio.AioRpcError) as update:
        await routing.UpdateRep(
            routing_pb2.UpdateRepRequest(rep=routing_pb2.Rep(id="rep-dana", name=""), update_mask=mask("name", "pay"))
        )

    assert rep.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(rep.value) == {"rep_id"}
    assert violated_fields(fields.value) == {
        "rep.name",
        "rep.capacity",
        "rep.time_zone",
        "rep.territories[0]",
        "rep.working_hours[0].start",
    }
    assert violated_fields(unknown_team.value) == {"rep.team_id"}
    assert violated_fields(team.value) == {"team.name", "team.manager_id"}
    assert violated_fields(update.value) == {"rep.name", "update_mask.paths[1]"}
    assert await counts() == before
    assert (await routing.GetRep(routing_pb2.GetRepRequest(rep_id="rep-dana"))).rep.name == "דנה לוי"


async def test_a_new_rep_gets_leads_from_the_next_capture_and_none_once_deactivated(routing, leads, service) -> None:
    line = f"line-{uuid.uuid4().hex[:8]}"
    await new_team(routing, "team-south", manager_id="manager-south")
    await new_rep(routing, "rep-lior", "team-south")
    await route_line_to(routing, line, "team-south", alone=True)

    first = await capture(leads, line)
    deactivated = await routing.UpdateRep(
        routing_pb2.UpdateRepRequest(rep=routing_pb2.Rep(id="rep-lior", active=False), update_mask=mask("active"))
    )
    second = await capture(leads, line)
    work = await routing.ListWorkList(routing_pb2.ListWorkListRequest(rep_id="rep-lior"))
    still = await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=first.id))

    assert (first.assignment.rep_id, first.assignment.team_id) == ("rep-lior", "team-south")
    assert (deactivated.rep.active, deactivated.rep.unavailable_reason, deactivated.rep.etag) == (
        False,
        "inactive",
        '"2"',
    )
    # No new lead: it waits in the team's queue, where the manager sees it.
    assert (second.assignment.rep_id, second.assignment.team_id) == ("", "team-south")
    assert {c.rep_id: c.skip_reason for c in second.routing_explanation.rules[0].candidates} == {"rep-lior": "inactive"}
    # The lead they had stays theirs, in their team.
    assert (still.lead.assignment.rep_id, still.lead.assignment.team_id) == ("rep-lior", "team-south")
    assert [item.lead.id for item in work.items] == [first.id]
    [_, change] = await audit(service, "rep", "rep-lior")
    assert (change.action, change.details) == ("leads.UpdateRep", {"update_mask": ["active"], "active": False})


async def test_a_team_is_deactivated_only_once_nothing_gives_it_work(routing, leads) -> None:
    line = f"line-{uuid.uuid4().hex[:8]}"
    await new_team(routing, "team-east")
    await new_rep(routing, "rep-tal", "team-east")
    await route_line_to(routing, line, "team-east")
    deactivate = routing_pb2.UpdateTeamRequest(
        team=routing_pb2.Team(id="team-east", active=False), update_mask=mask("active")
    )

    with pytest.raises(grpc.aio.AioRpcError) as with_reps:
        await routing.UpdateTeam(deactivate)
    await routing.UpdateRep(
        routing_pb2.UpdateRepRequest(rep=routing_pb2.Rep(id="rep-tal", active=False), update_mask=mask("active"))
    )
    with pytest.raises(grpc.aio.AioRpcError) as with_rules:
        await routing.UpdateTeam(deactivate)
    unchanged = (await routing.GetTeam(routing_pb2.GetTeamRequest(team_id="team-east"))).team
    await drop_rule(routing, f"rule-{line}")
    done = (await routing.UpdateTeam(deactivate)).team

    assert with_reps.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(with_reps.value) == "TEAM_HAS_ACTIVE_REPS"
    assert "rep-tal" in (with_reps.value.details() or "")
    assert reason_of(with_rules.value) == "TEAM_IN_ROUTING_RULES"
    assert (unchanged.active, unchanged.etag) == (True, '"1"')
    assert (done.active, done.etag) == (False, '"2"')
    assert "team-east" not in {t.id for t in (await routing.ListTeams(routing_pb2.ListTeamsRequest())).teams}
    shown = await routing.ListTeams(routing_pb2.ListTeamsRequest(show_inactive=True))
    assert "team-east" in {t.id for t in shown.teams}

    # An inactive team takes no active rep and no routing rule.
    with pytest.raises(grpc.aio.AioRpcError) as joining:
        await new_rep(routing, "rep-new", "team-east")
    with pytest.raises(grpc.aio.AioRpcError) as reactivating:
        await routing.UpdateRep(
            routing_pb2.UpdateRepRequest(rep=routing_pb2.Rep(id="rep-tal", active=True), update_mask=mask("active"))
        )
    with pytest.raises(grpc.aio.AioRpcError) as ruling:
        await route_line_to(routing, line, "team-east")
    assert violated_fields(joining.value) == violated_fields(reactivating.value) == {"rep.team_id"}
    assert violated_fields(ruling.value) == {"rules[0].team_id"}
    assert (await new_rep(routing, "rep-parked", "team-east", active=False)).active is False


async def test_a_stale_etag_is_aborted_and_changes_nothing(routing) -> None:
    team = await new_team(routing, "team-west")
    renamed = await routing.UpdateTeam(
        routing_pb2.UpdateTeamRequest(
            team=routing_pb2.Team(id="team-west", name="West"), update_mask=mask("name"), etag=team.etag
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as stale_team:
        await routing.UpdateTeam(
            routing_pb2.UpdateTeamRequest(
                team=routing_pb2.Team(id="team-west", name="Stale"), update_mask=mask("name"), etag=team.etag
            )
        )
    rep = (await routing.GetRep(routing_pb2.GetRepRequest(rep_id="rep-moshe"))).rep
    await routing.UpdateRep(
        routing_pb2.UpdateRepRequest(
            rep=routing_pb2.Rep(id="rep-moshe", away=True), update_mask=mask("away"), etag=rep.etag
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as stale_rep:
        await routing.UpdateRep(
            routing_pb2.UpdateRepRequest(
                rep=routing_pb2.Rep(id="rep-moshe", capacity=1), update_mask=mask("capacity"), etag=rep.etag
            )
        )
    after = (await routing.GetRep(routing_pb2.GetRepRequest(rep_id="rep-moshe"))).rep

    assert (renamed.team.name, renamed.team.etag) == ("West", '"2"')
    assert (stale_team.value.code(), reason_of(stale_team.value)) == (grpc.StatusCode.ABORTED, "STALE_ETAG")
    assert (await routing.GetTeam(routing_pb2.GetTeamRequest(team_id="team-west"))).team.name == "West"
    assert (stale_rep.value.code(), reason_of(stale_rep.value)) == (grpc.StatusCode.ABORTED, "STALE_ETAG")
    assert (after.away, after.HasField("capacity"), after.etag) == (True, False, '"2"')


async def test_a_moved_rep_takes_the_new_teams_leads_and_keeps_the_old_ones(routing, leads, service) -> None:
    line = f"line-{uuid.uuid4().hex[:8]}"
    old = await capture(leads, "")  # radio: team-media's round-robin
    mover = old.assignment.rep_id
    await new_team(routing, "team-vip")
    await route_line_to(routing, line, "team-vip")

    moved = await routing.UpdateRep(
        routing_pb2.UpdateRepRequest(rep=routing_pb2.Rep(id=mover, team_id="team-vip"), update_mask=mask("team_id"))
    )
    new = await capture(leads, line)
    kept = await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=old.id))

    assert moved.rep.team_id == "team-vip"
    assert (new.assignment.rep_id, new.assignment.team_id) == (mover, "team-vip")
    assert (kept.lead.assignment.rep_id, kept.lead.assignment.team_id) == (mover, "team-media")
    [*_, change] = await audit(service, "rep", mover)
    assert change.details["previous_team_id"] == "team-media"

    # A named_rep rule gives rep-omid team-digital's leads: he stays until the rule changes.
    vip = routing_pb2.RoutingRule(id="vip", name="VIP", priority=-5, strategy="named_rep", rep_id="rep-omid")
    current = (await routing.ListRoutingRules(routing_pb2.ListRoutingRulesRequest())).rules
    await routing.ReplaceRoutingRules(routing_pb2.ReplaceRoutingRulesRequest(rules=[vip, *current]))
    with pytest.raises(grpc.aio.AioRpcError) as named:
        await routing.UpdateRep(
            routing_pb2.UpdateRepRequest(
                rep=routing_pb2.Rep(id="rep-omid", team_id="team-vip"), update_mask=mask("team_id")
            )
        )
    assert (named.value.code(), reason_of(named.value)) == (grpc.StatusCode.FAILED_PRECONDITION, "REP_IN_ROUTING_RULES")
    assert (await routing.GetRep(routing_pb2.GetRepRequest(rep_id="rep-omid"))).rep.team_id == "team-digital"


async def test_round_robin_gives_a_lead_to_the_reps_who_cover_it(routing, leads) -> None:
    line = f"line-{uuid.uuid4().hex[:8]}"
    await new_team(routing, "team-regions")
    await new_rep(routing, "rep-haifa", "team-regions", territories=["Haifa"])
    await new_rep(routing, "rep-tehran", "team-regions", territories=["تهران", "Tehran"], product_lines=[line])
    await new_rep(routing, "rep-beds", "team-regions", product_lines=["beds"])
    await route_line_to(routing, line, "team-regions")

    tehran = [await capture(leads, line, city="tehran") for _ in range(3)]
    anywhere = [await capture(leads, line) for _ in range(4)]

    assert {lead.assignment.rep_id for lead in tehran} == {"rep-tehran"}
    skipped = {c.rep_id: c.skip_reason for c in tehran[0].routing_explanation.rules[0].candidates}
    assert skipped["rep-haifa"] == "covers other territories (Haifa)"
    assert skipped["rep-beds"] == "covers other product lines (beds)"
    # A lead without a city is not narrowed by territories: both of this line's reps take turns.
    assert {lead.assignment.rep_id for lead in anywhere} == {"rep-haifa", "rep-tehran"}


async def test_a_team_never_ends_up_inactive_with_an_active_rep(routing) -> None:
    """Deactivating a team races reps joining it: one of the two wins, never both (row locks)."""
    for round_ in range(6):
        team_id = f"team-race-{round_}"
        await new_team(routing, team_id)
        deactivate = routing_pb2.UpdateTeamRequest(
            team=routing_pb2.Team(id=team_id, active=False), update_mask=mask("active")
        )
        outcomes = await asyncio.gather(
            routing.UpdateTeam(deactivate),
            *(new_rep(routing, f"rep-race-{round_}-{i}", team_id) for i in range(3)),
            return_exceptions=True,
        )
        team = (await routing.GetTeam(routing_pb2.GetTeamRequest(team_id=team_id))).team
        assert not (not team.active and team.active_reps), (round_, outcomes)
        for outcome in outcomes:
            if isinstance(outcome, grpc.aio.AioRpcError):
                assert outcome.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)
