"""The rows of scheduled reports' e-mails: one per event and recipient, its send claim and outcome."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_kit.db import UnitOfWork
from crm_notifications.db import report_mails

PENDING, SENT, FAILED = "pending", "sent", "failed"


async def intent(uow: UnitOfWork, key: str, schedule_id: str, recipient: str, subject: str) -> Any:
    """The recipient's row, made pending the first time."""
    await uow.conn.execute(
        pg_insert(report_mails)
        .values(
            idempotency_key=key, schedule_id=schedule_id, recipient=recipient, subject=subject[:300], status=PENDING
        )
        .on_conflict_do_nothing(index_elements=[report_mails.c.idempotency_key])
    )
    return (await uow.conn.execute(select(report_mails).where(report_mails.c.idempotency_key == key))).one()


async def claim(uow: UnitOfWork, key: str, now: datetime, lease: timedelta) -> bool:
    """The right to hand it to the relay for `lease`; False when settled or claimed by another delivery."""
    claimed = await uow.conn.execute(
        update(report_mails)
        .where(
            report_mails.c.idempotency_key == key,
            report_mails.c.status == PENDING,
            or_(report_mails.c.claimed_until.is_(None), report_mails.c.claimed_until < now),
        )
        .values(claimed_until=now + lease)
        .returning(report_mails.c.idempotency_key)
    )
    return claimed.first() is not None


async def settle(
    uow: UnitOfWork, key: str, status: str, attempts: int, now: datetime, *, message_id: str = "", error: str = ""
) -> None:
    await uow.conn.execute(
        update(report_mails)
        .where(report_mails.c.idempotency_key == key, report_mails.c.status == PENDING)
        .values(
            status=status,
            attempts=report_mails.c.attempts + attempts,
            provider_message_id=message_id or None,
            last_error=error[:2000],
            sent_at=now if status == SENT else None,
            claimed_until=None,
        )
    )


async def note_attempts(uow: UnitOfWork, key: str, attempts: int, error: str) -> None:
    await uow.conn.execute(
        update(report_mails)
        .where(report_mails.c.idempotency_key == key)
        .values(attempts=report_mails.c.attempts + attempts, last_error=error[:2000], claimed_until=None)
    )
