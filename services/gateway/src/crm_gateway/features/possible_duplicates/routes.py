"""/possible-duplicates: review pairs of leads that may be one person (merging is
POST /leads/{id}/merge).

Record rules: a caller acts only on pairs whose two leads they see (crm_gateway.records), else
404. A manager reviews pairs whose two leads are both in their team; a pair across teams is an
admin's.
"""

from __future__ import annotations

from typing import Literal

from crm.leads.v1 import duplicates_pb2
from crm_gateway import records
from crm_gateway.convert import enum_value, to_model
from crm_gateway.deps import Caller, Clients, FilterId, PageSize, PageToken, ResourceId, api_router, forbidden
from crm_gateway.features.possible_duplicates.schemas import PossibleDuplicate, PossibleDuplicateList
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.platform.authz import Role
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


def _pair_visible(principal: Principal, pair: duplicates_pb2.PossibleDuplicate) -> bool:
    return authz.lead_visible(principal, pair.lead) and authz.lead_visible(principal, pair.other_lead)


@router.get("/possible-duplicates", tags=["duplicates"], operation_id="listPossibleDuplicates")
async def list_possible_duplicates(
    clients: Clients,
    principal: Caller,
    status: Literal["open", "merged", "dismissed"] = "open",
    team_id: FilterId = "",
    lead_id: FilterId = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> PossibleDuplicateList:
    """Pairs of leads that may be one person (same name, different contact details), newest first.
    Admins see every pair; a manager the pairs whose two leads are in their team."""
    if not principal.has_role(Role.ADMIN):
        if team_id and team_id != principal.team_id:
            raise forbidden("Managers review the possible duplicates of their own team only.")
        team_id = principal.team_id
        if not team_id:
            raise forbidden("A manager's token names no team.")
    if lead_id:
        await records.lead(clients, principal, lead_id)
    reply = await read(
        clients.duplicates.ListPossibleDuplicates,
        duplicates_pb2.ListPossibleDuplicatesRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            status=enum_value(duplicates_pb2.PossibleDuplicateStatus, status),
            team_id=team_id,
            lead_id=lead_id,
        ),
    )
    return to_model(PossibleDuplicateList, reply)


@router.post(
    "/possible-duplicates/{possible_duplicate_id}/dismiss", tags=["duplicates"], operation_id="dismissPossibleDuplicate"
)
async def dismiss_possible_duplicate(
    possible_duplicate_id: ResourceId, clients: Clients, principal: Caller
) -> PossibleDuplicate:
    """Two different people after all: the pair is closed (409 when it is not open)."""
    found = await records.get(
        "possible duplicate",
        possible_duplicate_id,
        clients.duplicates.GetPossibleDuplicate,
        duplicates_pb2.GetPossibleDuplicateRequest(possible_duplicate_id=possible_duplicate_id),
    )
    if not _pair_visible(principal, found.possible_duplicate):
        raise records.not_found("possible duplicate", possible_duplicate_id)
    reply = await clients.duplicates.DismissPossibleDuplicate(
        duplicates_pb2.DismissPossibleDuplicateRequest(possible_duplicate_id=possible_duplicate_id)
    )
    return to_model(PossibleDuplicate, reply.possible_duplicate)
