"""Teams and reps through the gateway, in front of a fake RoutingService: who may change which field
of a rep, who sees which team, bodies, ETags and If-Match, and the service's errors as problems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from crm.leads.v1 import routing_pb2, routing_pb2_grpc
from crm_gateway.app import create_app
from crm_kit.dev_issuer import DevIssuer

from .conftest import running_gateway

pytestmark = pytest.mark.unit

TEAMS = {
    "team-north": routing_pb2.Team(id="team-north", name="צפון", manager_id="m-north", active=True, active_reps=1),
    "team-south": routing_pb2.Team(id="team-south", name="דרום", active=False),
}


def failed_precondition(reason: str) -> status_pb2.Status:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="crm.leads"))
    return status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=f"refused: {reason}", details=[info])


class FakeRouting(routing_pb2_grpc.RoutingServiceServicer):
    """Reps rep-a (team-north) and rep-b (team-south); records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.reps = {
            "rep-a": routing_pb2.Rep(id="rep-a", name="A", team_id="team-north", active=True, etag='"3"'),
            "rep-b": routing_pb2.Rep(id="rep-b", name="B", team_id="team-south", active=True, etag='"1"'),
        }

    def sent(self, method: str) -> list[Any]:
        return [request for name, request in self.calls if name == method]

    async def GetRep(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.rep_id not in self.reps:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no rep")
        return routing_pb2.GetRepResponse(rep=self.reps[request.rep_id])

    async def UpdateRep(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("UpdateRep", request))
        rep = routing_pb2.Rep()
        rep.CopyFrom(self.reps[request.rep.id])
        for path in set(request.update_mask.paths) & {"name", "team_id", "active", "away", "time_zone"}:
            setattr(rep, path, getattr(request.rep, path))
        rep.etag = '"4"'
        return routing_pb2.UpdateRepResponse(rep=rep)

    async def CreateRep(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("CreateRep", request))
        rep = routing_pb2.Rep()
        rep.CopyFrom(request.rep)
        rep.id, rep.etag = request.rep_id or "rep-gen", '"1"'
        return routing_pb2.CreateRepResponse(rep=rep)

    async def CreateTeam(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("CreateTeam", request))
        team = routing_pb2.Team()
        team.CopyFrom(request.team)
        team.id, team.etag = request.team_id or "team-gen", '"1"'
        return routing_pb2.CreateTeamResponse(team=team)

    async def GetTeam(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("GetTeam", request))
        if request.team_id not in TEAMS:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no team")
        team = routing_pb2.Team()
        team.CopyFrom(TEAMS[request.team_id])
        team.etag = '"2"'
        return routing_pb2.GetTeamResponse(team=team)

    async def ListTeams(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("ListTeams", request))
        return routing_pb2.ListTeamsResponse(teams=list(TEAMS.values()))

    async def UpdateTeam(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("UpdateTeam", request))
        if request.team.id not in TEAMS:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no team")
        if list(request.update_mask.paths) == ["active"] and not request.team.active:
            await context.abort_with_status(rpc_status.to_status(failed_precondition("TEAM_HAS_ACTIVE_REPS")))
        team = routing_pb2.Team()
        team.CopyFrom(TEAMS[request.team.id])
        team.name, team.etag = request.team.name or team.name, '"3"'
        return routing_pb2.UpdateTeamResponse(team=team)


@pytest.fixture
async def routing() -> AsyncIterator[tuple[str, FakeRouting]]:
    fake = FakeRouting()
    server = grpc.aio.server()
    routing_pb2_grpc.add_RoutingServiceServicer_to_server(fake, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", fake
    await server.stop(None)


@pytest.fixture
async def call(routing: tuple[str, FakeRouting], settings_for: Any, issuer: DevIssuer) -> Any:
    """call(role, method, path, **httpx kwargs) as a user of role (subject/team_id given in kwargs)."""
    app = create_app(settings_for(routing[0]))
    async with running_gateway(app) as http:

        async def send(role: str, method: str, path: str, *, subject: str = "", team_id: str = "", **kw: Any) -> Any:
            token = issuer.mint(subject or f"{role}-user", [role], team_id=team_id)
            headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
            return await http.request(method, path, headers=headers, **kw)

        yield send


async def test_an_admin_creates_a_rep_with_what_they_cover(call, routing) -> None:
    body = {
        "id": "rep-new",
        "name": "נועה",
        "team_id": "team-north",
        "capacity": 5,
        "territories": ["Haifa"],
        "product_lines": ["sofas"],
        "working_hours": [{"day": "sun", "start": "09:00", "end": "17:00"}],
    }

    created = await call("admin", "POST", "/api/v1/reps", json=body)
    bad = await call("admin", "POST", "/api/v1/reps", json={**body, "capacity": -1, "territories": [""]})
    by_manager = await call("sales_manager", "POST", "/api/v1/reps", json=body, team_id="team-north")

    assert created.status_code == 201, created.text
    assert (created.json()["id"], created.headers["etag"]) == ("rep-new", '"1"')
    [sent] = routing[1].sent("CreateRep")
    assert (sent.rep_id, sent.rep.active, sent.rep.capacity, list(sent.rep.territories)) == (
        "rep-new",
        True,
        5,
        ["Haifa"],
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"capacity", "territories.0"}
    assert by_manager.status_code == 403


@pytest.mark.parametrize(
    ("role", "subject", "team_id", "body", "status"),
    [
        ("admin", "", "", {"team_id": "team-south", "active": False, "name": "Avi"}, 200),
        ("sales_manager", "", "team-north", {"capacity": 3, "away": True}, 200),
        ("sales_manager", "", "team-north", {"active": False}, 403),
        ("sales_manager", "", "team-north", {"territories": ["Eilat"]}, 403),
        ("sales_manager", "", "team-south", {"away": True}, 404),
        ("sales_rep", "rep-a", "team-north", {"away": True, "working_hours": []}, 200),
        ("sales_rep", "rep-a", "team-north", {"capacity": 9}, 403),
        ("sales_rep", "rep-a", "team-north", {"team_id": "team-south"}, 403),
        ("sales_rep", "rep-b", "team-south", {"away": True}, 404),
    ],
    ids=[
        "admin-moves-deactivates",
        "manager-capacity",
        "manager-deactivates",
        "manager-territories",
        "manager-other-team",
        "rep-own-availability",
        "rep-own-capacity",
        "rep-moves-self",
        "rep-another",
    ],
)
async def test_who_may_change_which_field_of_a_rep(
    call, routing, role: str, subject: str, team_id: str, body: dict[str, Any], status: int
) -> None:
    response = await call(role, "PATCH", "/api/v1/reps/rep-a", json=body, subject=subject, team_id=team_id)

    assert response.status_code == status, response.text
    sent = routing[1].sent("UpdateRep")
    if status == 200:
        [request] = sent
        assert sorted(request.update_mask.paths) == sorted(body)
        assert response.headers["etag"] == '"4"'
    else:
        assert sent == []
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_rep_patch_passes_if_match_on(call, routing) -> None:
    conditional = await call(
        "admin", "PATCH", "/api/v1/reps/rep-a", json={"active": False}, headers={"If-Match": '"3"'}
    )
    unconditional = await call("admin", "PATCH", "/api/v1/reps/rep-a", json={"away": False})
    strict = await call("admin", "PATCH", "/api/v1/reps/rep-a", json={"active": 0})

    assert (conditional.status_code, unconditional.status_code) == (200, 200)
    assert [r.etag for r in routing[1].sent("UpdateRep")] == ['"3"', ""]
    assert strict.status_code == 422


async def test_teams_are_created_and_changed_by_admins_with_if_match(call, routing) -> None:
    created = await call(
        "admin", "POST", "/api/v1/teams", json={"id": "team-east", "name": "מזרח", "manager_id": "m-e"}
    )
    bad_id = await call("admin", "POST", "/api/v1/teams", json={"id": "no spaces", "name": "x"})
    no_etag = await call("admin", "PATCH", "/api/v1/teams/team-north", json={"name": "North"})
    renamed = await call(
        "admin", "PATCH", "/api/v1/teams/team-north", json={"name": "North"}, headers={"If-Match": '"2"'}
    )
    refused = await call(
        "admin", "PATCH", "/api/v1/teams/team-north", json={"active": False}, headers={"If-Match": "*"}
    )
    missing = await call("admin", "PATCH", "/api/v1/teams/team-x", json={"name": "X"}, headers={"If-Match": "*"})
    by_manager = await call(
        "sales_manager", "PATCH", "/api/v1/teams/team-north", json={"name": "N"}, team_id="team-north"
    )

    assert created.status_code == 201, created.text
    assert (created.json()["id"], created.json()["manager_id"], created.headers["etag"]) == ("team-east", "m-e", '"1"')
    assert routing[1].sent("CreateTeam")[0].team.active is True
    assert bad_id.status_code == 422
    assert no_etag.status_code == 428
    assert (renamed.status_code, renamed.json()["name"], renamed.headers["etag"]) == (200, "North", '"3"')
    assert [(r.etag, list(r.update_mask.paths)) for r in routing[1].sent("UpdateTeam")[:2]] == [
        ('"2"', ["name"]),
        ("", ["active"]),
    ]
    assert (refused.status_code, refused.json()["reason"]) == (409, "TEAM_HAS_ACTIVE_REPS")
    assert missing.status_code == 404
    assert by_manager.status_code == 403


async def test_a_manager_sees_only_their_own_team(call, routing) -> None:
    admin = await call("admin", "GET", "/api/v1/teams", params={"show_inactive": "true"})
    own_list = await call("sales_manager", "GET", "/api/v1/teams", team_id="team-north")
    own = await call("sales_manager", "GET", "/api/v1/teams/team-north", team_id="team-north")
    other = await call("sales_manager", "GET", "/api/v1/teams/team-south", team_id="team-north")
    inactive_own = await call("sales_manager", "GET", "/api/v1/teams", team_id="team-south")
    no_team = await call("sales_manager", "GET", "/api/v1/teams")
    rep = await call("sales_rep", "GET", "/api/v1/teams/team-north", subject="rep-a", team_id="team-north")

    assert [t["id"] for t in admin.json()["teams"]] == ["team-north", "team-south"]
    assert routing[1].sent("ListTeams")[0].show_inactive is True
    assert [t["id"] for t in own_list.json()["teams"]] == ["team-north"]
    assert (own.status_code, own.headers["etag"], own.json()["active_reps"]) == (200, '"2"', 1)
    assert other.status_code == 404
    # Another team's id is never asked for: the answer cannot depend on whether it exists.
    assert [r.team_id for r in routing[1].sent("GetTeam")] == ["team-north", "team-north", "team-south"]
    assert inactive_own.json()["teams"] == []
    assert no_team.status_code == 403
    assert rep.status_code == 403
