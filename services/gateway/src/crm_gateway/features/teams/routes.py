"""/teams: sales teams (leads' RoutingService owns them with the reps: routing reads both on every
capture). Admins create and change teams; a manager reads their own team; the rest is 404.

Optimistic concurrency: a team's ETag is its etag; a change must send it in If-Match (428 without,
412 when the team changed since), or `*` to change it whatever it is now."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Query, Response

from crm.leads.v1 import routing_pb2
from crm_gateway import records
from crm_gateway.convert import to_model, with_etag
from crm_gateway.deps import (
    Caller,
    Clients,
    IfMatch,
    PageSize,
    PageToken,
    ResourceId,
    api_router,
    etag_of,
    forbidden,
)
from crm_gateway.features.teams.schemas import CreateTeamIn, Team, TeamList, UpdateTeamIn
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.platform.authz import Role
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


async def _visible_team(clients: Clients, principal: Principal, team_id: str) -> routing_pb2.Team:
    """The team, if the caller may read it (admins: any; a manager: their own); else 404."""
    if not principal.has_role(Role.ADMIN) and authz.managed_team(principal) != team_id:
        raise records.not_found("team", team_id)
    reply: routing_pb2.GetTeamResponse = await records.get(
        "team", team_id, clients.routing.GetTeam, routing_pb2.GetTeamRequest(team_id=team_id)
    )
    return reply.team


@router.post("/teams", status_code=201, tags=["routing"], operation_id="createTeam")
async def create_team(body: CreateTeamIn, clients: Clients, principal: Caller, response: Response) -> Team:
    """A team with its own round-robin turn; routing rules give it leads once they name it."""
    reply = await clients.routing.CreateTeam(body.to_proto())
    return with_etag(Team, reply.team, response)


@router.get("/teams", tags=["routing"], operation_id="listTeams")
async def list_teams(
    clients: Clients,
    principal: Caller,
    show_inactive: Annotated[bool, Query(description="Include teams that were deactivated")] = False,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> TeamList:
    """Admins: the teams oldest first; a manager: their own team (no paging needed)."""
    if principal.has_role(Role.ADMIN):
        request = routing_pb2.ListTeamsRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, show_inactive=show_inactive
        )
        return to_model(TeamList, await read(clients.routing.ListTeams, request))
    # Fail closed: a manager's token without a team names no team to show.
    team_id = authz.managed_team(principal)
    if not team_id:
        raise forbidden("Your token names no team (team_id) to show.")
    try:
        team = await _visible_team(clients, principal, team_id)
    except HTTPException:
        return TeamList(teams=[], next_page_token="")
    shown = [to_model(Team, team)] if team.active or show_inactive else []
    return TeamList(teams=shown, next_page_token="")


@router.get("/teams/{team_id}", tags=["routing"], operation_id="getTeam")
async def get_team(team_id: ResourceId, clients: Clients, principal: Caller, response: Response) -> Team:
    """The team with its number of active reps; its ETag is the version to send back in If-Match."""
    return with_etag(Team, await _visible_team(clients, principal, team_id), response)


@router.patch("/teams/{team_id}", tags=["routing"], operation_id="updateTeam")
async def update_team(
    team_id: ResourceId,
    body: UpdateTeamIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Team:
    """Change the fields the body names (name, manager, active). Deactivating a team with active
    reps (TEAM_HAS_ACTIVE_REPS) or one routing rules give leads to (TEAM_IN_ROUTING_RULES) is 409."""
    if not body.model_fields_set:
        raise HTTPException(422, "Name at least one field to change.")
    etag = etag_of(if_match, required=True)
    reply = await records.change("team", team_id, clients.routing.UpdateTeam, body.to_proto(team_id, etag))
    return with_etag(Team, reply.team, response)
