"""/deals: read a deal, move it stage by stage, edit it, read its stage history and close it (won
with its line items, or lost with a reason). Deals are the sales service's
(crm.sales.v1.DealsService); record rules: the deal's owner rep and team (crm_gateway.records).

Optimistic concurrency: a deal's ETag is its etag; a change sent with If-Match applies only to
that version (412 otherwise), one without it applies to whatever the deal is now."""

from __future__ import annotations

from fastapi import HTTPException, Response

from crm.sales.v1 import deals_pb2
from crm_gateway import records
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, IfMatch, ResourceId, api_router, etag_of
from crm_gateway.features.deals.schemas import CloseDealIn, Deal, DealStageHistory, MoveDealStageIn, UpdateDealIn
from crm_gateway.records import read

router = api_router()


def _deal(deal: deals_pb2.Deal, response: Response) -> Deal:
    if deal.etag:
        response.headers["ETag"] = deal.etag
    return to_model(Deal, deal)


@router.get("/deals/{deal_id}", tags=["deals"], operation_id="getDeal")
async def get_deal(deal_id: ResourceId, clients: Clients, principal: Caller, response: Response) -> Deal:
    """The deal with its pipeline stage; its ETag is the version to send back in If-Match."""
    return _deal(await records.deal(clients, principal, deal_id), response)


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
    return _deal(reply.deal, response)


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
    return _deal(reply.deal, response)


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
    return _deal(reply.deal, response)


@router.get("/deals/{deal_id}/stage-history", tags=["deals"], operation_id="listDealStageHistory")
async def list_deal_stage_history(deal_id: ResourceId, clients: Clients, principal: Caller) -> DealStageHistory:
    """Every stage the deal entered, oldest first: who moved it, when, and how long it was in the one before."""
    await records.deal(clients, principal, deal_id)
    reply = await read(clients.deals.ListDealStageHistory, deals_pb2.ListDealStageHistoryRequest(deal_id=deal_id))
    return to_model(DealStageHistory, reply)
