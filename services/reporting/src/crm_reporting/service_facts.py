"""Write side of reporting's service and consent facts (support's tickets and surveys, customers'
consents), in the caller's unit of work.

Like the sales facts (`commands`), each upsert converges whatever order the events arrive in: a
resolution seen before its opening leaves a partial row that the opening completes. Counters
(`resolutions`, `warnings`, `breaches`) are incremented once per event: the handler runs with the
chassis's inbox claim, so a redelivered event never reaches them twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import case, func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_kit.db import UnitOfWork
from crm_reporting.db import consent_facts, ticket_facts

_t = ticket_facts.c


@dataclass(frozen=True)
class TicketOpening:
    """What TicketOpened says a ticket is (kind, channel and priority as words)."""

    ticket_id: str
    number: int
    customer_id: str | None
    order_id: str | None
    kind: str | None
    channel: str | None
    priority: str | None
    category_id: str | None
    queue_id: str | None
    assignee_id: str | None
    opened_at: datetime


async def upsert_ticket_opened(uow: UnitOfWork, opening: TicketOpening) -> None:
    """The opening is authoritative for what the ticket is. Queue, assignee and category may have
    moved since: a later event's, recorded first, is kept."""
    stmt = pg_insert(ticket_facts).values(**asdict(opening))
    x = stmt.excluded
    await uow.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[_t.ticket_id],
            set_={
                "number": x.number,
                "customer_id": x.customer_id,
                "order_id": x.order_id,
                "kind": x.kind,
                "channel": x.channel,
                "priority": x.priority,
                "opened_at": x.opened_at,
                "category_id": func.coalesce(_t.category_id, x.category_id),
                "queue_id": func.coalesce(_t.queue_id, x.queue_id),
                "assignee_id": func.coalesce(_t.assignee_id, x.assignee_id),
            },
        )
    )


@dataclass(frozen=True)
class TicketResolution:
    """One resolution (TicketResolved): business seconds on the resolution clock and the target met."""

    ticket_id: str
    number: int
    customer_id: str | None
    kind: str | None
    category_id: str | None
    queue_id: str | None
    assignee_id: str | None
    resolved_at: datetime
    resolution_seconds: int
    resolution_sla_met: bool


async def upsert_ticket_resolved(uow: UnitOfWork, resolution: TicketResolution) -> None:
    """Counts the resolution; the latest one (by time) is the ticket's resolution and says where it
    ended (queue, assignee, category)."""
    stmt = pg_insert(ticket_facts).values(**asdict(resolution), resolutions=1)
    x = stmt.excluded
    latest = or_(_t.resolved_at.is_(None), x.resolved_at >= _t.resolved_at)

    def newer(column: str) -> object:
        return case((latest, func.coalesce(x[column], _t[column])), else_=_t[column])

    await uow.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[_t.ticket_id],
            set_={
                "number": x.number,
                "customer_id": func.coalesce(_t.customer_id, x.customer_id),
                "kind": func.coalesce(_t.kind, x.kind),
                "resolutions": _t.resolutions + 1,
                **{c: newer(c) for c in ("category_id", "queue_id", "assignee_id", "resolved_at")},
                "resolution_seconds": case((latest, x.resolution_seconds), else_=_t.resolution_seconds),
                "resolution_sla_met": case((latest, x.resolution_sla_met), else_=_t.resolution_sla_met),
            },
        )
    )


async def count_sla_escalation(
    uow: UnitOfWork, *, ticket_id: str, customer_id: str | None, level: int, at: datetime
) -> None:
    """Level 1 (a warning before the breach) counts a warning; levels 2 and 3 a breach, and the first
    breach's time is kept."""
    breach = level >= 2
    stmt = pg_insert(ticket_facts).values(
        ticket_id=ticket_id,
        customer_id=customer_id,
        warnings=0 if breach else 1,
        breaches=1 if breach else 0,
        first_breach_at=at if breach else None,
    )
    x = stmt.excluded
    await uow.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[_t.ticket_id],
            set_={
                "customer_id": func.coalesce(_t.customer_id, x.customer_id),
                "warnings": _t.warnings + x.warnings,
                "breaches": _t.breaches + x.breaches,
                "first_breach_at": func.least(_t.first_breach_at, x.first_breach_at),
            },
        )
    )


async def upsert_survey_answer(
    uow: UnitOfWork, *, ticket_id: str, customer_id: str | None, score: int, answered_at: datetime
) -> None:
    """The latest answer (by time) is the ticket's score: a reopened ticket is surveyed again."""
    stmt = pg_insert(ticket_facts).values(
        ticket_id=ticket_id, customer_id=customer_id, score=score, answered_at=answered_at
    )
    x = stmt.excluded
    latest = or_(_t.answered_at.is_(None), x.answered_at >= _t.answered_at)
    await uow.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[_t.ticket_id],
            set_={
                "customer_id": func.coalesce(_t.customer_id, x.customer_id),
                "score": case((latest, x.score), else_=_t.score),
                "answered_at": case((latest, x.answered_at), else_=_t.answered_at),
            },
        )
    )


@dataclass(frozen=True)
class ConsentChange:
    customer_id: str
    record_id: int
    channel: str
    purpose: str
    granted: bool
    source: str
    changed_at: datetime


async def insert_consent_change(uow: UnitOfWork, change: ConsentChange) -> None:
    """A consent record once (customers numbers them per customer)."""
    await uow.conn.execute(
        pg_insert(consent_facts)
        .values(**asdict(change))
        .on_conflict_do_nothing(index_elements=[consent_facts.c.customer_id, consent_facts.c.record_id])
    )
