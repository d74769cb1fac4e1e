"""Application layer of orders: each command runs in the caller's unit of work."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.common.v1 import types_pb2
from crm.orders.v1 import events_pb2
from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_kit.protoconv import to_date, to_timestamp
from crm_orders import domain
from crm_orders.db import order_lines, orders
from crm_orders.metrics import ORDERS_CREATED, ORDERS_SHIPPED


@dataclass
class OrderView:
    row: Any
    lines: list[Any] = field(default_factory=list)


def line_to_proto(line: domain.Line | Any) -> types_pb2.LineItem:
    """A domain line or an order_lines row as a LineItem."""
    return types_pb2.LineItem(
        sku=line.sku,
        description=line.description,
        quantity=line.quantity,
        unit_price=types_pb2.Money(amount_minor=line.unit_price_minor, currency_code=line.currency_code),
    )


async def _lines_by_order(uow: UnitOfWork, order_ids: list[str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    if not order_ids:
        return grouped
    rows = await uow.conn.execute(
        select(order_lines)
        .where(order_lines.c.order_id.in_(order_ids))
        .order_by(order_lines.c.order_id, order_lines.c.position)
    )
    for row in rows:
        grouped[row.order_id].append(row)
    return grouped


async def _order_view(uow: UnitOfWork, order_id: str, *, lock: bool = False) -> OrderView:
    query = select(orders).where(orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = (await uow.conn.execute(query)).first()
    if row is None:
        raise NotFound(f"order {order_id} not found", reason="ORDER_NOT_FOUND", metadata={"order_id": order_id})
    lines = await _lines_by_order(uow, [order_id])
    return OrderView(row=row, lines=lines[order_id])


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


async def get_order(uow: UnitOfWork, order_id: str) -> OrderView:
    return await _order_view(uow, order_id)


async def list_orders(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, deal_id: str
) -> tuple[list[OrderView], list[Any] | None]:
    """A page of orders by creation, after the keyset position `after`; returns the next position."""
    query = select(orders)
    if deal_id:
        query = query.where(orders.c.deal_id == deal_id)
    page, next_key = await keyset_page(uow.conn, query, orders.c.created_at, orders.c.id, limit=limit, after=after)
    lines = await _lines_by_order(uow, [r.id for r in page])
    return [OrderView(row=r, lines=lines[r.id]) for r in page], next_key


async def ship_order(uow: UnitOfWork, order_id: str, shipment: domain.Shipment) -> OrderView:
    """Ship a pending order and record OrderShipped; the row lock serializes concurrent ships."""
    order = await _order_view(uow, order_id, lock=True)
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
    return OrderView(row=shipped, lines=order.lines)  # lines do not change when shipping
