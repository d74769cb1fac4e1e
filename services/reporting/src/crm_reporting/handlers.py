"""Event consumers of reporting: each records its event once and upserts its fact row.

Every handler runs in the chassis's unit of work together with the inbox claim, so a
redelivered event has no second effect. Upserts only fill in gaps or move a fact forward,
so the read model converges whatever order the events arrive in (an assignment seen before
its capture leaves a partial row that the capture completes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import Row, case, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.customers.v1 import events_pb2 as customer_events
from crm.leads.v1 import events_pb2 as lead_events
from crm.notifications.v1 import events_pb2 as notification_events
from crm.orders.v1 import events_pb2 as order_events
from crm_kit.db import UnitOfWork
from crm_kit.errors import InvalidArgument
from crm_kit.events import Envelope, PoisonMessage
from crm_kit.protoconv import from_date, from_timestamp
from crm_reporting import domain
from crm_reporting.db import campaign_facts, deal_facts, event_log, lead_facts, notification_facts, order_facts
from crm_reporting.metrics import EVENTS_RECORDED, SPEED_TO_LEAD


def _text(value: str) -> str | None:
    return value.strip() or None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _time(message: Message, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field), message.HasField(field))


def _key(value: str, name: str, envelope: Envelope[Any]) -> str:
    if not value:
        raise PoisonMessage(f"{envelope.type} {envelope.id} has no {name}")
    return value


async def _record(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
    inserted = await uow.conn.execute(
        pg_insert(event_log)
        .values(
            event_id=envelope.id,
            event_type=envelope.type,
            subject=envelope.subject,
            occurred_at=_aware(envelope.time),
            # The moment this event was handled, also inside a batch transaction.
            received_at=func.clock_timestamp(),
        )
        .on_conflict_do_nothing(index_elements=[event_log.c.event_id])
        .returning(event_log.c.event_id)
    )
    if inserted.first() is not None:
        uow.after_commit(EVENTS_RECORDED.labels(envelope.type).inc)


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


async def on_lead_captured(uow: UnitOfWork, envelope: Envelope[lead_events.LeadCaptured]) -> None:
    """The capture is authoritative for source, campaign and capture time."""
    m = envelope.message
    await _record(uow, envelope)
    stmt = pg_insert(lead_facts).values(
        lead_id=_key(m.lead_id, "lead_id", envelope),
        source=_text(m.source),
        campaign=_text(m.campaign),
        campaign_id=_text(m.campaign_id),
        captured_at=_time(m, "capture_time") or _aware(envelope.time),
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


async def on_lead_assigned(uow: UnitOfWork, envelope: Envelope[lead_events.LeadAssigned]) -> None:
    """The first assignment sets rep and time; source and capture time only fill gaps."""
    m = envelope.message
    await _record(uow, envelope)
    stmt = pg_insert(lead_facts).values(
        lead_id=_key(m.lead_id, "lead_id", envelope),
        source=_text(m.source),
        captured_at=_time(m, "capture_time"),
        assigned_at=_time(m, "assign_time") or _aware(envelope.time),
        rep_id=_text(m.rep_id),
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


async def on_deal_closed(uow: UnitOfWork, envelope: Envelope[lead_events.DealClosed]) -> None:
    """A deal closes once; the first close recorded is the fact."""
    m = envelope.message
    items = [domain.ItemAmount(i.quantity, i.unit_price.amount_minor, i.unit_price.currency_code) for i in m.items]
    try:
        total, currency = domain.deal_total(m.total.amount_minor, m.total.currency_code, items)
    except domain.MixedCurrencies as exc:
        raise PoisonMessage(f"DealClosed {envelope.id}: {exc}") from exc
    await _record(uow, envelope)
    await uow.conn.execute(
        pg_insert(deal_facts)
        .values(
            deal_id=_key(m.deal_id, "deal_id", envelope),
            lead_id=_text(m.lead_id),
            source=_text(m.source),
            campaign=_text(m.campaign),
            won=m.won,
            total_minor=total,
            currency_code=currency,
            closed_at=_time(m, "close_time") or _aware(envelope.time),
        )
        .on_conflict_do_nothing(index_elements=[deal_facts.c.deal_id])
    )


async def on_campaign_changed(uow: UnitOfWork, envelope: Envelope[lead_events.CampaignChanged]) -> None:
    """The latest state of a campaign wins (by its update time), whatever order events arrive in."""
    m = envelope.message
    await _record(uow, envelope)
    currency = (m.actual_cost.currency_code or m.budget.currency_code).upper()
    stmt = pg_insert(campaign_facts).values(
        campaign_id=_key(m.campaign_id, "campaign_id", envelope),
        source=m.source,
        name=m.name,
        budget_minor=m.budget.amount_minor,
        actual_cost_minor=m.actual_cost.amount_minor,
        currency_code=currency,
        updated_at=_time(m, "update_time") or _aware(envelope.time),
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


async def on_customer_created(uow: UnitOfWork, envelope: Envelope[customer_events.CustomerCreated]) -> None:
    """Customers feed only the event log (and its counter) so far."""
    await _record(uow, envelope)


async def on_order_created(uow: UnitOfWork, envelope: Envelope[order_events.OrderCreated]) -> None:
    """The order's creation is authoritative for its creation time, deal and lead."""
    m = envelope.message
    await _record(uow, envelope)
    stmt = pg_insert(order_facts).values(
        order_id=_key(m.order_id, "order_id", envelope),
        deal_id=_text(m.deal_id),
        lead_id=_text(m.lead_id),
        created_at=_time(m, "create_time") or _aware(envelope.time),
    )
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


async def on_order_shipped(uow: UnitOfWork, envelope: Envelope[order_events.OrderShipped]) -> None:
    """Shipping sets ship time and estimated delivery; deal and lead only fill gaps."""
    m = envelope.message
    eta = None
    if m.HasField("estimated_delivery_date"):
        try:
            eta = from_date(m.estimated_delivery_date, "estimated_delivery_date")
        except InvalidArgument as exc:
            raise PoisonMessage(f"OrderShipped {envelope.id}: {exc.message}") from exc
    await _record(uow, envelope)
    stmt = pg_insert(order_facts).values(
        order_id=_key(m.order_id, "order_id", envelope),
        deal_id=_text(m.deal_id),
        lead_id=_text(m.lead_id),
        shipped_at=_time(m, "ship_time") or _aware(envelope.time),
        estimated_delivery_date=eta,
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


async def _notification(
    uow: UnitOfWork, envelope: Envelope[Any], *, status: str, lead_id: str, order_id: str, at: datetime | None
) -> None:
    await _record(uow, envelope)
    stmt = pg_insert(notification_facts).values(
        message_id=_key(envelope.message.message_id, "message_id", envelope),
        lead_id=_text(lead_id),
        order_id=_text(order_id),
        status=status,
        at=at or _aware(envelope.time),
    )
    # The latest outcome wins, so a late "failed" never overwrites a later "sent" retry.
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


async def on_notification_sent(uow: UnitOfWork, envelope: Envelope[notification_events.NotificationSent]) -> None:
    """The provider accepted the message."""
    m = envelope.message
    await _notification(uow, envelope, status="sent", lead_id=m.lead_id, order_id=m.order_id, at=_time(m, "send_time"))


async def on_notification_failed(uow: UnitOfWork, envelope: Envelope[notification_events.NotificationFailed]) -> None:
    """The message could not be sent."""
    m = envelope.message
    await _notification(
        uow, envelope, status="failed", lead_id=m.lead_id, order_id=m.order_id, at=_time(m, "fail_time")
    )
