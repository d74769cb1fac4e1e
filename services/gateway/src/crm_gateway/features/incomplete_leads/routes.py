"""/incomplete-leads: leads that lack a field needed to act on them (reps their own, managers
their team's)."""

from __future__ import annotations

from crm.leads.v1 import duplicates_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, FilterId, PageSize, PageToken, api_router
from crm_gateway.features.leads.schemas import LeadList
from crm_gateway.platform import authz
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/incomplete-leads", tags=["duplicates"], operation_id="listIncompleteLeads")
async def list_incomplete_leads(
    clients: Clients,
    principal: Caller,
    rep_id: FilterId = "",
    team_id: FilterId = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> LeadList:
    """Leads that lack a field needed to act on them (missing_fields, e.g. phone_number), newest
    first; admins all, a manager their team's, a rep their own."""
    rep_id, team_id = authz.list_scope(principal, rep_id, team_id, "incomplete leads")
    reply = await read(
        clients.duplicates.ListIncompleteLeads,
        duplicates_pb2.ListIncompleteLeadsRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, rep_id=rep_id, team_id=team_id
        ),
    )
    return to_model(LeadList, reply)
