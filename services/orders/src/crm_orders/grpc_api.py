"""OrdersService: proto ↔ application functions. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from crm.common.v1 import types_pb2
from crm.orders.v1 import orders_pb2, orders_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_date, to_timestamp
from crm_orders import commands, domain, queries

_ORDER_STATUS = {
    domain.OrderStatus.PENDING.value: orders_pb2.ORDER_STATUS_PENDING,
    domain.OrderStatus.SHIPPED.value: orders_pb2.ORDER_STATUS_SHIPPED,
}


def order_to_proto(view: queries.OrderView) -> orders_pb2.Order:
    r = view.row
    order = orders_pb2.Order(
        id=r.id,
        deal_id=r.deal_id,
        lead_id=r.lead_id,
        status=_ORDER_STATUS[r.status],
        lines=[commands.line_to_proto(line) for line in view.lines],
        total=types_pb2.Money(amount_minor=r.total_minor, currency_code=r.currency_code),
        create_time=to_timestamp(r.created_at),
    )
    if r.status == domain.OrderStatus.SHIPPED.value:
        order.shipment.CopyFrom(
            orders_pb2.Shipment(
                carrier=r.carrier,
                tracking_number=r.tracking_number,
                estimated_delivery_date=to_date(r.estimated_delivery_date),
                ship_time=to_timestamp(r.shipped_at),
            )
        )
    return order


class OrdersServicer(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.GetOrderResponse:
        require({"order_id": request.order_id})
        async with self.db.unit_of_work() as uow:
            return orders_pb2.GetOrderResponse(order=order_to_proto(await queries.get_order(uow, request.order_id)))

    async def ListOrders(
        self, request: orders_pb2.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.ListOrdersResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            views, next_key = await queries.list_orders(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                deal_id=request.deal_id,
            )
        return orders_pb2.ListOrdersResponse(
            orders=[order_to_proto(v) for v in views],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def ShipOrder(
        self, request: orders_pb2.ShipOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.ShipOrderResponse:
        require({"order_id": request.order_id})
        eta = request.estimated_delivery_date
        shipment = domain.validate_shipment(
            carrier=request.carrier,
            tracking_number=request.tracking_number,
            delivery_date=(eta.year, eta.month, eta.day) if request.HasField("estimated_delivery_date") else None,
            today=datetime.now(UTC).date(),
        )
        async with self.db.unit_of_work() as uow:
            order = await commands.ship_order(uow, request.order_id, shipment)
        return orders_pb2.ShipOrderResponse(order=order_to_proto(order))
