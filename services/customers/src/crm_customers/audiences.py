"""Audiences: which live customers match a filter over their facts, and which of them may be reached
on a channel for a purpose. Read-only, in the caller's unit of work.

The facts come from where this service already keeps them: tags and locale on the customer row,
cities from its addresses, sources, complaints and survey scores from its timeline (the events that
made it), purchases from `customer_purchases` (DealClosed's lines). Consent is the flags the
consent records keep current on the row (`marketing_*_consent`, `transactional_*_opt_out`), so an
audience never reaches anyone a message could not be sent to.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, any_, cast, false, func, literal_column, not_, or_, select, true
from sqlalchemy.dialects.postgresql import array

from crm_customers.db import customer_addresses, customer_purchases, customers, timeline
from crm_customers.domain import LOW_SATISFACTION_SCORE, Audience, TouchKind
from crm_kit.db import UnitOfWork

c = customers


def _one(column: Any, values: tuple[str, ...]) -> ColumnElement[bool]:
    matched: ColumnElement[bool] = column == any_(array(list(values)))
    return matched


def _timeline_exists(kind: TouchKind, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return (
        select(literal_column("1"))
        .where(timeline.c.customer_id == c.c.id, timeline.c.kind == kind.value, *conditions)
        .exists()
    )


def _purchases(a: Audience) -> list[ColumnElement[bool]]:
    if not (a.products or a.purchased_after or a.purchased_before):
        return []
    p = customer_purchases
    conditions: list[ColumnElement[bool]] = [p.c.customer_id == c.c.id]
    if a.products:
        conditions.append(
            or_(
                _one(func.lower(p.c.sku), a.products),
                _one(func.lower(p.c.product_line), a.products),
                func.lower(p.c.description).like(any_(array([f"%{_escaped(v)}%" for v in a.products]))),
            )
        )
    if a.purchased_after:
        conditions.append(p.c.closed_at >= a.purchased_after)
    if a.purchased_before:
        conditions.append(p.c.closed_at < a.purchased_before)
    return [select(literal_column("1")).where(*conditions).exists()]


def _escaped(value: str) -> str:
    """A value inside LIKE, its own % and _ matched as themselves (LIKE's default escape is \\)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _lifetime(a: Audience) -> list[ColumnElement[bool]]:
    if not a.min_lifetime_value_minor:
        return []
    p = customer_purchases
    total = (
        select(func.coalesce(func.sum(p.c.amount_minor), 0))
        .where(p.c.customer_id == c.c.id, p.c.currency_code == a.currency_code)
        .scalar_subquery()
    )
    return [total >= a.min_lifetime_value_minor]


def _facts(a: Audience) -> list[ColumnElement[bool]]:
    """Every criterion of the filter, on a live customer."""
    found: list[ColumnElement[bool]] = [c.c.merged_into_id.is_(None)]
    if a.tags:
        found.append(c.c.tags.overlap(array(list(a.tags))))
    if a.locales:
        found.append(_one(func.lower(c.c.locale), a.locales))
    if a.cities:
        a_ = customer_addresses
        city = func.lower(func.btrim(a_.c.city))
        found.append(select(literal_column("1")).where(a_.c.customer_id == c.c.id, _one(city, a.cities)).exists())
    if a.sources:
        found.append(
            _timeline_exists(TouchKind.LEAD_CAPTURED, _one(func.lower(timeline.c.facts["source"].astext), a.sources))
        )
    return found + _purchases(a) + _lifetime(a)


def _open_complaint() -> ColumnElement[bool]:
    resolved = timeline.alias("resolved")
    still_open = not_(
        select(literal_column("1"))
        .where(
            resolved.c.customer_id == c.c.id,
            resolved.c.kind == TouchKind.TICKET_RESOLVED.value,
            resolved.c.facts["ticket_id"].astext == timeline.c.facts["ticket_id"].astext,
        )
        .exists()
    )
    return _timeline_exists(TouchKind.TICKET_OPENED, timeline.c.facts["ticket_kind"].astext == "complaint", still_open)


def _low_satisfaction() -> ColumnElement[bool]:
    latest = (
        select(cast(timeline.c.facts["score"].astext, Integer))
        .where(timeline.c.customer_id == c.c.id, timeline.c.kind == TouchKind.SURVEY_ANSWERED.value)
        .order_by(timeline.c.occurred_at.desc(), timeline.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(latest, LOW_SATISFACTION_SCORE + 1) <= LOW_SATISFACTION_SCORE


def _consent(a: Audience) -> ColumnElement[bool]:
    if a.purpose == "marketing":
        return c.c.marketing_sms_consent if a.channel == "sms" else c.c.marketing_email_consent
    return not_(c.c.transactional_sms_opt_out if a.channel == "sms" else c.c.transactional_email_opt_out)


def _address(a: Audience) -> Any:
    return c.c.phone_number if a.channel == "sms" else c.c.email


def _reachable(a: Audience) -> ColumnElement[bool]:
    """Consent, an address, and neither an open complaint nor a low score unless included."""
    return and_(
        _consent(a),
        _address(a) != "",
        true() if a.include_open_complaints else not_(_open_complaint()),
        true() if a.include_low_satisfaction else not_(_low_satisfaction()),
    )


async def count(uow: UnitOfWork, a: Audience, sample_size: int) -> tuple[dict[str, int], list[Any]]:
    """How many match, how many may be reached, why the others may not (each counted once, in
    the order consent, address, complaint, satisfaction), and the first reachable ones."""
    consented, addressed = _consent(a), _address(a) != ""
    complaint = false() if a.include_open_complaints else _open_complaint()
    low = false() if a.include_low_satisfaction else _low_satisfaction()
    reasons = (
        select(
            c.c.id,
            consented.label("consented"),
            addressed.label("addressed"),
            complaint.label("complaint"),
            low.label("low"),
        )
        .where(*_facts(a))
        .subquery()
    )
    r = reasons.c

    def counted(condition: ColumnElement[bool]) -> Any:
        return func.count().filter(condition)

    row = (
        await uow.conn.execute(
            select(
                func.count().label("matched"),
                counted(not_(r.consented)).label("no_consent"),
                counted(and_(r.consented, not_(r.addressed))).label("no_address"),
                counted(and_(r.consented, r.addressed, r.complaint)).label("open_complaint"),
                counted(and_(r.consented, r.addressed, not_(r.complaint), r.low)).label("low_satisfaction"),
                counted(and_(r.consented, r.addressed, not_(r.complaint), not_(r.low))).label("reachable"),
            )
        )
    ).one()
    figures = {k: int(getattr(row, k)) for k in row._fields}
    sample = await page(uow, a, limit=sample_size, after="") if sample_size else []
    return figures, sample


async def page(uow: UnitOfWork, a: Audience, *, limit: int, after: str) -> list[Any]:
    """Up to `limit` reachable members after the customer id `after`, in id order."""
    query = (
        select(
            c.c.id.label("customer_id"),
            c.c.full_name,
            _address(a).label("address"),
            c.c.locale,
        )
        .where(*_facts(a), _reachable(a), c.c.id > after)
        .order_by(c.c.id)
        .limit(limit)
    )
    return list((await uow.conn.execute(query)).all())
