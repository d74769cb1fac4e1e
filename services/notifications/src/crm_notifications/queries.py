"""Read side of notifications: templates and message rows, in the caller's unit of work."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_notifications import domain
from crm_notifications.db import messages, templates


async def templates_for(uow: UnitOfWork, code: str) -> dict[str, domain.Template]:
    """Every locale's template (body, and subject for e-mail) of the template code."""
    query = select(templates.c.locale, templates.c.body, templates.c.subject).where(templates.c.code == code)
    return {r.locale: domain.Template(r.body, r.subject) for r in (await uow.conn.execute(query)).all()}


async def find_by_key(uow: UnitOfWork, idempotency_key: str) -> Any | None:
    return (await uow.conn.execute(select(messages).where(messages.c.idempotency_key == idempotency_key))).first()


async def get_message(uow: UnitOfWork, message_id: str) -> Any:
    row = (await uow.conn.execute(select(messages).where(messages.c.id == message_id))).first()
    if row is None:
        raise NotFound(
            f"message {message_id} not found", reason="MESSAGE_NOT_FOUND", metadata={"message_id": message_id}
        )
    return row


async def list_messages(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, order_id: str, lead_id: str
) -> tuple[list[Any], list[Any] | None]:
    """A page of messages, oldest first, and the keyset position of the next page (or None)."""
    query = select(messages)
    if order_id:
        query = query.where(messages.c.order_id == order_id)
    if lead_id:
        query = query.where(messages.c.lead_id == lead_id)
    return await keyset_page(uow.conn, query, messages.c.created_at, messages.c.id, limit=limit, after=after)
