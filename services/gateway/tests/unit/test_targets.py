"""/targets and /reports/targets through the gateway, in front of a fake RoutingService and
TargetsService: a manager's reach is checked before a subject's existence (so other teams' reps and
teams cannot be probed), and the targets paths read the directory without the reps' load."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from crm.common.v1 import types_pb2
from crm.leads.v1 import routing_pb2, routing_pb2_grpc
from crm.reporting.v1 import targets_pb2, targets_pb2_grpc
from crm_gateway.app import create_app
from crm_kit.dev_issuer import DevIssuer

from .conftest import running_gateway

pytestmark = pytest.mark.unit

REPS = {
    "rep-a": routing_pb2.Rep(id="rep-a", name="A", team_id="team-north", active=True),
    "rep-b": routing_pb2.Rep(id="rep-b", name="B", team_id="team-south", active=True),
}
TEAMS = {"team-north", "team-south"}


class FakeRouting(routing_pb2_grpc.RoutingServiceServicer):
    """Reps rep-a (team-north) and rep-b (team-south); records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def ListReps(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("ListReps", request))
        found = [
            r
            for r in REPS.values()
            if (not request.team_id or r.team_id == request.team_id) and (not request.rep_id or r.id == request.rep_id)
        ]
        return routing_pb2.ListRepsResponse(reps=found)

    async def GetRep(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("GetRep", request))
        if request.rep_id not in REPS:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no rep")
        return routing_pb2.GetRepResponse(rep=REPS[request.rep_id])

    async def GetTeam(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("GetTeam", request))
        if request.team_id not in TEAMS:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no team")
        return routing_pb2.GetTeamResponse(team=routing_pb2.Team(id=request.team_id, name="t", active=True))


class FakeTargets(targets_pb2_grpc.TargetsServiceServicer):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def CreateTarget(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("CreateTarget", request))
        made = targets_pb2.Target()
        made.CopyFrom(request.target)
        made.id = "target-1"
        return targets_pb2.CreateTargetResponse(target=made)

    async def ListTargets(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("ListTargets", request))
        return targets_pb2.ListTargetsResponse()

    async def GetTargetReport(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("GetTargetReport", request))
        period = targets_pb2.ReportPeriod(
            kind=targets_pb2.PERIOD_KIND_MONTH,
            start_date=types_pb2.Date(year=2025, month=3, day=1),
            end_date=types_pb2.Date(year=2025, month=3, day=31),
            time_zone="Asia/Jerusalem",
        )
        return targets_pb2.GetTargetReportResponse(period=period)


class Backends:
    def __init__(self) -> None:
        self.routing = FakeRouting()
        self.targets = FakeTargets()

    def sent(self, method: str) -> list[Any]:
        return [r for name, r in self.routing.calls + self.targets.calls if name == method]


@pytest.fixture
async def backends() -> AsyncIterator[tuple[str, Backends]]:
    fakes = Backends()
    server = grpc.aio.server()
    routing_pb2_grpc.add_RoutingServiceServicer_to_server(fakes.routing, server)
    targets_pb2_grpc.add_TargetsServiceServicer_to_server(fakes.targets, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", fakes
    await server.stop(None)


@pytest.fixture
async def call(backends: tuple[str, Backends], settings_for: Any, issuer: DevIssuer) -> Any:
    """call(role, method, path, team_id=..., **httpx kwargs) as a user of role."""
    async with running_gateway(create_app(settings_for(backends[0]))) as http:

        async def send(role: str, method: str, path: str, *, team_id: str = "", **kw: Any) -> Any:
            token = issuer.mint(f"{role}-user", [role], team_id=team_id)
            return await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)

        yield send


def body(kind: str, subject_id: str) -> dict[str, Any]:
    return {"subject_kind": kind, "subject_id": subject_id, "period_kind": "month", "period_start": "2025-03-10"}


def won_deals(kind: str, subject_id: str) -> dict[str, Any]:
    return {**body(kind, subject_id), "metric": "won_deals", "count": 3}


@pytest.mark.parametrize(
    ("kind", "elsewhere", "missing"),
    [("rep", "rep-b", "rep-ghost"), ("team", "team-south", "team-ghost")],
)
async def test_a_subject_outside_a_managers_reach_is_403_whether_it_exists_or_not(
    call, backends, kind: str, elsewhere: str, missing: str
) -> None:
    exists = await call(
        "sales_manager", "POST", "/api/v1/targets", team_id="team-north", json=won_deals(kind, elsewhere)
    )
    absent = await call("sales_manager", "POST", "/api/v1/targets", team_id="team-north", json=won_deals(kind, missing))

    assert (exists.status_code, absent.status_code) == (403, 403), absent.text
    assert exists.json() == absent.json()
    assert backends[1].sent("CreateTarget") == []
    # A team outside the reach is refused by its id alone: the directory is not even asked.
    assert backends[1].sent("GetTeam") == []


@pytest.mark.parametrize(("kind", "missing"), [("rep", "rep-ghost"), ("team", "team-ghost")])
async def test_within_reach_a_rep_or_team_must_exist(call, backends, kind: str, missing: str) -> None:
    unknown = await call("admin", "POST", "/api/v1/targets", json=won_deals(kind, missing))
    # A manager's own team that the directory no longer has: the same 422.
    own_missing_team = await call(
        "sales_manager", "POST", "/api/v1/targets", team_id="team-ghost", json=won_deals("team", "team-ghost")
    )

    assert unknown.status_code == 422, unknown.text
    assert [e["field"] for e in unknown.json()["errors"]] == ["subject_id"]
    assert own_missing_team.status_code == 422, own_missing_team.text
    assert backends[1].sent("CreateTarget") == []


async def test_a_manager_sets_targets_for_their_team_and_its_reps(call, backends) -> None:
    rep = await call("sales_manager", "POST", "/api/v1/targets", team_id="team-north", json=won_deals("rep", "rep-a"))
    team = await call(
        "sales_manager", "POST", "/api/v1/targets", team_id="team-north", json=won_deals("team", "team-north")
    )

    assert (rep.status_code, team.status_code) == (201, 201), rep.text + team.text
    assert [r.target.subject_id for r in backends[1].sent("CreateTarget")] == ["rep-a", "team-north"]


async def test_targets_read_the_directory_without_the_reps_load(call, backends) -> None:
    created = await call(
        "sales_manager", "POST", "/api/v1/targets", team_id="team-north", json=won_deals("rep", "rep-a")
    )
    listed = await call("sales_manager", "GET", "/api/v1/targets", team_id="team-north")
    report = await call("sales_manager", "GET", "/api/v1/reports/targets", team_id="team-north")

    assert (created.status_code, listed.status_code, report.status_code) == (201, 200, 200), report.text
    asked = backends[1].sent("ListReps")
    assert asked and {r.view for r in asked} == {routing_pb2.REP_VIEW_BASIC}
    assert backends[1].sent("GetRep") == []  # GetRep counts the rep's open leads
    [listing, reporting] = [r.scope for r in backends[1].sent("ListTargets") + backends[1].sent("GetTargetReport")]
    for scope in (listing, reporting):
        assert {(s.kind, s.id) for s in scope.subjects} == {
            (targets_pb2.TARGET_SUBJECT_KIND_TEAM, "team-north"),
            (targets_pb2.TARGET_SUBJECT_KIND_REP, "rep-a"),
        }
