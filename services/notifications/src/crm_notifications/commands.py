"""Application layer of notifications: message rows and templates, in the caller's unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_notifications import domain
from crm_notifications.db import messages, templates


@dataclass(frozen=True)
class Intent:
    """A message about to be sent (or suppressed), keyed by its idempotency key."""

    idempotency_key: str
    channel: str
    recipient: str
    body: str
    locale: str
    status: domain.MessageStatus
    lead_id: str
    order_id: str
    last_error: str = ""


async def templates_for(uow: UnitOfWork, code: str) -> dict[str, str]:
    """Every locale's body of the template code."""
    rows = (await uow.conn.execute(select(templates.c.locale, templates.c.body).where(templates.c.code == code))).all()
    return {r.locale: r.body for r in rows}


async def find_by_key(uow: UnitOfWork, idempotency_key: str) -> Any | None:
    return (await uow.conn.execute(select(messages).where(messages.c.idempotency_key == idempotency_key))).first()


async def record_intent(uow: UnitOfWork, intent: Intent) -> tuple[Any, bool]:
    """Insert the intent unless its key exists; returns (the row for the key, inserted)."""
    inserted = await uow.conn.execute(
        pg_insert(messages)
        .values(
            id=str(uuid.uuid4()),
            idempotency_key=intent.idempotency_key,
            channel=intent.channel,
            recipient=intent.recipient,
            body=intent.body,
            locale=intent.locale,
            status=intent.status.value,
            lead_id=intent.lead_id,
            order_id=intent.order_id,
            last_error=intent.last_error,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(messages)
    )
    row = inserted.first()
    if row is not None:
        return row, True
    # The key existed: the first intent is the one that counts.
    existing = await find_by_key(uow, intent.idempotency_key)
    assert existing is not None, "the intent row exists after an insert-or-keep"
    return existing, False


async def mark_sent(uow: UnitOfWork, message_id: str, provider_message_id: str, attempts: int, now: datetime) -> Any:
    """Mark a pending message sent; None when it was no longer pending (a concurrent send won)."""
    return (
        await uow.conn.execute(
            update(messages)
            .where(messages.c.id == message_id, messages.c.status == domain.MessageStatus.PENDING.value)
            .values(
                status=domain.MessageStatus.SENT.value,
                provider_message_id=provider_message_id,
                attempts=messages.c.attempts + attempts,
                last_error="",
                updated_at=now,
            )
            .returning(messages)
        )
    ).first()


async def mark_failed(uow: UnitOfWork, message_id: str, attempts: int, error: str, now: datetime) -> Any:
    """Mark a pending message permanently failed; None when it was no longer pending."""
    return (
        await uow.conn.execute(
            update(messages)
            .where(messages.c.id == message_id, messages.c.status == domain.MessageStatus.PENDING.value)
            .values(
                status=domain.MessageStatus.FAILED.value,
                attempts=messages.c.attempts + attempts,
                last_error=error[:4000],
                updated_at=now,
            )
            .returning(messages)
        )
    ).first()


async def note_attempts(uow: UnitOfWork, message_id: str, attempts: int, error: str) -> None:
    """Count failed attempts of a message that stays pending (it will be retried)."""
    await uow.conn.execute(
        update(messages)
        .where(messages.c.id == message_id)
        .values(attempts=messages.c.attempts + attempts, last_error=error[:4000], updated_at=datetime.now(UTC))
    )


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
