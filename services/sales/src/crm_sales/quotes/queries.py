"""Reads of quotes: a version with its lines, a deal's versions, the latest version of a number,
the price list a quote is made from, and the sent versions past their last day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select

from crm_kit.db import UnitOfWork
from crm_kit.errors import InvalidArgument, NotFound
from crm_kit.pagination import keyset_page
from crm_sales.db import price_lists, quote_lines, quotes


@dataclass
class QuoteView:
    row: Any
    lines: list[Any] = field(default_factory=list)


def quote_not_found(quote_id: str) -> NotFound:
    return NotFound(f"quote {quote_id} not found", reason="QUOTE_NOT_FOUND", metadata={"quote_id": quote_id})


async def _lines(uow: UnitOfWork, quote_ids: list[str]) -> dict[str, list[Any]]:
    by_quote: dict[str, list[Any]] = {quote_id: [] for quote_id in quote_ids}
    query = select(quote_lines).where(quote_lines.c.quote_id.in_(quote_ids)).order_by(quote_lines.c.position)
    for row in await uow.conn.execute(query):
        by_quote[row.quote_id].append(row)
    return by_quote


async def get_quote(uow: UnitOfWork, quote_id: str, *, lock: bool = False) -> QuoteView:
    query = select(quotes).where(quotes.c.id == quote_id)
    row = (await uow.conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise quote_not_found(quote_id)
    return QuoteView(row=row, lines=(await _lines(uow, [quote_id]))[quote_id])


async def find_by_request_id(uow: UnitOfWork, deal_id: str, request_id: str) -> QuoteView | None:
    """The version a request on the deal made before (request ids are the deal's, not global)."""
    if not request_id:
        return None
    query = select(quotes.c.id).where(quotes.c.deal_id == deal_id, quotes.c.request_id == request_id)
    quote_id = (await uow.conn.execute(query)).scalar()
    return await get_quote(uow, quote_id) if quote_id else None


async def list_quotes(
    uow: UnitOfWork, deal_id: str, *, limit: int, after: tuple[Any, ...] | None
) -> tuple[list[QuoteView], list[Any] | None]:
    """The deal's versions newest first, by keyset (created_at, id)."""
    query = select(quotes).where(quotes.c.deal_id == deal_id)
    rows, position = await keyset_page(
        uow.conn, query, quotes.c.created_at, quotes.c.id, limit=limit, after=after, descending=True
    )
    lines = await _lines(uow, [r.id for r in rows])
    return [QuoteView(row=r, lines=lines[r.id]) for r in rows], position


async def latest_version(uow: UnitOfWork, number: str) -> int:
    return int(
        (await uow.conn.execute(select(func.max(quotes.c.version)).where(quotes.c.number == number))).scalar_one()
    )


async def next_number(uow: UnitOfWork) -> int:
    return int((await uow.conn.execute(select(func.nextval("quote_numbers")))).scalar_one())


async def price_list(uow: UnitOfWork, price_list_id: str) -> Any:
    """The price list a quote is made from; INVALID_ARGUMENT naming price_list_id when unknown."""
    row = (await uow.conn.execute(select(price_lists).where(price_lists.c.id == price_list_id))).first()
    if row is None:
        raise InvalidArgument(
            f"price list {price_list_id} not found",
            reason="PRICE_LIST_NOT_FOUND",
            field_violations=[("price_list_id", f"price list {price_list_id} not found")],
        )
    return row


async def lock_expired(uow: UnitOfWork, today: date, limit: int) -> list[Any]:
    """Up to `limit` sent versions whose last day is before today, locked; those another sweep
    holds are skipped."""
    query = (
        select(quotes.c.id, quotes.c.number, quotes.c.version, quotes.c.valid_until)
        .where(quotes.c.status == "sent", quotes.c.valid_until < today)
        .order_by(quotes.c.valid_until, quotes.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await uow.conn.execute(query)).all())
