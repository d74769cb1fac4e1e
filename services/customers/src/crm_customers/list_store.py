"""Static audience lists' rows: a CSV's keys matched to live customers, the list with its import
report and its members, in the caller's unit of work (the file is read by `audience_lists`).

Matching is one statement per column used, each with one array parameter whatever the file's
length: customer ids (a merged customer's id names its survivor), E.164 numbers and e-mail
addresses of live customers (a number two customers share puts both on the list).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, any_, delete, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_customers import audience_lists
from crm_customers.audience_lists import Key, LineError
from crm_customers.db import audience_list_members, customers
from crm_customers.db import audience_lists as lists_table
from crm_kit.db import UnitOfWork
from crm_kit.pagination import keyset_page

c = customers


def _values(keys: Iterable[Key], field: str) -> list[str]:
    return sorted({k.value for k in keys if k.field == field})


async def match(uow: UnitOfWork, keys: list[Key]) -> dict[tuple[str, str], list[str]]:
    """(field, value) → the live customers it names."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    queries: list[tuple[str, Any, Any]] = [
        ("customer_id", c.c.id, func.coalesce(c.c.merged_into_id, c.c.id)),
        ("phone_number", c.c.phone_number, c.c.id),
        ("email", c.c.email, c.c.id),
    ]
    for field, column, target in queries:
        values = _values(keys, field)
        if not values:
            continue
        query = select(column.label("value"), target.label("customer_id")).where(
            column == any_(literal(values, ARRAY(Text)))
        )
        if field != "customer_id":
            query = query.where(c.c.merged_into_id.is_(None))
        for row in await uow.conn.execute(query):
            found[(field, row.value)].append(row.customer_id)
    return found


async def by_request(uow: UnitOfWork, request_id: str) -> Any | None:
    if not request_id:
        return None
    return (await uow.conn.execute(select(lists_table).where(lists_table.c.request_id == request_id))).first()


async def create(
    uow: UnitOfWork,
    *,
    name: str,
    customer_ids: set[str],
    lines: int,
    errors: list[LineError],
    created_by: str,
    request_id: str,
    at: datetime,
) -> Any | None:
    """The list and its members; None when a list with the request id was made meanwhile."""
    list_id = str(uuid.uuid4())
    kept = [
        {"line_number": e.line_number, "field": e.field, "message": e.message}
        for e in errors[: audience_lists.MAX_KEPT_ERRORS]
    ]
    row = (
        await uow.conn.execute(
            pg_insert(lists_table)
            .values(
                id=list_id,
                name=name,
                members=len(customer_ids),
                lines=lines,
                error_count=len(errors),
                errors=kept,
                created_by=created_by,
                request_id=request_id or None,
                created_at=at,
            )
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(lists_table)
        )
    ).first()
    if row is None:
        return None
    if customer_ids:
        members = select(
            literal(list_id, String).label("list_id"),
            func.unnest(literal(sorted(customer_ids), ARRAY(Text))).label("customer_id"),
        )
        await uow.conn.execute(
            pg_insert(audience_list_members).from_select(["list_id", "customer_id"], members).on_conflict_do_nothing()
        )
    return row


async def get(uow: UnitOfWork, list_id: str) -> Any | None:
    return (await uow.conn.execute(select(lists_table).where(lists_table.c.id == list_id))).first()


async def exists(uow: UnitOfWork, list_id: str) -> bool:
    """Whether the list exists (asked before every audience page: its key only, not its errors)."""
    found = await uow.conn.execute(select(lists_table.c.id).where(lists_table.c.id == list_id))
    return found.first() is not None


async def page(uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None) -> tuple[list[Any], list[Any] | None]:
    """Lists newest first (keyset on creation time and id)."""
    query = select(*(col for col in lists_table.c if col.name != "errors"))
    return await keyset_page(
        uow.conn, query, lists_table.c.created_at, lists_table.c.id, limit=limit, after=after, descending=True
    )


async def move_members(uow: UnitOfWork, duplicate_id: str, survivor_id: str) -> None:
    """A merge: the lists that named the duplicate name the survivor (once, if both were on one)."""
    m = audience_list_members
    moved = select(m.c.list_id, literal(survivor_id, String).label("customer_id")).where(
        m.c.customer_id == duplicate_id
    )
    await uow.conn.execute(pg_insert(m).from_select(["list_id", "customer_id"], moved).on_conflict_do_nothing())
    await uow.conn.execute(delete(m).where(m.c.customer_id == duplicate_id))
