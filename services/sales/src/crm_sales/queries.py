"""Reads of sales: a deal with its items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_sales.db import deal_items, deals


@dataclass
class DealView:
    row: Any
    items: list[Any] = field(default_factory=list)


def deal_not_found(deal_id: str) -> NotFound:
    return NotFound(f"deal {deal_id} not found", reason="DEAL_NOT_FOUND", metadata={"deal_id": deal_id})


async def get_deal(uow: UnitOfWork, deal_id: str) -> DealView:
    row = (await uow.conn.execute(select(deals).where(deals.c.id == deal_id))).first()
    if row is None:
        raise deal_not_found(deal_id)
    items = (
        await uow.conn.execute(
            select(deal_items).where(deal_items.c.deal_id == deal_id).order_by(deal_items.c.position)
        )
    ).all()
    return DealView(row=row, items=list(items))
