"""/sla-breaches: leads whose first response missed its deadline (admins; a manager their team's)."""

from __future__ import annotations

from crm.leads.v1 import routing_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, FilterId, PageSize, PageToken, api_router, forbidden
from crm_gateway.features.sla_breaches.schemas import SlaBreachList
from crm_gateway.platform import authz
from crm_gateway.platform.authz import Role
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/sla-breaches", tags=["routing"], operation_id="listSlaBreaches")
async def list_sla_breaches(
    clients: Clients, principal: Caller, team_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> SlaBreachList:
    """Leads whose first response missed its deadline, newest first: admins all, managers their team's."""
    if not principal.has_role(Role.ADMIN):
        team = authz.managed_team(principal)
        if not team or (team_id and team_id != team):
            raise forbidden("Managers see their own team's breaches only.")
        team_id = team
    reply = await read(
        clients.routing.ListSlaBreaches,
        routing_pb2.ListSlaBreachesRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, team_id=team_id
        ),
    )
    return to_model(SlaBreachList, reply)
