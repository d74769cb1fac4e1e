"""Write side of reporting: the fact rows the read model is built from, in the caller's unit of work.

Upserts only fill in gaps or move a fact forward, so the read model converges whatever order
the events arrive in (an assignment seen before its capture leaves a partial row that the
capture completes).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, case, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_kit.db import UnitOfWork
from crm_reporting import domain
from crm_reporting.db import campaign_facts, deal_facts, event_log, lead_facts, notification_facts, order_facts
from crm_reporting.metrics import EVENTS_RECORDED, SPEED_TO_LEAD


async def record_event(uow: UnitOfWork, *, event_id: str, event_type: str, subject: str, occurred_at: datetime) -> None:
    """Log an event once (by its id); counted after commit the first time."""
    inserted = await uow.conn.execute(
        pg_insert(event_log)
        .values(
            event_id=event_id,
            event_type=event_type,
            subject=subject,
            occurred_at=occurred_at,
            # The moment this event was handled, also inside a batch transaction.
            received_at=func.clock_timestamp(),
        )
        .on_conflict_do_nothing(index_elements=[event_log.c.event_id])
        .returning(event_log.c.event_id)
    )
    if inserted.first() is not None:
        uow.after_commit(EVENTS_RECORDED.labels(event_type).inc)


async def _settle_speed(uow: UnitOfWork, fact: Row[Any]) -> None:
    """Store speed-to-lead once capture and assignment are both known; observe it the first time."""
    speed = domain.speed_to_assign_seconds(fact.captured_at, fact.assigned_at)
    if speed is None or speed == fact.speed_to_assign_seconds:
        return
    await uow.conn.execute(
        update(lead_facts).where(lead_facts.c.lead_id == fact.lead_id).values(speed_to_assign_seconds=speed)
    )
    if fact.speed_to_assign_seconds is None:
        uow.after_commit(lambda: SPEED_TO_LEAD.observe(speed))


async def upsert_lead_capture(
    uow: UnitOfWork,
    *,
    lead_id: str,
    source: str | None,
    campaign: str | None,
    campaign_id: str | None,
    captured_at: datetime,
) -> None:
    """The capture is authoritative for source, campaign and capture time."""
    stmt = pg_insert(lead_facts).values(
        lead_id=lead_id, source=source, campaign=campaign, campaign_id=campaign_id, captured_at=captured_at
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=[lead_facts.c.lead_id],
        set_={
            "source": func.coalesce(stmt.excluded.source, lead_facts.c.source),
            "campaign": func.coalesce(stmt.excluded.campaign, lead_facts.c.campaign),
            "campaign_id": func.coalesce(stmt.excluded.campaign_id, lead_facts.c.campaign_id),
            "captured_at": stmt.excluded.captured_at,
        },
    ).returning(lead_facts)
    await _settle_speed(uow, (await uow.conn.execute(upsert)).one())


async def upsert_lead_assignment(
    uow: UnitOfWork,
    *,
    lead_id: str,
    source: str | None,
    captured_at: datetime | None,
    assigned_at: datetime,
    rep_id: str | None,
) -> None:
    """The first assignment sets rep and time; source and capture time only fill gaps."""
    stmt = pg_insert(lead_facts).values(
        lead_id=lead_id, source=source, captured_at=captured_at, assigned_at=assigned_at, rep_id=rep_id
    )
    # Speed-to-lead measures the first response, whichever order reassignments arrive in.
    first = or_(lead_facts.c.assigned_at.is_(None), stmt.excluded.assigned_at < lead_facts.c.assigned_at)
    upsert = stmt.on_conflict_do_update(
        index_elements=[lead_facts.c.lead_id],
        set_={
            "source": func.coalesce(lead_facts.c.source, stmt.excluded.source),
            "captured_at": func.coalesce(lead_facts.c.captured_at, stmt.excluded.captured_at),
            "assigned_at": case((first, stmt.excluded.assigned_at), else_=lead_facts.c.assigned_at),
            "rep_id": case((first, stmt.excluded.rep_id), else_=lead_facts.c.rep_id),
        },
    ).returning(lead_facts)
    await _settle_speed(uow, (await uow.conn.execute(upsert)).one())


async def insert_deal_closed(
    uow: UnitOfWork,
    *,
    deal_id: str,
    lead_id: str | None,
    source: str | None,
    campaign: str | None,
    won: bool,
    total_minor: int,
    currency_code: str,
    closed_at: datetime,
) -> None:
    """A deal closes once: the first close recorded is the fact."""
    await uow.conn.execute(
        pg_insert(deal_facts)
        .values(
            deal_id=deal_id,
            lead_id=lead_id,
            source=source,
            campaign=campaign,
            won=won,
            total_minor=total_minor,
            currency_code=currency_code,
            closed_at=closed_at,
        )
        .on_conflict_do_nothing(index_elements=[deal_facts.c.deal_id])
    )


async def upsert_campaign(
    uow: UnitOfWork,
    *,
    campaign_id: str,
    source: str,
    name: str,
    budget_minor: int,
    actual_cost_minor: int,
    currency_code: str,
    updated_at: datetime,
) -> None:
    """The latest state of a campaign wins (by its update time)."""
    stmt = pg_insert(campaign_facts).values(
        campaign_id=campaign_id,
        source=source,
        name=name,
        budget_minor=budget_minor,
        actual_cost_minor=actual_cost_minor,
        currency_code=currency_code,
        updated_at=updated_at,
    )
    await uow.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[campaign_facts.c.campaign_id],
            set_={
                "source": stmt.excluded.source,
                "name": stmt.excluded.name,
                "budget_minor": stmt.excluded.budget_minor,
                "actual_cost_minor": stmt.excluded.actual_cost_minor,
                "currency_code": stmt.excluded.currency_code,
                "updated_at": stmt.excluded.updated_at,
            },
            where=stmt.excluded.updated_at >= campaign_facts.c.updated_at,
        )
    )


async def upsert_order_created(
    uow: UnitOfWork, *, order_id: str, deal_id: str | None, lead_id: str | None, created_at: datetime
) -> None:
    """The order's creation is authoritative for its creation time, deal and lead."""
    stmt = pg_insert(order_facts).values(order_id=order_id, deal_id=deal_id, lead_id=lead_id, created_at=created_at)
    await uow.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[order_facts.c.order_id],
            set_={
                "deal_id": func.coalesce(stmt.excluded.deal_id, order_facts.c.deal_id),
                "lead_id": func.coalesce(stmt.excluded.lead_id, order_facts.c.lead_id),
                "created_at": stmt.excluded.created_at,
            },
        )
    )


async def upsert_order_shipped(
    uow: UnitOfWork,
    *,
    order_id: str,
    deal_id: str | None,
    lead_id: str | None,
    shipped_at: datetime,
    estimated_delivery_date: date | None,
) -> None:
    """Shipping sets ship time and estimated delivery; deal and lead only fill gaps."""
    stmt = pg_insert(order_facts).values(
        order_id=order_id,
        deal_id=deal_id,
        lead_id=lead_id,
        shipped_at=shipped_at,
        estimated_delivery_date=estimated_delivery_date,
    )
    await uow.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[order_facts.c.order_id],
            set_={
                "deal_id": func.coalesce(order_facts.c.deal_id, stmt.excluded.deal_id),
                "lead_id": func.coalesce(order_facts.c.lead_id, stmt.excluded.lead_id),
                "shipped_at": stmt.excluded.shipped_at,
                "estimated_delivery_date": func.coalesce(
                    stmt.excluded.estimated_delivery_date, order_facts.c.estimated_delivery_date
                ),
            },
        )
    )


async def upsert_notification(
    uow: UnitOfWork, *, message_id: str, lead_id: str | None, order_id: str | None, status: str, at: datetime
) -> None:
    """A message's latest outcome, so a late "failed" never overwrites a later "sent" retry."""
    stmt = pg_insert(notification_facts).values(
        message_id=message_id, lead_id=lead_id, order_id=order_id, status=status, at=at
    )
    await uow.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[notification_facts.c.message_id],
            set_={
                "status": stmt.excluded.status,
                "at": stmt.excluded.at,
                "lead_id": func.coalesce(stmt.excluded.lead_id, notification_facts.c.lead_id),
                "order_id": func.coalesce(stmt.excluded.order_id, notification_facts.c.order_id),
            },
            where=stmt.excluded.at >= notification_facts.c.at,
        )
    )
