"""Write side of orders: each command runs in the caller's unit of work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.common.v1 import types_pb2
from crm.orders.v1 import events_pb2
from crm_kit.db import UnitOfWork
from crm_kit.protoconv import to_date, to_timestamp
from crm_orders import domain, queries
from crm_orders.db import order_lines, orders
from crm_orders.metrics import ORDERS_CREATED, ORDERS_SHIPPED


def line_to_proto(line: domain.Line | Any) -> types_pb2.LineItem:
    """A domain line or an order_lines row as a LineItem."""
    return types_pb2.LineItem(
        sku=line.sku,
        description=line.description,
        quantity=line.quantity,
        unit_price=types_pb2.Money(amount_minor=line.unit_price_minor, currency_code=line.currency_code),
    )


async def create_order(uow: UnitOfWork, new: domain.NewOrder) -> str | None:
    """Create the order of a won deal and record OrderCreated; None if the deal already has one."""
    deal_id, lead_id = new.deal_id, new.lead_id
    now = datetime.now(UTC)
    order_id = str(uuid.uuid4())
    inserted = await uow.conn.execute(
        pg_insert(orders)
        .values(
            id=order_id,
            deal_id=deal_id,
            lead_id=lead_id,
            status=domain.OrderStatus.PENDING.value,
            total_minor=new.total_minor,
            currency_code=new.currency_code,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["deal_id"])
        .returning(orders.c.id)
    )
    if inserted.first() is None:
        return None
    await uow.conn.execute(
        order_lines.insert(),
        [
            {
                "order_id": order_id,
                "position": i,
                "sku": line.sku,
                "description": line.description,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "currency_code": line.currency_code,
            }
            for i, line in enumerate(new.lines)
        ],
    )
    await uow.record_event(
        events_pb2.OrderCreated(
            order_id=order_id,
            deal_id=deal_id,
            lead_id=lead_id,
            lines=[line_to_proto(line) for line in new.lines],
            total=types_pb2.Money(amount_minor=new.total_minor, currency_code=new.currency_code),
            create_time=to_timestamp(now),
        ),
        time=now,
    )
    uow.audit(
        "orders.CreateOrderFromDeal",
        "order",
        order_id,
        {
            "status": domain.OrderStatus.PENDING.value,
            "deal_id": deal_id,
            "total_minor": new.total_minor,
            "currency_code": new.currency_code,
        },
    )
    uow.after_commit(ORDERS_CREATED.labels(new.currency_code).inc)
    return order_id


async def ship_order(uow: UnitOfWork, order_id: str, shipment: domain.Shipment) -> queries.OrderView:
    """Ship a pending order and record OrderShipped; the row lock serializes concurrent ships."""
    order = await queries.get_order(uow, order_id, lock=True)
    domain.ensure_can_ship(domain.OrderStatus(order.row.status))
    now = datetime.now(UTC)
    shipped = (
        await uow.conn.execute(
            update(orders)
            .where(orders.c.id == order_id)
            .values(
                status=domain.OrderStatus.SHIPPED.value,
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                estimated_delivery_date=shipment.estimated_delivery_date,
                shipped_at=now,
            )
            .returning(orders)
        )
    ).one()
    await uow.record_event(
        events_pb2.OrderShipped(
            order_id=order_id,
            deal_id=order.row.deal_id,
            lead_id=order.row.lead_id,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            estimated_delivery_date=to_date(shipment.estimated_delivery_date),
            ship_time=to_timestamp(now),
        ),
        time=now,
    )
    uow.audit(
        "orders.ShipOrder",
        "order",
        order_id,
        {
            "status": domain.OrderStatus.SHIPPED.value,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "eta": shipment.estimated_delivery_date.isoformat(),
        },
    )
    uow.after_commit(ORDERS_SHIPPED.inc)
    return queries.OrderView(row=shipped, lines=order.lines)  # lines do not change when shipping
