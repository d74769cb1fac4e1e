"""/deals: read a deal and close it (won with its line items, or lost). Deals are the sales
service's (crm.sales.v1.DealsService); record rules: the deal's owner rep and team
(crm_gateway.records)."""

from __future__ import annotations

from crm_gateway import records
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, ResourceId, api_router
from crm_gateway.features.deals.schemas import CloseDealIn, Deal

router = api_router()


@router.get("/deals/{deal_id}", tags=["deals"], operation_id="getDeal")
async def get_deal(deal_id: ResourceId, clients: Clients, principal: Caller) -> Deal:
    return to_model(Deal, await records.deal(clients, principal, deal_id))


@router.post("/deals/{deal_id}/close", tags=["deals"], operation_id="closeDeal")
async def close_deal(deal_id: ResourceId, body: CloseDealIn, clients: Clients, principal: Caller) -> Deal:
    await records.deal(clients, principal, deal_id)
    reply = await clients.deals.CloseDeal(body.to_proto(deal_id))
    return to_model(Deal, reply.deal)
