"""Read side of orders: orders with their lines, in the caller's unit of work."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_orders.db import order_lines, orders


@dataclass
class OrderView:
    row: Any
    lines: list[Any] = field(default_factory=list)


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


async def get_order(uow: UnitOfWork, order_id: str, *, lock: bool = False) -> OrderView:
    """An order with its lines; with lock, its row stays locked FOR UPDATE to the end of the transaction."""
    query = select(orders).where(orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = (await uow.conn.execute(query)).first()
    if row is None:
        raise NotFound(f"order {order_id} not found", reason="ORDER_NOT_FOUND", metadata={"order_id": order_id})
    lines = await _lines_by_order(uow, [order_id])
    return OrderView(row=row, lines=lines[order_id])


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
