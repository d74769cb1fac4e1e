"""Routing and SLA routes: the rule set, reps' availability, the fallback queue, assigning by hand,
SLA breaches, a rep's work list and a lead's routing details.

Record rules: admins see everything; a manager their team's reps, queue (and the leads no rule
matched, which have no team), breaches and leads; a rep themselves and their own leads. A record
outside that is 404 (crm_gateway.records), a filter asking for someone else's is 403.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Header, HTTPException, Response

from crm.leads.v1 import routing_pb2, routing_pb2_grpc
from crm_gateway import authz, records
from crm_gateway.auth import Caller, Principal, authorize
from crm_gateway.authz import Role
from crm_gateway.problems import PROBLEM_RESPONSES
from crm_gateway.records import not_found, read
from crm_gateway.routes import Clients, FilterId, PageSize, PageToken, ResourceId, forbidden, json_bodies_only
from crm_gateway.schemas import to_model
from crm_gateway.schemas_routing import (
    AssignLeadIn,
    Rep,
    RepList,
    RepPatchIn,
    RoutedLead,
    RoutedLeadList,
    RoutingRuleSet,
    RoutingRulesIn,
    SlaBreachList,
    WorkList,
    rep_model,
    routed_lead,
    rule_set,
)
from crm_kit import protoconv

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(authorize), Depends(json_bodies_only)],
    responses=PROBLEM_RESPONSES,
)


@cache
def _stub(channel: grpc.aio.Channel) -> routing_pb2_grpc.RoutingServiceStub:
    # RoutingService is served on the leads service's port: one stub per leads channel.
    return routing_pb2_grpc.RoutingServiceStub(channel)


def routing(clients: Clients) -> routing_pb2_grpc.RoutingServiceStub:
    return _stub(clients.channels["leads"])


def _etag(version: int) -> str:
    return f'"{version}"'


def _is_admin(principal: Principal) -> bool:
    return principal.has_role(Role.ADMIN)


def _manager_team(principal: Principal) -> str:
    return authz.managed_team(principal)


# ---------------------------------------------------------------- rules


@router.get("/routing-rules", tags=["routing"])
async def list_routing_rules(clients: Clients, principal: Caller, response: Response) -> RoutingRuleSet:
    """The ordered rule set; its ETag is the version to send back in If-Match."""
    reply = await read(routing(clients).ListRoutingRules, routing_pb2.ListRoutingRulesRequest())
    response.headers["ETag"] = _etag(reply.version)
    return rule_set(reply.rules, reply.version)


@router.put("/routing-rules", tags=["routing"])
async def replace_routing_rules(
    body: RoutingRulesIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: Annotated[
        str, Header(alias="If-Match", max_length=100, description="The ETag read; 412 when the rules changed since")
    ] = "",
) -> RoutingRuleSet:
    """Replace the whole ordered rule set at once (all or nothing), effective for the next capture.
    Two rules with one priority: 409; a bad field: 422 naming it (rules[2].team_id)."""
    expected = 0
    if if_match.strip():
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not tag.isdigit() or not 0 < int(tag) < 2**62:
            raise HTTPException(412, "If-Match does not name a version of the rule set.")
        expected = int(tag)
    try:
        reply = await routing(clients).ReplaceRoutingRules(
            routing_pb2.ReplaceRoutingRulesRequest(rules=[r.to_proto() for r in body.rules], expected_version=expected)
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.ABORTED:
            raise HTTPException(412, "The rule set changed since it was read: read it again.") from exc
        raise
    response.headers["ETag"] = _etag(reply.version)
    return rule_set(reply.rules, reply.version)


# ---------------------------------------------------------------- reps


@router.get("/reps", tags=["routing"])
async def list_reps(clients: Clients, principal: Caller, team_id: FilterId = "") -> RepList:
    """Admins: every rep; managers: their team's; reps: themselves. With open leads and availability."""
    rep_id = ""
    if not _is_admin(principal):
        team = _manager_team(principal)
        if team:
            if team_id and team_id != team:
                raise forbidden("Managers list the reps of their own team only.")
            team_id = team
        else:
            if team_id:
                raise forbidden("Reps see their own availability only.")
            # Fail closed: an empty rep_id would list every rep of the company.
            rep_id = authz.own_rep_id(principal)
            if not rep_id:
                raise forbidden("Your token names no team (team_id) or rep (rep_id) to list reps of.")
    reply = await read(routing(clients).ListReps, routing_pb2.ListRepsRequest(team_id=team_id, rep_id=rep_id))
    return RepList(reps=[rep_model(r) for r in reply.reps])


async def _visible_rep(clients: Clients, principal: Principal, rep_id: str) -> routing_pb2.Rep:
    try:
        rep = (await read(routing(clients).GetRep, routing_pb2.GetRepRequest(rep_id=rep_id))).rep
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise not_found("rep", rep_id) from exc
        raise
    if _is_admin(principal):
        return rep
    team = _manager_team(principal)
    if team and rep.team_id == team:
        return rep
    own = authz.own_rep_id(principal)
    if own and rep.id == own:
        return rep
    raise not_found("rep", rep_id)


@router.patch("/reps/{rep_id}", tags=["routing"])
async def update_rep(rep_id: ResourceId, body: RepPatchIn, clients: Clients, principal: Caller) -> Rep:
    """Availability (away, working hours, time zone) and capacity. Admins: any rep; managers: their
    team's; a rep: their own availability (not their capacity)."""
    rep = await _visible_rep(clients, principal, rep_id)
    patch, paths = body.to_proto(rep.id)
    if "capacity" in paths and not (_is_admin(principal) or _manager_team(principal) == rep.team_id):
        raise forbidden("A rep's capacity is set by their manager.")
    if not paths:
        return rep_model(rep)
    reply = await routing(clients).UpdateRep(
        routing_pb2.UpdateRepRequest(rep=patch, update_mask={"paths": paths})  # type: ignore[arg-type]
    )
    return rep_model(reply.rep)


# ---------------------------------------------------------------- queue and assignment


@router.get("/lead-queue", tags=["routing"])
async def list_lead_queue(
    clients: Clients, principal: Caller, team_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> RoutedLeadList:
    """New leads no rep could take, oldest first: admins all (or one team's), managers their team's
    and those no rule matched."""
    include_unteamed = False
    if not _is_admin(principal):
        team = _manager_team(principal)
        if not team or (team_id and team_id != team):
            raise forbidden("Managers see their own team's queue only.")
        team_id, include_unteamed = team, True
    reply = await read(
        routing(clients).ListLeadQueue,
        routing_pb2.ListLeadQueueRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            team_id=team_id,
            include_unteamed=include_unteamed,
        ),
    )
    return RoutedLeadList(leads=[routed_lead(lead) for lead in reply.leads], next_page_token=reply.next_page_token)


@router.post("/leads/{lead_id}/assign", tags=["routing"])
async def assign_lead(lead_id: ResourceId, body: AssignLeadIn, clients: Clients, principal: Caller) -> RoutedLead:
    """Hand a lead to a rep (a manager: a lead of their team or one no rule matched, to a rep of
    their team). Publishes LeadAssigned and restarts the SLA clock."""
    if not _is_admin(principal):
        team = _manager_team(principal)
        try:
            lead = (
                await read(routing(clients).GetLeadRouting, routing_pb2.GetLeadRoutingRequest(lead_id=lead_id))
            ).lead
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise not_found("lead", lead_id) from exc
            raise
        unteamed = not lead.assignment.team_id and not lead.assignment.rep_id
        if not team or not (lead.assignment.team_id == team or unteamed):
            raise not_found("lead", lead_id)
        target = await read(routing(clients).ListReps, routing_pb2.ListRepsRequest(rep_id=body.rep_id, team_id=team))
        if not target.reps:
            raise HTTPException(422, f"rep_id {body.rep_id!r} is not a rep of your team.")
    reply = await routing(clients).AssignLead(routing_pb2.AssignLeadRequest(lead_id=lead_id, rep_id=body.rep_id))
    return routed_lead(reply.lead)


@router.get("/leads/{lead_id}/routing", tags=["routing"])
async def get_lead_routing(lead_id: ResourceId, clients: Clients, principal: Caller) -> RoutedLead:
    """A lead with why it went where it went (rule, strategy, candidates and why each was skipped),
    its SLA deadline, breach, reassignments and escalation."""
    await records.lead(clients, principal, lead_id)
    reply = await read(routing(clients).GetLeadRouting, routing_pb2.GetLeadRoutingRequest(lead_id=lead_id))
    return routed_lead(reply.lead)


# ---------------------------------------------------------------- SLA


@router.get("/sla-breaches", tags=["routing"])
async def list_sla_breaches(
    clients: Clients, principal: Caller, team_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> SlaBreachList:
    """Leads whose first response missed its deadline, newest first: admins all, managers their team's."""
    if not _is_admin(principal):
        team = _manager_team(principal)
        if not team or (team_id and team_id != team):
            raise forbidden("Managers see their own team's breaches only.")
        team_id = team
    reply = await read(
        routing(clients).ListSlaBreaches,
        routing_pb2.ListSlaBreachesRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, team_id=team_id
        ),
    )
    return to_model(SlaBreachList, reply)


@router.get("/my-leads", tags=["routing"])
async def list_my_leads(
    clients: Clients, principal: Caller, rep_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> WorkList:
    """A rep's work list: open leads by time left to the first-response deadline (overdue and
    soonest first), then those without a deadline, then the ones already answered. A manager may
    look at a rep of their team (rep_id), an admin at anyone's."""
    own = principal.rep_id
    rep_id = rep_id or own
    if not rep_id:
        raise forbidden("Your token names no rep (rep_id): give the rep_id of the work list to see.")
    if rep_id != own and not _is_admin(principal):
        team = _manager_team(principal)
        if not team:
            raise forbidden("Reps see their own work list only.")
        target = await read(routing(clients).ListReps, routing_pb2.ListRepsRequest(rep_id=rep_id, team_id=team))
        if not target.reps:
            raise forbidden("Managers see the work lists of their own team only.")
    reply = await read(
        routing(clients).ListWorkList,
        routing_pb2.ListWorkListRequest(rep_id=rep_id, page_size=protoconv.page_size(page_size), page_token=page_token),
    )
    return to_model(WorkList, reply)
