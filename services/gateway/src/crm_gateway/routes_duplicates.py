"""Duplicates routes: review possible duplicates, merge leads and customers, list incomplete leads.

Record rules: a caller acts only on records they see (crm_gateway.records), both sides of a pair
or merge; anything else is 404. A manager reviews pairs whose two leads are both in their team;
a pair across teams is an admin's.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import grpc
from fastapi import APIRouter, Depends, HTTPException

from crm.customers.v1 import customers_pb2
from crm.leads.v1 import duplicates_pb2, duplicates_pb2_grpc
from crm_gateway import authz, records
from crm_gateway.auth import Caller, Principal, authorize
from crm_gateway.authz import Role
from crm_gateway.clients import BackendClients
from crm_gateway.problems import PROBLEM_RESPONSES
from crm_gateway.records import read
from crm_gateway.routes import (
    Clients,
    FilterId,
    PageSize,
    PageToken,
    ResourceId,
    forbidden,
    json_bodies_only,
)
from crm_gateway.schemas import Lead, LeadList, to_model
from crm_gateway.schemas_duplicates import (
    MergeCustomersIn,
    MergedCustomer,
    MergeLeadsIn,
    PossibleDuplicate,
    PossibleDuplicateList,
)
from crm_kit import protoconv

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(authorize), Depends(json_bodies_only)],
    responses=PROBLEM_RESPONSES,
)

_STATUS = {
    "open": duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_OPEN,
    "merged": duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_MERGED,
    "dismissed": duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_DISMISSED,
}


@cache
def _stub(channel: grpc.aio.Channel) -> duplicates_pb2_grpc.DuplicatesServiceStub:
    # DuplicatesService is served on the leads service's port: one stub per leads channel.
    return duplicates_pb2_grpc.DuplicatesServiceStub(channel)


def duplicates_of(clients: BackendClients) -> duplicates_pb2_grpc.DuplicatesServiceStub:
    return _stub(clients.channels["leads"])


def _pair_visible(principal: Principal, pair: duplicates_pb2.PossibleDuplicate) -> bool:
    return authz.lead_visible(principal, pair.lead) and authz.lead_visible(principal, pair.other_lead)


@router.get("/possible-duplicates", tags=["duplicates"])
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
        duplicates_of(clients).ListPossibleDuplicates,
        duplicates_pb2.ListPossibleDuplicatesRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            status=_STATUS[status],
            team_id=team_id,
            lead_id=lead_id,
        ),
    )
    return to_model(PossibleDuplicateList, reply)


@router.post("/possible-duplicates/{possible_duplicate_id}/dismiss", tags=["duplicates"])
async def dismiss_possible_duplicate(
    possible_duplicate_id: ResourceId, clients: Clients, principal: Caller
) -> PossibleDuplicate:
    """Two different people after all: the pair is closed (409 when it is not open)."""
    try:
        found = await read(
            duplicates_of(clients).GetPossibleDuplicate,
            duplicates_pb2.GetPossibleDuplicateRequest(possible_duplicate_id=possible_duplicate_id),
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise records.not_found("possible duplicate", possible_duplicate_id) from exc
        raise
    if not _pair_visible(principal, found.possible_duplicate):
        raise records.not_found("possible duplicate", possible_duplicate_id)
    reply = await duplicates_of(clients).DismissPossibleDuplicate(
        duplicates_pb2.DismissPossibleDuplicateRequest(possible_duplicate_id=possible_duplicate_id)
    )
    return to_model(PossibleDuplicate, reply.possible_duplicate)


@router.post("/leads/{lead_id}/merge", tags=["duplicates"])
async def merge_leads(lead_id: ResourceId, body: MergeLeadsIn, clients: Clients, principal: Caller) -> Lead:
    """Merge duplicate_lead_id into this lead, which keeps its id, rep and status; the duplicate
    stays readable with merged_into_lead_id and leaves every list. 409 when either is already
    merged or both have a deal."""
    await records.lead(clients, principal, lead_id)
    try:
        await records.lead(clients, principal, body.duplicate_lead_id)
    except HTTPException as exc:
        raise HTTPException(404, f"No lead with id {body.duplicate_lead_id!r}.") from exc
    reply = await duplicates_of(clients).MergeLeads(
        duplicates_pb2.MergeLeadsRequest(lead_id=lead_id, duplicate_lead_id=body.duplicate_lead_id)
    )
    return to_model(Lead, reply.lead)


@router.get("/incomplete-leads", tags=["duplicates"])
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
        duplicates_of(clients).ListIncompleteLeads,
        duplicates_pb2.ListIncompleteLeadsRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, rep_id=rep_id, team_id=team_id
        ),
    )
    return to_model(LeadList, reply)


@router.post("/customers/{customer_id}/merge", tags=["duplicates"])
async def merge_customers(
    customer_id: ResourceId, body: MergeCustomersIn, clients: Clients, principal: Caller
) -> MergedCustomer:
    """Merge duplicate_customer_id into this customer: timelines joined, leads moved, the stricter
    consent kept; the duplicate stays readable with merged_into_customer_id. 409 when either is
    already merged."""
    await records.customer(clients, principal, customer_id)
    await records.customer(clients, principal, body.duplicate_customer_id)
    reply = await clients.customers.MergeCustomers(
        customers_pb2.MergeCustomersRequest(customer_id=customer_id, duplicate_customer_id=body.duplicate_customer_id)
    )
    return to_model(MergedCustomer, reply.customer)
