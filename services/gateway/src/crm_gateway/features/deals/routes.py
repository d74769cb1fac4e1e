"""/deals: list deals (filters and keyset pages), read a deal, move it stage by stage, edit it, read
its stage history and close it (won with its line items, or lost with a reason). Deals are the sales
service's (crm.sales.v1.DealsService); record rules: the deal's owner rep and team
(crm_gateway.records), and a list is held to them (crm_gateway.platform.authz.list_scope).

Optimistic concurrency: a deal's ETag is its etag; a change sent with If-Match applies only to
that version (412 otherwise), one without it applies to whatever the deal is now."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import HTTPException, Query, Response

from crm.sales.v1 import deals_pb2
from crm_gateway import records
from crm_gateway.convert import IsoDate, IsoDateTime, enum_value, to_model, to_timestamp, with_etag
from crm_gateway.deps import Caller, Clients, FilterId, IfMatch, PageSize, PageToken, ResourceId, api_router, etag_of
from crm_gateway.features.deals.schemas import (
    CloseDealIn,
    Deal,
    DealList,
    DealOrderBy,
    DealStageHistory,
    MoveDealStageIn,
    UpdateDealIn,
)
from crm_gateway.platform import authz
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


Amount = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Minor units; needs amount_currency_code")]


@router.get("/deals", tags=["deals"], operation_id="listDeals")
async def list_deals(
    clients: Clients,
    principal: Caller,
    pipeline_id: FilterId = "",
    stage_id: FilterId = "",
    status: Literal["open", "won", "lost"] | None = None,
    owner_rep_id: FilterId = "",
    owner_team_id: FilterId = "",
    expected_close_from: Annotated[IsoDate | None, Query(description="On or after (YYYY-MM-DD)")] = None,
    expected_close_to: Annotated[IsoDate | None, Query(description="On or before (YYYY-MM-DD)")] = None,
    amount_currency_code: Annotated[str, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. ILS")] = "",
    amount_min_minor: Amount = None,
    amount_max_minor: Amount = None,
    close_time_from: Annotated[IsoDateTime | None, Query(description="Closed at or after; ISO 8601")] = None,
    title_contains: Annotated[
        str, Query(max_length=100, description="Case-insensitive, within the other filters")
    ] = "",
    order_by: Annotated[DealOrderBy, Query(description="Each order ends in the deal id")] = "expected_close_date",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> DealList:
    """Deals matching every filter given, a page at a time. Admins list every deal; a manager
    their team's (owner_team_id defaults to it; another team is 403); a rep their own. Soonest
    expected close first (deals without a date last), newest first, or most recently closed first."""
    owner_rep_id, owner_team_id = authz.list_scope(principal, owner_rep_id, owner_team_id, "deals")
    request = deals_pb2.ListDealsRequest(
        page_size=protoconv.page_size(page_size),
        page_token=page_token,
        order_by=order_by,
        pipeline_id=pipeline_id,
        stage_id=stage_id,
        status=enum_value(deals_pb2.DealStatus, status) if status else deals_pb2.DEAL_STATUS_UNSPECIFIED,
        owner_rep_id=owner_rep_id,
        owner_team_id=owner_team_id,
        expected_close_from=protoconv.to_date(expected_close_from),
        expected_close_to=protoconv.to_date(expected_close_to),
        amount_currency_code=amount_currency_code,
        amount_min_minor=amount_min_minor,
        amount_max_minor=amount_max_minor,
        close_time_from=to_timestamp(close_time_from),
        title_contains=title_contains,
    )
    return to_model(DealList, await read(clients.deals.ListDeals, request))


@router.get("/deals/{deal_id}", tags=["deals"], operation_id="getDeal")
async def get_deal(deal_id: ResourceId, clients: Clients, principal: Caller, response: Response) -> Deal:
    """The deal with its pipeline stage; its ETag is the version to send back in If-Match."""
    return with_etag(Deal, await records.deal(clients, principal, deal_id), response)


@router.post("/deals/{deal_id}/close", tags=["deals"], operation_id="closeDeal")
async def close_deal(
    deal_id: ResourceId,
    body: CloseDealIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Deal:
    """Won with what was sold (an order follows), or lost with a note and a code of GET /lost-reasons."""
    await records.deal(clients, principal, deal_id)
    reply = await clients.deals.CloseDeal(body.to_proto(deal_id, etag_of(if_match)))
    return with_etag(Deal, reply.deal, response)


@router.post("/deals/{deal_id}/stage", tags=["deals"], operation_id="moveDealStage")
async def move_deal_stage(
    deal_id: ResourceId,
    body: MoveDealStageIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Deal:
    """Move an open deal to another open stage of its pipeline, forward or back. A stage whose
    required fields are empty on the deal is 409 naming each (PATCH the deal first)."""
    await records.deal(clients, principal, deal_id)
    request = deals_pb2.MoveDealStageRequest(deal_id=deal_id, stage_id=body.stage_id, etag=etag_of(if_match))
    reply = await clients.deals.MoveDealStage(request)
    return with_etag(Deal, reply.deal, response)


@router.patch("/deals/{deal_id}", tags=["deals"], operation_id="updateDeal")
async def update_deal(
    deal_id: ResourceId,
    body: UpdateDealIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Deal:
    """Change the fields the body names (title, expected close date, amount) of an open deal."""
    if not body.model_fields_set:
        raise HTTPException(422, "Name at least one field to change.")
    await records.deal(clients, principal, deal_id)
    reply = await clients.deals.UpdateDeal(body.to_proto(deal_id, etag_of(if_match)))
    return with_etag(Deal, reply.deal, response)


@router.get("/deals/{deal_id}/stage-history", tags=["deals"], operation_id="listDealStageHistory")
async def list_deal_stage_history(deal_id: ResourceId, clients: Clients, principal: Caller) -> DealStageHistory:
    """Every stage the deal entered, oldest first: who moved it, when, and how long it was in the one before."""
    await records.deal(clients, principal, deal_id)
    reply = await read(clients.deals.ListDealStageHistory, deals_pb2.ListDealStageHistoryRequest(deal_id=deal_id))
    return to_model(DealStageHistory, reply)
