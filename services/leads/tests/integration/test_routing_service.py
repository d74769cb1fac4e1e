"""Routing and the SLA against real PostgreSQL and NATS: fairness across two replicas, caps under
concurrent captures, fall-through, the fallback queue, rule-set replacement and breaches."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select, update

from crm.leads.v1 import leads_pb2, routing_pb2, routing_pb2_grpc
from crm_kit.db import Database
from crm_kit.service import Service
from crm_kit.testing import local_channel, violated_fields
from crm_leads.db import lead_sla_breaches, leads, messaging, reps
from crm_leads.main import LeadsServiceServicer
from crm_leads.routing import commands as routing_commands
from crm_leads.routing import queries as routing_queries

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(leads_server) -> AsyncIterator[Service]:
    async with leads_server(
        # The tests run the scan themselves (with a chosen "now"); keep the job out of the way.
        sla_scan_interval_seconds=3600,
    ) as running:
        yield running


@pytest.fixture
async def routing(service: Service) -> AsyncIterator[routing_pb2_grpc.RoutingServiceStub]:
    ch = local_channel(service.settings.grpc_port)
    yield routing_pb2_grpc.RoutingServiceStub(ch)
    await ch.close()


@pytest.fixture
async def replicas(service: Service) -> AsyncIterator[list[LeadsServiceServicer]]:
    """Two LeadsServiceServicers on two engines: two replicas of leads sharing one database."""
    dbs = [Database(service.settings.database_url, messaging, source="leads") for _ in range(2)]
    yield [LeadsServiceServicer(db) for db in dbs]
    for db in dbs:
        await db.dispose()


def phone() -> str:
    return f"052-{uuid.uuid4().int % 10_000_000:07d}"


def capture_request(source: str = "radio", **kw: Any) -> leads_pb2.CaptureLeadRequest:
    return leads_pb2.CaptureLeadRequest(full_name="נועה ברק", phone_number=phone(), source=source, **kw)


async def set_rules(routing: routing_pb2_grpc.RoutingServiceStub, *rules: routing_pb2.RoutingRule) -> int:
    reply = await routing.ReplaceRoutingRules(routing_pb2.ReplaceRoutingRulesRequest(rules=list(rules)))
    return reply.version


async def update_rep(routing: routing_pb2_grpc.RoutingServiceStub, rep: routing_pb2.Rep, *paths: str) -> None:
    await routing.UpdateRep(routing_pb2.UpdateRepRequest(rep=rep, update_mask=FieldMask(paths=list(paths))))


async def capture_all(replicas: list[LeadsServiceServicer], requests: list[leads_pb2.CaptureLeadRequest]) -> list[Any]:
    replies = await asyncio.gather(
        *(replicas[i % len(replicas)].CaptureLead(r, None) for i, r in enumerate(requests))  # type: ignore[arg-type]
    )
    return [reply.lead for reply in replies]


async def test_round_robin_stays_even_across_two_replicas(routing, replicas) -> None:
    leads_ = await capture_all(replicas, [capture_request() for _ in range(40)])

    assert len({lead.id for lead in leads_}) == 40
    assert Counter(lead.assignment.rep_id for lead in leads_) == {"rep-dana": 20, "rep-moshe": 20}
    assert {lead.assignment.rule_id for lead in leads_} == {"rule-broadcast"}


async def test_least_loaded_never_exceeds_a_cap_under_concurrent_captures(routing, replicas, service) -> None:
    await set_rules(
        routing,
        routing_pb2.RoutingRule(
            id="web", name="web", priority=1, sources=["website"], strategy="least_loaded", team_id="team-digital"
        ),
    )
    for rep_id in ("rep-sara", "rep-yael", "rep-omid"):
        await update_rep(routing, routing_pb2.Rep(id=rep_id, capacity=3), "capacity")

    leads_ = await capture_all(replicas, [capture_request("website") for _ in range(14)])

    assigned = Counter(lead.assignment.rep_id for lead in leads_)
    assert assigned == {"rep-sara": 3, "rep-yael": 3, "rep-omid": 3, "": 5}
    queued = [lead for lead in leads_ if not lead.assignment.rep_id]
    assert {lead.assignment.team_id for lead in queued} == {"team-digital"}
    # The queue shows them to the team's manager, oldest first.
    queue = await routing.ListLeadQueue(routing_pb2.ListLeadQueueRequest(team_id="team-digital"))
    assert {lead.id for lead in queue.leads} == {lead.id for lead in queued}
    explained = queue.leads[0].routing_explanation
    assert explained.outcome == "queued"
    assert {c.skip_reason for c in explained.rules[0].candidates} == {"at capacity (3/3 open leads)"}


async def test_a_rule_without_an_eligible_rep_falls_through_to_the_next(routing, replicas) -> None:
    await set_rules(
        routing,
        routing_pb2.RoutingRule(id="media", name="m", priority=1, sources=["radio"], team_id="team-media"),
        routing_pb2.RoutingRule(id="persian", name="p", priority=2, languages=["fa"], team_id="team-digital"),
    )
    for rep_id in ("rep-dana", "rep-moshe"):
        await update_rep(routing, routing_pb2.Rep(id=rep_id, away=True), "away")
    # Tehran hours on a day nobody works in Tehran for Omid (no spans at all but on a Friday).
    await update_rep(
        routing,
        routing_pb2.Rep(
            id="rep-omid",
            time_zone="Asia/Tehran",
            working_hours=[routing_pb2.WorkingHours(day="fri", start="00:00", end="00:01")],
        ),
        "time_zone",
        "working_hours",
    )

    [persian, hebrew] = await capture_all(replicas, [capture_request(locale="fa-IR"), capture_request(locale="he-IL")])

    assert persian.assignment.rule_id == "persian"
    assert persian.assignment.rep_id in {"rep-sara", "rep-yael"}
    assert "1 earlier matching rule(s) had no eligible rep" in persian.assignment.reason
    # The Hebrew lead matches only the media rule: it waits in team-media's queue, never dropped.
    assert hebrew.assignment.rep_id == ""
    assert hebrew.assignment.team_id == "team-media"
    queue = await routing.ListLeadQueue(routing_pb2.ListLeadQueueRequest(team_id="team-media"))
    [queued] = [lead for lead in queue.leads if lead.id == hebrew.id]
    [media] = queued.routing_explanation.rules
    assert {c.rep_id: c.skip_reason for c in media.candidates} == {"rep-dana": "away", "rep-moshe": "away"}


async def test_replacing_the_rule_set_is_all_or_nothing(routing) -> None:
    before = await routing.ListRoutingRules(routing_pb2.ListRoutingRulesRequest())
    assert [r.id for r in before.rules] == ["rule-broadcast", "rule-digital", "rule-default"]

    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await set_rules(
            routing,
            routing_pb2.RoutingRule(id="a", name="a", priority=5, team_id="team-media"),
            routing_pb2.RoutingRule(id="b", name="b", priority=5, team_id="team-media"),
        )
    assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await set_rules(
            routing,
            routing_pb2.RoutingRule(id="a", name="a", priority=5, team_id="team-media"),
            routing_pb2.RoutingRule(id="b", name="b", priority=6, team_id="team-nowhere"),
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(invalid.value) == {"rules[1].team_id"}
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await routing.ReplaceRoutingRules(routing_pb2.ReplaceRoutingRulesRequest(expected_version=before.version + 7))
    assert stale.value.code() == grpc.StatusCode.ABORTED

    after = await routing.ListRoutingRules(routing_pb2.ListRoutingRulesRequest())
    assert after == before
    version = await set_rules(routing, routing_pb2.RoutingRule(id="all", name="all", priority=1, team_id="team-media"))
    assert version == before.version + 1


async def test_breach_reassigns_to_reps_not_yet_tried_then_escalates(routing, replicas, service) -> None:
    await set_rules(
        routing,
        routing_pb2.RoutingRule(
            id="fast",
            name="fast",
            priority=1,
            team_id="team-digital",
            sla_seconds=60,
            breach_action="reassign",
        ),
    )
    [lead] = await capture_all(replicas, [capture_request("website")])
    first_rep = lead.assignment.rep_id
    due = lead.first_response_due_time.ToDatetime(tzinfo=UTC)
    assert due - lead.create_time.ToDatetime(tzinfo=UTC) == pytest.approx(
        timedelta(seconds=60), abs=timedelta(seconds=2)
    )
    db = service.db

    assert await routing_commands.scan_breaches(db, now=due - timedelta(seconds=1)) == 0
    assert await routing_commands.scan_breaches(db, now=due + timedelta(seconds=1)) == 1
    assert await routing_commands.scan_breaches(db, now=due + timedelta(seconds=2)) == 0  # new deadline, not due yet
    second = await lead_row(db, lead.id)
    assert second.rep_id not in {first_rep, None}
    assert second.reassign_count == 1 and second.sla_breached_at is not None
    assert await routing_commands.scan_breaches(db, now=due + timedelta(seconds=200)) == 1
    third = await lead_row(db, lead.id)
    assert third.rep_id not in {first_rep, second.rep_id}
    # Every rep of the team has had it: the next breach escalates to the team's manager.
    assert await routing_commands.scan_breaches(db, now=due + timedelta(seconds=400)) == 1
    final = await lead_row(db, lead.id)
    assert final.rep_id == third.rep_id
    assert final.escalated_to == "manager-digital"
    assert not final.sla_clock_running
    assert await routing_commands.scan_breaches(db, now=due + timedelta(days=1)) == 0

    breaches = (await routing.ListSlaBreaches(routing_pb2.ListSlaBreachesRequest(team_id="team-digital"))).sla_breaches
    assert [b.action for b in breaches] == ["escalate", "reassign", "reassign"]
    assert [b.rep_id for b in breaches] == [third.rep_id, second.rep_id, first_rep]
    assert breaches[0].manager_id == "manager-digital"
    assert breaches[2].new_rep_id == second.rep_id


async def test_a_first_response_stops_the_clock(routing, replicas, service) -> None:
    await set_rules(
        routing,
        routing_pb2.RoutingRule(id="fast", name="fast", priority=1, team_id="team-media", sla_seconds=30),
    )
    [answered, forgotten, converted] = await capture_all(replicas, [capture_request() for _ in range(3)])
    await replicas[0].ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=converted.id), None)  # type: ignore[arg-type]
    async with service.db.unit_of_work() as uow:  # what the activities module does on a first call
        await uow.conn.execute(
            update(leads).where(leads.c.id == answered.id).values(first_response_at=datetime.now(UTC))
        )

    assert await routing_commands.scan_breaches(service.db, now=datetime.now(UTC) + timedelta(minutes=5)) == 1
    assert (await lead_row(service.db, answered.id)).sla_breached_at is None
    assert (await lead_row(service.db, converted.id)).sla_breached_at is None
    escalated = await lead_row(service.db, forgotten.id)
    assert escalated.escalated_to == "manager-media" and escalated.rep_id == forgotten.assignment.rep_id
    async with service.db.unit_of_work() as uow:
        [breach] = (await uow.conn.execute(select(lead_sla_breaches))).all()
    assert breach.lead_id == forgotten.id and breach.action == "escalate"


async def test_assigning_by_hand_restarts_the_clock_and_the_work_list_orders_by_time_left(
    routing, replicas, service
) -> None:
    await set_rules(
        routing,
        routing_pb2.RoutingRule(id="r", name="r", priority=1, team_id="team-media", sla_seconds=600),
    )
    async with service.db.unit_of_work() as uow:
        await uow.conn.execute(update(reps).where(reps.c.team_id == "team-media").values(away=True))
    [queued] = await capture_all(replicas, [capture_request()])
    assert queued.assignment.rep_id == ""
    async with service.db.unit_of_work() as uow:
        await uow.conn.execute(update(reps).where(reps.c.id == "rep-dana").values(away=False))
    [older, newer] = await capture_all(replicas, [capture_request(), capture_request()])
    assert older.assignment.rep_id == newer.assignment.rep_id == "rep-dana"

    assigned = (await routing.AssignLead(routing_pb2.AssignLeadRequest(lead_id=queued.id, rep_id="rep-dana"))).lead
    assert assigned.assignment.rep_id == "rep-dana"
    assert assigned.first_response_due_time.ToDatetime() > queued.first_response_due_time.ToDatetime()
    async with service.db.unit_of_work() as uow:
        await uow.conn.execute(update(leads).where(leads.c.id == older.id).values(first_response_at=datetime.now(UTC)))

    work = (await routing.ListWorkList(routing_pb2.ListWorkListRequest(rep_id="rep-dana"))).items
    assert [i.lead.id for i in work] == [newer.id, queued.id, older.id]
    assert 0 < work[0].seconds_left <= work[1].seconds_left <= 600
    assert work[2].responded and not work[2].has_deadline

    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await routing.AssignLead(routing_pb2.AssignLeadRequest(lead_id=queued.id, rep_id="rep-nobody"))
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_rep_updates_are_validated_field_by_field(routing) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await update_rep(
            routing,
            routing_pb2.Rep(
                id="rep-dana",
                time_zone="Mars/Base",
                capacity=-1,
                working_hours=[routing_pb2.WorkingHours(day="sun", start="17:00", end="09:00")],
            ),
            "time_zone",
            "capacity",
            "working_hours",
            "salary",
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == {
        "rep.time_zone",
        "rep.capacity",
        "rep.working_hours[0].end",
        "update_mask.paths[3]",
    }
    [rep] = (await routing.ListReps(routing_pb2.ListRepsRequest(rep_id="rep-dana"))).reps
    assert rep.time_zone == "Asia/Jerusalem" and not rep.HasField("capacity") and rep.available


async def test_the_basic_view_lists_a_teams_reps_without_counting_their_leads(
    routing, replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    await capture_all(replicas, [capture_request() for _ in range(4)])  # rule-broadcast: team-media
    full = (await routing.ListReps(routing_pb2.ListRepsRequest(team_id="team-media"))).reps
    assert {r.id: r.open_leads for r in full} == {"rep-dana": 2, "rep-moshe": 2}

    async def no_counting(*args: Any, **kwargs: Any) -> dict[str, int]:
        raise AssertionError("the basic view must not count open leads")

    monkeypatch.setattr(routing_queries, "_open_leads", no_counting)
    basic = (
        await routing.ListReps(routing_pb2.ListRepsRequest(team_id="team-media", view=routing_pb2.REP_VIEW_BASIC))
    ).reps
    [one] = (
        await routing.ListReps(routing_pb2.ListRepsRequest(rep_id="rep-dana", view=routing_pb2.REP_VIEW_BASIC))
    ).reps
    assert [r.id for r in basic] == ["rep-dana", "rep-moshe"] and one == basic[0]
    for without, with_load in zip(basic, full, strict=True):
        assert (without.open_leads, without.available, without.unavailable_reason) == (0, False, "")
        expected = routing_pb2.Rep()
        expected.CopyFrom(with_load)
        expected.ClearField("open_leads")
        expected.ClearField("available")
        expected.ClearField("unavailable_reason")
        assert without == expected
    # Unspecified is the full view, as before views existed: it counts.
    with pytest.raises(grpc.aio.AioRpcError):
        await routing.ListReps(routing_pb2.ListRepsRequest(team_id="team-media"))


async def lead_row(db: Database, lead_id: str) -> Any:
    async with db.unit_of_work() as uow:
        return (await uow.conn.execute(select(leads).where(leads.c.id == lead_id))).one()


async def test_every_replica_routes_with_the_set_up_committed_before_its_capture(routing, replicas, service) -> None:
    """Replicas keep rules and reps in process (crm_leads.config_cache): a change committed through
    another replica's API, or by plain SQL, binds the next capture on every replica."""
    await capture_all(replicas, [capture_request() for _ in range(2)])  # both replicas read the media team

    await update_rep(routing, routing_pb2.Rep(id="rep-dana", active=False), "active")
    after_deactivation = await capture_all(replicas, [capture_request() for _ in range(4)])
    assert {lead.assignment.rep_id for lead in after_deactivation} == {"rep-moshe"}

    async with service.db.unit_of_work() as uow:
        await uow.conn.execute(update(reps).where(reps.c.id == "rep-moshe").values(capacity=0))
    at_capacity = await capture_all(replicas, [capture_request() for _ in range(2)])
    assert {(lead.assignment.rep_id, lead.assignment.team_id) for lead in at_capacity} == {("", "team-media")}

    await set_rules(routing, routing_pb2.RoutingRule(id="everything", name="e", priority=1, team_id="team-digital"))
    after_new_rules = await capture_all(replicas, [capture_request() for _ in range(2)])
    assert {lead.assignment.rule_id for lead in after_new_rules} == {"everything"}
    assert {lead.assignment.rep_id for lead in after_new_rules} <= {"rep-sara", "rep-yael", "rep-omid"}
