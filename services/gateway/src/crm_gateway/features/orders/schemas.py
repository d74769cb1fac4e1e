"""Request and response bodies of /orders."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from crm.orders.v1 import orders_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, LineItem, Money, RequestBody, RequiredText
from crm_kit import protoconv


class ShipOrderIn(RequestBody):
    carrier: RequiredText
    tracking_number: Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]
    estimated_delivery_date: date

    def to_proto(self, order_id: str) -> orders_pb2.ShipOrderRequest:
        return orders_pb2.ShipOrderRequest(
            order_id=order_id,
            carrier=self.carrier,
            tracking_number=self.tracking_number,
            estimated_delivery_date=protoconv.to_date(self.estimated_delivery_date),
        )


class Shipment(BaseModel):
    carrier: str
    tracking_number: str
    estimated_delivery_date: date | None
    ship_time: datetime | None


class Order(BaseModel):
    id: str
    deal_id: str
    lead_id: str
    status: Literal["unspecified", "pending", "shipped"]
    lines: list[LineItem]
    total: Money | None
    shipment: Shipment | None
    create_time: datetime | None


class OrderList(BaseModel):
    orders: list[Order]
    next_page_token: str
