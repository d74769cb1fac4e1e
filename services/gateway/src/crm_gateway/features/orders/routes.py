"""/orders: the orders department and service agents see every order; sales the orders of the
deals they see (crm_gateway.records)."""

from __future__ import annotations

from crm.orders.v1 import orders_pb2
from crm_gateway import records
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, FilterId, PageSize, PageToken, ResourceId, api_router, forbidden
from crm_gateway.features.orders.schemas import Order, OrderList, ShipOrderIn
from crm_gateway.platform import authz
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/orders", tags=["orders"], operation_id="listOrders")
async def list_orders(
    clients: Clients, principal: Caller, deal_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> OrderList:
    """The orders department and service agents list every order; sales list a deal's orders."""
    if not authz.sees_every_order(principal):
        if not deal_id:
            raise forbidden("Sales roles list orders of one deal: give deal_id.")
        await records.deal(clients, principal, deal_id)
    reply = await read(
        clients.orders.ListOrders,
        orders_pb2.ListOrdersRequest(page_size=protoconv.page_size(page_size), page_token=page_token, deal_id=deal_id),
    )
    return to_model(OrderList, reply)


@router.get("/orders/{order_id}", tags=["orders"], operation_id="getOrder")
async def get_order(order_id: ResourceId, clients: Clients, principal: Caller) -> Order:
    return to_model(Order, await records.order(clients, principal, order_id))


@router.post("/orders/{order_id}/ship", tags=["orders"], operation_id="shipOrder")
async def ship_order(order_id: ResourceId, body: ShipOrderIn, clients: Clients, principal: Caller) -> Order:
    reply = await clients.orders.ShipOrder(body.to_proto(order_id))
    return to_model(Order, reply.order)
