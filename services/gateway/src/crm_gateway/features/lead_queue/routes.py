"""/lead-queue: the fallback queue of new leads no rep could take (admins; a manager their
team's and those no rule matched, which have no team)."""

from __future__ import annotations

from crm.leads.v1 import routing_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, FilterId, PageSize, PageToken, api_router, forbidden
from crm_gateway.features.lead_queue.schemas import RoutedLeadList
from crm_gateway.features.leads.schemas import RoutedLead
from crm_gateway.platform import authz
from crm_gateway.platform.authz import Role
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/lead-queue", tags=["routing"], operation_id="listLeadQueue")
async def list_lead_queue(
    clients: Clients, principal: Caller, team_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> RoutedLeadList:
    """New leads no rep could take, oldest first: admins all (or one team's), managers their team's
    and those no rule matched."""
    include_unteamed = False
    if not principal.has_role(Role.ADMIN):
        team = authz.managed_team(principal)
        if not team or (team_id and team_id != team):
            raise forbidden("Managers see their own team's queue only.")
        team_id, include_unteamed = team, True
    reply = await read(
        clients.routing.ListLeadQueue,
        routing_pb2.ListLeadQueueRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            team_id=team_id,
            include_unteamed=include_unteamed,
        ),
    )
    return RoutedLeadList(
        leads=[to_model(RoutedLead, lead) for lead in reply.leads], next_page_token=reply.next_page_token
    )
