"""/reps: the directory of reps (leads' RoutingService owns it: routing reads it on every capture),
with their open leads and availability.

Record rules: admins see every rep; a manager their team's; a rep themselves. A rep outside that
is 404, a filter asking for another team is 403. Admins create reps and change who they are (name,
team, active, territories, product lines); a manager also sets their team's reps' capacity; a rep
their own availability.

Optimistic concurrency: a rep's ETag is its etag; a PATCH with If-Match applies only to that version
(412 otherwise), one without it to whatever the rep is now (a rep switching "away" on a phone)."""

from __future__ import annotations

from fastapi import Response
from google.protobuf import field_mask_pb2

from crm.leads.v1 import routing_pb2
from crm_gateway import records
from crm_gateway.convert import to_model, with_etag
from crm_gateway.deps import Caller, Clients, FilterId, IfMatch, ResourceId, api_router, etag_of, forbidden
from crm_gateway.features.reps.schemas import ADMIN_FIELDS, CreateRepIn, Rep, RepList, RepPatchIn
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.platform.authz import Role
from crm_gateway.records import read

router = api_router()


def _rep_filters(principal: Principal, team_id: str) -> tuple[str, str]:
    """The (team_id, rep_id) a caller's list of reps is held to: an admin's as asked, a manager's
    team (403 for another), a rep themselves (403 for any team)."""
    if principal.has_role(Role.ADMIN):
        return team_id, ""
    team = authz.managed_team(principal)
    if team:
        if team_id and team_id != team:
            raise forbidden("Managers list the reps of their own team only.")
        return team, ""
    if team_id:
        raise forbidden("Reps see their own availability only.")
    # Fail closed: an empty rep_id would list every rep of the company.
    rep_id = authz.own_rep_id(principal)
    if not rep_id:
        raise forbidden("Your token names no team (team_id) or rep (rep_id) to list reps of.")
    return "", rep_id


@router.get("/reps", tags=["routing"], operation_id="listReps")
async def list_reps(clients: Clients, principal: Caller, team_id: FilterId = "") -> RepList:
    """Admins: every rep; managers: their team's; reps: themselves. With open leads and availability."""
    team_id, rep_id = _rep_filters(principal, team_id)
    reply = await read(clients.routing.ListReps, routing_pb2.ListRepsRequest(team_id=team_id, rep_id=rep_id))
    return RepList(reps=[to_model(Rep, r) for r in reply.reps])


@router.post("/reps", status_code=201, tags=["routing"], operation_id="createRep")
async def create_rep(body: CreateRepIn, clients: Clients, principal: Caller, response: Response) -> Rep:
    """A rep in an existing team (an active rep in an active team: 422 otherwise), taking leads from
    the next capture on. The id is the rep_id claim of their token; one that exists is 409."""
    reply = await clients.routing.CreateRep(body.to_proto())
    return with_etag(Rep, reply.rep, response)


async def _visible_rep(clients: Clients, principal: Principal, rep_id: str) -> routing_pb2.Rep:
    found: routing_pb2.GetRepResponse = await records.get(
        "rep", rep_id, clients.routing.GetRep, routing_pb2.GetRepRequest(rep_id=rep_id)
    )
    rep = found.rep
    if principal.has_role(Role.ADMIN):
        return rep
    team = authz.managed_team(principal)
    if team and rep.team_id == team:
        return rep
    own = authz.own_rep_id(principal)
    if own and rep.id == own:
        return rep
    raise records.not_found("rep", rep_id)


def _check_fields(principal: Principal, rep: routing_pb2.Rep, paths: list[str]) -> None:
    """Who may change what of a rep they see: admins everything; a manager their team's reps'
    availability and capacity; a rep their own availability (not their capacity)."""
    if principal.has_role(Role.ADMIN):
        return
    admin_only = sorted(ADMIN_FIELDS.intersection(paths))
    if admin_only:
        raise forbidden(f"Only an admin changes a rep's {', '.join(admin_only)}.")
    if "capacity" in paths and authz.managed_team(principal) != rep.team_id:
        raise forbidden("A rep's capacity is set by their manager.")


@router.patch("/reps/{rep_id}", tags=["routing"], operation_id="updateRep")
async def update_rep(
    rep_id: ResourceId,
    body: RepPatchIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Rep:
    """Change the fields the body names. Deactivating (active false) stops new leads from the next
    capture on; the rep's open leads stay theirs, in their team. Moving (team_id) is refused with
    409 while a named_rep routing rule gives the rep leads."""
    rep = await _visible_rep(clients, principal, rep_id)
    patch, paths = body.to_proto(rep.id)
    _check_fields(principal, rep, paths)
    if not paths:
        return with_etag(Rep, rep, response)
    request = routing_pb2.UpdateRepRequest(
        rep=patch, update_mask=field_mask_pb2.FieldMask(paths=paths), etag=etag_of(if_match)
    )
    reply = await clients.routing.UpdateRep(request)
    return with_etag(Rep, reply.rep, response)
