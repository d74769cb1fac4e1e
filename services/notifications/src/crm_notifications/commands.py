"""Write side of notifications: message intents and their outcomes, in the caller's unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.notifications.v1 import events_pb2
from crm_kit.db import UnitOfWork
from crm_kit.protoconv import to_timestamp
from crm_notifications import domain, queries
from crm_notifications.db import messages
from crm_notifications.sms_segments import count_parts


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
    subject: str = ""


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
            subject=intent.subject,
            locale=intent.locale,
            status=intent.status.value,
            lead_id=intent.lead_id,
            order_id=intent.order_id,
            last_error=intent.last_error,
            sms_parts=count_parts(intent.body).parts if intent.channel == domain.SMS else None,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(messages)
    )
    row = inserted.first()
    if row is not None:
        return row, True
    # The key existed: the first intent is the one that counts.
    existing = await queries.find_by_key(uow, intent.idempotency_key)
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


async def claim_send(uow: UnitOfWork, message_id: str, now: datetime, lease: timedelta) -> bool:
    """Take the right to send a pending message for `lease`; False when it is settled or another
    delivery holds an unexpired claim. A delivery that dies holding it leaves it to expire, and the
    next delivery sends (an e-mail's Message-ID then lets mail fold the rare copy)."""
    claimed = await uow.conn.execute(
        update(messages)
        .where(
            messages.c.id == message_id,
            messages.c.status == domain.MessageStatus.PENDING.value,
            or_(messages.c.claimed_until.is_(None), messages.c.claimed_until < now),
        )
        .values(claimed_until=now + lease)
        .returning(messages.c.id)
    )
    return claimed.first() is not None


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


async def record_sent(uow: UnitOfWork, row: Any, now: datetime) -> None:
    """Announce a message the provider accepted (NotificationSent)."""
    await uow.record_event(
        events_pb2.NotificationSent(
            message_id=row.id,
            channel=row.channel,
            recipient=row.recipient,
            lead_id=row.lead_id,
            order_id=row.order_id,
            body=domain.redacted(row.body),
            send_time=to_timestamp(now),
            customer_id=row.customer_id,
            promotion_id=row.promotion_id or "",
            variant=row.variant or "",
        ),
        time=now,
    )


async def record_failure(uow: UnitOfWork, row: Any, reason: str) -> None:
    """Announce a message that will not be sent, suppressed or rejected (NotificationFailed)."""
    now = datetime.now(UTC)
    await uow.record_event(
        events_pb2.NotificationFailed(
            message_id=row.id,
            channel=row.channel,
            lead_id=row.lead_id,
            order_id=row.order_id,
            reason=reason,
            fail_time=to_timestamp(now),
        ),
        time=now,
    )
