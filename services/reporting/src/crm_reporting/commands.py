"""Write side of reporting: the fact rows the read model is built from, and targets (audited), in
the caller's unit of work.

Upserts only fill in gaps or move a fact forward, so the read model converges whatever order
the events arrive in (an assignment seen before its capture leaves a partial row that the
capture completes).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Row,
    String,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.dml import ReturningInsert

from crm_kit.db import UnitOfWork
from crm_kit.errors import AlreadyExists
from crm_reporting import domain, queries, targets
from crm_reporting.db import (
    campaign_facts,
    cross_sell_offers,
    customer_facts,
    deal_facts,
    deal_stage_facts,
    event_log,
    lead_facts,
    lead_touch_facts,
    notification_facts,
    order_facts,
    purchase_facts,
)
from crm_reporting.db import targets as targets_table
from crm_reporting.metrics import EVENTS_RECORDED, SPEED_TO_LEAD

# The event-log row of each event: once by its id. `received_at` is the moment the event was
# handled, also inside a batch transaction (the bench reads it as the consuming time). Its
# parameters are log_*: in a statement with an upsert of facts, no name may be another's column.
_LOG_EVENT = (
    pg_insert(event_log)
    .values(
        event_id=bindparam("log_event_id"),
        event_type=bindparam("log_event_type"),
        subject=bindparam("log_subject"),
        occurred_at=bindparam("log_occurred_at"),
        received_at=func.clock_timestamp(),
    )
    .on_conflict_do_nothing(index_elements=[event_log.c.event_id])
    .returning(event_log.c.event_id)
)


def _logged_with(upsert: ReturningInsert[Any]) -> ReturningInsert[Any]:
    """upsert with the event-log insert in front (a data-modifying CTE) and a `logged` column
    saying whether it wrote the row: one round trip per event instead of two. The two touch
    different tables, so running them in one statement changes nothing either writes."""
    logged = _LOG_EVENT.cte("logged")
    return upsert.add_cte(logged).returning(exists(select(logged.c.event_id)).label("logged"))


async def record_event(uow: UnitOfWork, *, event_id: str, event_type: str, subject: str, occurred_at: datetime) -> None:
    """Log an event once (by its id); counted after commit the first time."""
    inserted = await uow.conn.execute(
        _LOG_EVENT,
        {
            "log_event_id": event_id,
            "log_event_type": event_type,
            "log_subject": subject,
            "log_occurred_at": occurred_at,
        },
    )
    if inserted.first() is not None:
        uow.after_commit(EVENTS_RECORDED.labels(event_type).inc)


@dataclass(frozen=True)
class LoggedEvent:
    """The event-log row an upsert writes along with its fact (see `record_event`)."""

    event_id: str
    event_type: str
    subject: str
    occurred_at: datetime


def _counted(uow: UnitOfWork, event: LoggedEvent | None, fact: Row[Any]) -> None:
    if event is not None and fact.logged:
        uow.after_commit(EVENTS_RECORDED.labels(event.event_type).inc)


def _event_params(event: LoggedEvent | None) -> dict[str, Any]:
    if event is None:
        return {}
    return {
        "log_event_id": event.event_id,
        "log_event_type": event.event_type,
        "log_subject": event.subject,
        "log_occurred_at": event.occurred_at,
    }


async def _settle_speed(uow: UnitOfWork, fact: Row[Any], *, inserted: bool = False) -> None:
    """Store speed-to-lead once capture and assignment are both known; observe it the first time.

    `fact` is the row as the upsert left it; an upsert's conflict branch never sets the speed, so
    its speed is the one before (read under the row lock the upsert holds: exact even when the
    capture and the assignment of a lead are handled at the same moment). A row the upsert
    `inserted` already carries the speed its own values give (the insert's VALUES computed it)."""
    speed = domain.speed_to_assign_seconds(fact.captured_at, fact.assigned_at)
    if inserted:
        if speed is not None:
            uow.after_commit(lambda: SPEED_TO_LEAD.observe(speed))
        return
    if speed is None or speed == fact.speed_to_assign_seconds:
        return
    await uow.conn.execute(_SET_SPEED, {"p_lead_id": fact.lead_id, "p_speed": speed})
    if fact.speed_to_assign_seconds is None:
        uow.after_commit(lambda: SPEED_TO_LEAD.observe(speed))


_SET_SPEED = (
    update(lead_facts)
    .where(lead_facts.c.lead_id == bindparam("p_lead_id"))
    .values(speed_to_assign_seconds=bindparam("p_speed"))
)

# Built once: a statement object keeps its compiled form's cache key, so an event pays for
# neither building nor traversing it (most of SQLAlchemy's cost per execute otherwise). The
# parameters are p_*: SQLAlchemy reserves a column's own name in an INSERT or UPDATE.
_capture = pg_insert(lead_facts).values(
    lead_id=bindparam("p_lead_id"),
    source=bindparam("p_source"),
    campaign=bindparam("p_campaign"),
    campaign_id=bindparam("p_campaign_id"),
    captured_at=bindparam("p_captured_at"),
    product_line=bindparam("p_product_line"),
    city=bindparam("p_city"),
)
_UPSERT_CAPTURE = _capture.on_conflict_do_update(
    index_elements=[lead_facts.c.lead_id],
    set_={
        "source": func.coalesce(_capture.excluded.source, lead_facts.c.source),
        "campaign": func.coalesce(_capture.excluded.campaign, lead_facts.c.campaign),
        "campaign_id": func.coalesce(_capture.excluded.campaign_id, lead_facts.c.campaign_id),
        "product_line": func.coalesce(_capture.excluded.product_line, lead_facts.c.product_line),
        "city": func.coalesce(_capture.excluded.city, lead_facts.c.city),
        "captured_at": _capture.excluded.captured_at,
    },
).returning(*lead_facts.c)
_UPSERT_CAPTURE_LOGGED = _logged_with(_UPSERT_CAPTURE)


async def upsert_lead_capture(
    uow: UnitOfWork,
    *,
    lead_id: str,
    source: str | None,
    campaign: str | None,
    campaign_id: str | None,
    captured_at: datetime,
    product_line: str | None = None,
    city: str | None = None,
    event: LoggedEvent | None = None,
) -> None:
    """The capture is authoritative for source, campaign, product line, city and capture time.

    With `event`, its event-log row is written in the same statement (`record_event`)."""
    params = {
        "p_lead_id": lead_id,
        "p_source": source,
        "p_campaign": campaign,
        "p_campaign_id": campaign_id,
        "p_captured_at": captured_at,
        "p_product_line": product_line,
        "p_city": city,
        **_event_params(event),
    }
    fact = (await uow.conn.execute(_UPSERT_CAPTURE_LOGGED if event else _UPSERT_CAPTURE, params)).one()
    _counted(uow, event, fact)
    # A new row has no assignment yet, so no speed: the conflict branch is the only one to settle.
    await _settle_speed(uow, fact)


_assignment = pg_insert(lead_facts).values(
    lead_id=bindparam("p_lead_id"),
    source=bindparam("p_source"),
    captured_at=bindparam("p_captured_at"),
    assigned_at=bindparam("p_assigned_at"),
    rep_id=bindparam("p_rep_id"),
    team_id=bindparam("p_team_id"),
    owner_rep_id=bindparam("p_rep_id"),
    owner_team_id=bindparam("p_team_id"),
    owner_at=bindparam("p_assigned_at"),
    # Only a new row takes it (the conflict branch leaves the speed to _settle_speed).
    speed_to_assign_seconds=bindparam("p_speed"),
)
# Speed-to-lead measures the first response, whichever order reassignments arrive in.
_first = or_(lead_facts.c.assigned_at.is_(None), _assignment.excluded.assigned_at < lead_facts.c.assigned_at)
# The owner is the latest assignment, whichever order they arrive in.
_latest = or_(lead_facts.c.owner_at.is_(None), _assignment.excluded.assigned_at >= lead_facts.c.owner_at)
_UPSERT_ASSIGNMENT = _assignment.on_conflict_do_update(
    index_elements=[lead_facts.c.lead_id],
    set_={
        "source": func.coalesce(lead_facts.c.source, _assignment.excluded.source),
        "captured_at": func.coalesce(lead_facts.c.captured_at, _assignment.excluded.captured_at),
        "assigned_at": case((_first, _assignment.excluded.assigned_at), else_=lead_facts.c.assigned_at),
        "rep_id": case((_first, _assignment.excluded.rep_id), else_=lead_facts.c.rep_id),
        "team_id": case((_first, _assignment.excluded.team_id), else_=lead_facts.c.team_id),
        "owner_rep_id": case((_latest, _assignment.excluded.rep_id), else_=lead_facts.c.owner_rep_id),
        "owner_team_id": case((_latest, _assignment.excluded.team_id), else_=lead_facts.c.owner_team_id),
        "owner_at": case((_latest, _assignment.excluded.assigned_at), else_=lead_facts.c.owner_at),
    },
    # xmax is 0 only on a row this statement inserted (the conflict branch locks the row first,
    # which leaves the locker in the new version's xmax): the usual way to tell the two apart.
).returning(*lead_facts.c, literal_column("xmax = 0", Boolean).label("inserted"))
_UPSERT_ASSIGNMENT_LOGGED = _logged_with(_UPSERT_ASSIGNMENT)


async def upsert_lead_assignment(
    uow: UnitOfWork,
    *,
    lead_id: str,
    source: str | None,
    captured_at: datetime | None,
    assigned_at: datetime,
    rep_id: str | None,
    team_id: str | None = None,
    event: LoggedEvent | None = None,
) -> None:
    """The first assignment sets rep, team and time, the latest the owner; source and capture time
    only fill gaps.

    With `event`, its event-log row is written in the same statement (`record_event`)."""
    params = {
        "p_lead_id": lead_id,
        "p_source": source,
        "p_captured_at": captured_at,
        "p_assigned_at": assigned_at,
        "p_rep_id": rep_id,
        "p_team_id": team_id,
        "p_speed": domain.speed_to_assign_seconds(captured_at, assigned_at),
        **_event_params(event),
    }
    fact = (await uow.conn.execute(_UPSERT_ASSIGNMENT_LOGGED if event else _UPSERT_ASSIGNMENT, params)).one()
    _counted(uow, event, fact)
    await _settle_speed(uow, fact, inserted=fact.inserted)


# A customer's acquiring lead (the first CustomerCreated wins; there is one per customer), with
# the event-log row in the same statement: CustomerCreated comes with every new customer's capture.
_customer = pg_insert(customer_facts).values(
    customer_id=bindparam("p_customer_id"), lead_id=bindparam("p_lead_id"), created_at=bindparam("p_created_at")
)
_UPSERT_CUSTOMER_LOGGED = _logged_with(
    _customer.on_conflict_do_update(
        index_elements=[customer_facts.c.customer_id],
        set_={
            "lead_id": func.coalesce(customer_facts.c.lead_id, _customer.excluded.lead_id),
            "created_at": func.coalesce(customer_facts.c.created_at, _customer.excluded.created_at),
        },
    ).returning(customer_facts.c.customer_id)
)


async def upsert_customer(
    uow: UnitOfWork, *, customer_id: str, lead_id: str | None, created_at: datetime, event: LoggedEvent
) -> None:
    """Which lead made the customer: tickets and consents reach a source through it."""
    params = {"p_customer_id": customer_id, "p_lead_id": lead_id, "p_created_at": created_at, **_event_params(event)}
    _counted(uow, event, (await uow.conn.execute(_UPSERT_CUSTOMER_LOGGED, params)).one())


@dataclass(frozen=True)
class DealOwner:
    """Whose a closed deal is, as DealClosed names it (targets vs actual count by these)."""

    rep_id: str | None = None
    team_id: str | None = None
    pipeline_id: str | None = None
    product_line: str | None = None


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
    owner: DealOwner = DealOwner(),
) -> None:
    """A deal closes once: the first close recorded is the fact. A close without a source takes
    its lead's, if known by then, so a source target counts it from an indexed column."""
    lead_source = select(lead_facts.c.source).where(lead_facts.c.lead_id == lead_id).scalar_subquery()
    await uow.conn.execute(
        pg_insert(deal_facts)
        .values(
            deal_id=deal_id,
            lead_id=lead_id,
            source=literal(source, String) if source else (lead_source if lead_id else None),
            campaign=campaign,
            won=won,
            total_minor=total_minor,
            currency_code=currency_code,
            closed_at=closed_at,
            owner_rep_id=owner.rep_id,
            owner_team_id=owner.team_id,
            pipeline_id=owner.pipeline_id,
            product_line=owner.product_line,
        )
        .on_conflict_do_nothing(index_elements=[deal_facts.c.deal_id])
    )


@dataclass(frozen=True)
class PurchaseLine:
    """A won deal's line with a SKU, numbered from 1 in the event's order."""

    line: int
    sku: str
    description: str
    quantity: int
    amount_minor: int
    currency_code: str


async def insert_purchases(
    uow: UnitOfWork, *, deal_id: str, lead_id: str, lines: Sequence[PurchaseLine], closed_at: datetime
) -> None:
    """A won deal's lines, once (one statement; a redelivery adds nothing)."""
    if not lines:
        return
    await uow.conn.execute(
        pg_insert(purchase_facts)
        .values(
            [
                {
                    "deal_id": deal_id,
                    "line": p.line,
                    "lead_id": lead_id,
                    "sku": p.sku,
                    "description": p.description,
                    "quantity": p.quantity,
                    "amount_minor": p.amount_minor,
                    "currency_code": p.currency_code,
                    "closed_at": closed_at,
                }
                for p in lines
            ]
        )
        .on_conflict_do_nothing(index_elements=[purchase_facts.c.deal_id, purchase_facts.c.line])
    )


@dataclass(frozen=True)
class CrossSellOffer:
    customer_id: str
    lead_ids: Sequence[str]
    sku: str
    response: str
    # The rule that suggested it when offered ("" and None when the model no longer does).
    antecedent_sku: str
    confidence: float | None
    user_id: str
    offered_at: datetime


async def record_cross_sell_offer(uow: UnitOfWork, offer: CrossSellOffer, *, request_id: str = "") -> Row[Any]:
    """Record an offer and its answer (audited); the same request repeated with its request_id
    returns the first record (AIP-155) — for the same customer only: the key is global across
    callers, and another customer's record is never shown (ALREADY_EXISTS naming nothing of it)."""
    inserted: Row[Any] | None = (
        await uow.conn.execute(
            pg_insert(cross_sell_offers)
            .values(
                id=str(uuid.uuid4()),
                customer_id=offer.customer_id,
                lead_ids=list(offer.lead_ids),
                sku=offer.sku,
                antecedent_sku=offer.antecedent_sku,
                confidence=offer.confidence,
                response=offer.response,
                user_id=offer.user_id,
                offered_at=offer.offered_at,
                request_id=request_id or None,
            )
            .on_conflict_do_nothing(index_elements=[cross_sell_offers.c.request_id])
            .returning(cross_sell_offers)
        )
    ).first()
    if inserted is None:
        earlier = await queries.cross_sell_offer_by_request(uow, request_id)
        assert earlier is not None, "an insert that met its request_id finds the first record"
        if earlier.customer_id != offer.customer_id:
            raise AlreadyExists("request_id was already used for another offer", reason="REQUEST_ID_IN_USE")
        return earlier
    uow.audit(
        "reporting.RecordCrossSellOffer",
        "cross_sell_offer",
        inserted.id,
        {"customer_id": offer.customer_id, "sku": offer.sku, "response": offer.response},
    )
    return inserted


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
    uow: UnitOfWork,
    *,
    message_id: str,
    lead_id: str | None,
    order_id: str | None,
    status: str,
    at: datetime,
    promotion_id: str | None = None,
    customer_id: str | None = None,
    variant: str = "",
) -> None:
    """A message's latest outcome, so a late "failed" never overwrites a later "sent" retry."""
    stmt = pg_insert(notification_facts).values(
        message_id=message_id,
        lead_id=lead_id,
        order_id=order_id,
        status=status,
        at=at,
        promotion_id=promotion_id,
        customer_id=customer_id,
        variant=variant,
    )
    await uow.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[notification_facts.c.message_id],
            set_={
                "status": stmt.excluded.status,
                "at": stmt.excluded.at,
                "lead_id": func.coalesce(stmt.excluded.lead_id, notification_facts.c.lead_id),
                "order_id": func.coalesce(stmt.excluded.order_id, notification_facts.c.order_id),
                "promotion_id": func.coalesce(stmt.excluded.promotion_id, notification_facts.c.promotion_id),
                "customer_id": func.coalesce(stmt.excluded.customer_id, notification_facts.c.customer_id),
                "variant": func.greatest(stmt.excluded.variant, notification_facts.c.variant),
            },
            where=stmt.excluded.at >= notification_facts.c.at,
        )
    )


# ---------------------------------------------------------------- targets


def _target_details(target: targets.Target) -> dict[str, Any]:
    return {
        "subject_kind": target.subject_kind.value,
        "subject_id": target.subject_id,
        "period_kind": target.period_kind.value,
        "period_start": target.period_start.isoformat(),
        "metric": target.metric.value,
        "value": target.value,
        "currency_code": target.currency_code,
    }


async def _replay(uow: UnitOfWork, target: targets.Target, request_id: str) -> Row[Any] | None:
    """The target a repeated request_id answers with (AIP-155) — only for the same request: the
    same request_id on another subject, period or metric is ALREADY_EXISTS (REQUEST_ID_IN_USE)
    naming nothing of the stored target. The key is global across callers, and the gateway only
    checked the caller's reach for the subject asked, not the stored one's."""
    if not request_id:
        return None
    earlier = await queries.find_target_by_request_id(uow, request_id)
    if earlier is None:
        return None
    if not targets.same_request(queries.stored_target(earlier).target, target):
        raise targets.request_id_in_use()
    return earlier


async def create_target(uow: UnitOfWork, target: targets.Target, *, request_id: str = "") -> Row[Any]:
    """Store a target. One per subject, period and metric: a second is ALREADY_EXISTS naming the
    first (not an upsert, so two managers never overwrite each other's figure unknowingly); the
    same request repeated with its request_id returns the first target (AIP-155)."""
    earlier = await _replay(uow, target, request_id)
    if earlier is not None:
        return earlier
    inserted: Row[Any] | None = (
        await uow.conn.execute(
            pg_insert(targets_table)
            .values(
                id=str(uuid.uuid4()),
                subject_kind=target.subject_kind.value,
                subject_id=target.subject_id,
                period_kind=target.period_kind.value,
                period_start=target.period_start,
                metric=target.metric.value,
                value=target.value,
                currency_code=target.currency_code,
                request_id=request_id or None,
            )
            .on_conflict_do_nothing()
            .returning(targets_table)
        )
    ).first()
    if inserted is None:
        return await _existing(uow, target, request_id)
    uow.audit("reporting.CreateTarget", "target", inserted.id, _target_details(target))
    return inserted


async def _existing(uow: UnitOfWork, target: targets.Target, request_id: str) -> Row[Any]:
    """The conflict an insert met: a concurrent repeat of the request (its target), or another
    target of the same subject, period and metric (ALREADY_EXISTS)."""
    earlier = await _replay(uow, target, request_id)
    if earlier is not None:
        return earlier
    other = await queries.find_target(uow, target)
    raise AlreadyExists(
        f"a {target.metric.value} target for {target.subject_kind.value} {target.subject_id} in the "
        f"{target.period_kind.value} from {target.period_start} exists",
        reason="TARGET_EXISTS",
        metadata={"target_id": other.id} if other is not None else {},
    )


async def update_target(uow: UnitOfWork, target_id: str, draft: targets.TargetDraft, mask: Sequence[str]) -> Row[Any]:
    """Change a target's value (its amount or count); a change to what it already is writes nothing."""
    row = await queries.get_target(uow, target_id, lock=True)
    value, currency = targets.validate_update(targets.Metric(row.metric), draft, mask)
    if (value, currency) == (row.value, row.currency_code):
        return row
    updated: Row[Any] = (
        await uow.conn.execute(
            update(targets_table)
            .where(targets_table.c.id == target_id)
            .values(value=value, currency_code=currency, updated_at=func.now())
            .returning(targets_table)
        )
    ).one()
    details = {
        "before": {"value": row.value, "currency_code": row.currency_code},
        "after": {"value": value, "currency_code": currency},
    }
    uow.audit("reporting.UpdateTarget", "target", target_id, details)
    return updated


async def delete_target(uow: UnitOfWork, target_id: str) -> None:
    """Remove a target (its actuals are facts and stay); the audit record keeps what it was."""
    deleted = (
        await uow.conn.execute(delete(targets_table).where(targets_table.c.id == target_id).returning(targets_table))
    ).first()
    if deleted is None:
        raise targets.target_not_found(target_id)
    uow.audit("reporting.DeleteTarget", "target", target_id, _target_details(queries.stored_target(deleted).target))


async def record_lead_touch(
    uow: UnitOfWork, *, touch_id: str, lead_id: str, source: str, campaign_id: str | None, at: datetime
) -> None:
    """A known person came in again; a redelivered touch is kept once."""
    await uow.conn.execute(
        pg_insert(lead_touch_facts)
        .values(touch_id=touch_id, lead_id=lead_id, source=source, campaign_id=campaign_id, at=at)
        .on_conflict_do_nothing(index_elements=[lead_touch_facts.c.touch_id])
    )


# A rep's first response to a lead (the earliest wins, whatever order events arrive in; the lead's
# fact row starts here when its capture has not arrived yet), with its event-log row: one round trip.
_first_response = pg_insert(lead_facts).values(
    lead_id=bindparam("p_lead_id"), first_response_at=bindparam("p_first_response_at")
)
_FIRST_RESPONSE_LOGGED = _logged_with(
    _first_response.on_conflict_do_update(
        index_elements=[lead_facts.c.lead_id],
        set_={
            "first_response_at": func.least(
                func.coalesce(lead_facts.c.first_response_at, _first_response.excluded.first_response_at),
                _first_response.excluded.first_response_at,
            )
        },
    ).returning(lead_facts.c.lead_id)
)


async def record_first_response(uow: UnitOfWork, *, lead_id: str, at: datetime, event: LoggedEvent) -> None:
    params = {"p_lead_id": lead_id, "p_first_response_at": at, **_event_params(event)}
    _counted(uow, event, (await uow.conn.execute(_FIRST_RESPONSE_LOGGED, params)).one())


# A deal opened (stage_id "") or entered a stage, kept once at the first time, with its event-log
# row: one round trip (every conversion and every stage move passes here).
_stage = pg_insert(deal_stage_facts).values(
    deal_id=bindparam("p_deal_id"),
    stage_id=bindparam("p_stage_id"),
    lead_id=bindparam("p_lead_id"),
    pipeline_id=bindparam("p_pipeline_id"),
    owner_rep_id=bindparam("p_owner_rep_id"),
    owner_team_id=bindparam("p_owner_team_id"),
    entered_at=bindparam("p_entered_at"),
    stage_name=bindparam("p_stage_name"),
)
_DEAL_STAGE_LOGGED = _logged_with(
    _stage.on_conflict_do_update(
        index_elements=[deal_stage_facts.c.deal_id, deal_stage_facts.c.stage_id],
        set_={"entered_at": func.least(deal_stage_facts.c.entered_at, _stage.excluded.entered_at)},
    ).returning(deal_stage_facts.c.deal_id)
)


@dataclass(frozen=True)
class StageEntry:
    deal_id: str
    stage_id: str
    lead_id: str
    pipeline_id: str
    owner_rep_id: str
    owner_team_id: str
    entered_at: datetime
    # The stage's name (DealStageChanged.to_stage_name; "" for an opening).
    stage_name: str = ""


async def record_deal_stage(uow: UnitOfWork, entry: StageEntry, *, event: LoggedEvent) -> None:
    params = {f"p_{k}": v for k, v in entry.__dict__.items()} | _event_params(event)
    _counted(uow, event, (await uow.conn.execute(_DEAL_STAGE_LOGGED, params)).one())
