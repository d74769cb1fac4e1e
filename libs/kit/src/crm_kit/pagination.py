"""Keyset pagination (AIP-158) over a (sort column, unique tie-break column) pair."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncConnection


async def keyset_page(
    conn: AsyncConnection,
    query: Select[Any],
    sort: ColumnElement[Any],
    tiebreak: ColumnElement[Any],
    *,
    limit: int,
    after: tuple[Any, ...] | None,
    descending: bool = False,
) -> tuple[list[Row[Any]], list[Any] | None]:
    """Up to `limit` rows of query ordered by (sort, tiebreak) (both descending if asked: newest
    first), after the position `after`; and the position of the next page (for
    `protoconv.encode_page_token`), or None on the last page."""
    if descending:
        query = query.order_by(sort.desc(), tiebreak.desc()).limit(limit + 1)
    else:
        query = query.order_by(sort, tiebreak).limit(limit + 1)
    if after:
        value, last = after
        if descending:
            query = query.where(or_(sort < value, and_(sort == value, tiebreak < last)))
        else:
            query = query.where(or_(sort > value, and_(sort == value, tiebreak > last)))
    rows = list((await conn.execute(query)).all())
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    position = [page[-1]._mapping[sort], page[-1]._mapping[tiebreak]]
    return page, [v.isoformat() if isinstance(v, datetime) else v for v in position]
