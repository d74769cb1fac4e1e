"""/my-leads: a rep's work list, by time left to each lead's first-response deadline."""

from __future__ import annotations

from crm.leads.v1 import routing_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, FilterId, PageSize, PageToken, api_router, forbidden
from crm_gateway.features.my_leads.schemas import WorkList
from crm_gateway.platform import authz
from crm_gateway.platform.authz import Role
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/my-leads", tags=["routing"], operation_id="listMyLeads")
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
    if rep_id != own and not principal.has_role(Role.ADMIN):
        team = authz.managed_team(principal)
        if not team:
            raise forbidden("Reps see their own work list only.")
        target = await read(clients.routing.ListReps, routing_pb2.ListRepsRequest(rep_id=rep_id, team_id=team))
        if not target.reps:
            raise forbidden("Managers see the work lists of their own team only.")
    reply = await read(
        clients.routing.ListWorkList,
        routing_pb2.ListWorkListRequest(rep_id=rep_id, page_size=protoconv.page_size(page_size), page_token=page_token),
    )
    return to_model(WorkList, reply)
