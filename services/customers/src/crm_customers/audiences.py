"""Audiences: which live customers match a filter over their facts, and which of them may be reached
on a channel for a purpose. Read-only, in the caller's unit of work, one statement per call.

Every fact is read where this service keeps it current: tags, locale, the acquiring source and the
latest survey score on the customer row; cities from its addresses; purchases (and lifetime value,
their sum per currency, and each customer's latest) from `customer_purchases`; open complaints
from `customer_tickets`; a static list's members from `audience_list_members`. Consent is the
flags the consent records keep current on the row (`marketing_*_consent`,
`transactional_*_opt_out`), so an audience never holds anyone a message could not be sent to.

Members come in customer id order, a keyset page at a time: the caller keeps the last id and asks
for what follows, so a sender that restarts resumes where it stopped. For advertising the page walks
the partial index of the channel's consenting live customers (`ix_customers_audience_<channel>`,
whose predicate the query repeats with constants so the planner can use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Text,
    and_,
    any_,
    case,
    func,
    literal,
    literal_column,
    not_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by

from crm_customers.db import (
    audience_list_members,
    customer_addresses,
    customer_purchases,
    customer_tickets,
    customers,
)
from crm_customers.domain import COMPLAINT, LOW_SATISFACTION_SCORE, PROFILE_LOCALES, Audience, contains_pattern
from crm_kit.db import UnitOfWork

c = customers
# Constants, not parameters: the planner matches them to the partial indexes' predicates.
_EMPTY: ColumnElement[str] = literal_column("''")
_ONE: ColumnElement[int] = literal_column("1")
# Why a matched customer is left out, in the order counted (each under its first reason), then
# the reachable ones.
REASONS = ("no_consent", "no_address", "open_complaint", "low_satisfaction")
REACHABLE = "reachable"


@dataclass(frozen=True)
class Member:
    customer_id: str
    full_name: str
    address: str
    locale: str


def _any_of(column: Any, values: tuple[str, ...]) -> ColumnElement[bool]:
    """column = ANY(array): one parameter whatever the number of values."""
    matched: ColumnElement[bool] = column == any_(literal(list(values), ARRAY(Text)))
    return matched


def _purchased(a: Audience) -> list[ColumnElement[bool]]:
    """A purchase (of the products, when given) in [purchased_after, purchased_before)."""
    if not a.purchase_window:
        return []
    p = customer_purchases
    conditions: list[ColumnElement[bool]] = [p.c.customer_id == c.c.id]
    if a.products:
        patterns = literal([contains_pattern(v) for v in a.products], ARRAY(Text))
        conditions.append(
            _any_of(func.lower(p.c.sku), a.products)
            | _any_of(func.lower(p.c.product_line), a.products)
            | func.lower(p.c.description).like(any_(patterns))
        )
    if a.purchased_after:
        conditions.append(p.c.closed_at >= a.purchased_after)
    if a.purchased_before:
        conditions.append(p.c.closed_at < a.purchased_before)
    return [select(_ONE).where(*conditions).exists()]


def _lifetime(a: Audience) -> list[ColumnElement[bool]]:
    """Won deals' lines in the currency add up to at least the minimum. An uncorrelated IN, so the
    planner adds up the purchases once (a hashed subplan or a semi-join), not once per customer."""
    if not a.min_lifetime_value_minor:
        return []
    p = customer_purchases
    spenders = (
        select(p.c.customer_id)
        .where(p.c.currency_code == a.currency_code)
        .group_by(p.c.customer_id)
        .having(func.sum(p.c.amount_minor) >= a.min_lifetime_value_minor)
    )
    return [c.c.id.in_(spenders)]


def _last_purchase(a: Audience) -> list[ColumnElement[bool]]:
    """The latest purchase in [last_purchased_after, last_purchased_before): an uncorrelated IN over
    each customer's max(closed_at), read from the (customer_id, closed_at) index."""
    if not (a.last_purchased_after or a.last_purchased_before):
        return []
    p = customer_purchases
    latest = func.max(p.c.closed_at)
    bounds = []
    if a.last_purchased_after:
        bounds.append(latest >= a.last_purchased_after)
    if a.last_purchased_before:
        bounds.append(latest < a.last_purchased_before)
    return [c.c.id.in_(select(p.c.customer_id).group_by(p.c.customer_id).having(and_(*bounds)))]


def _open_tickets(a: Audience) -> list[ColumnElement[bool]]:
    """With ("some") or without ("none") a ticket of any kind not resolved: an uncorrelated IN over
    the open tickets, hashed once per statement."""
    if not a.open_tickets:
        return []
    t = customer_tickets
    waiting = c.c.id.in_(select(t.c.customer_id).where(t.c.resolved_at.is_(None)))
    return [waiting if a.open_tickets == "some" else not_(waiting)]


def _criteria(a: Audience) -> list[ColumnElement[bool]]:
    """Every criterion of the filter, on a live customer (an empty filter: every live customer)."""
    found: list[ColumnElement[bool]] = [c.c.merged_into_id.is_(None)]
    if a.tags:
        # && on the tags' GIN index; the tags are matched as spelled.
        found.append(c.c.tags.overlap(literal(list(a.tags), ARRAY(String(50)))))
    if a.locales:
        found.append(_any_of(func.lower(c.c.locale), a.locales))
    if a.sources:
        found.append(_any_of(func.lower(c.c.acquiring_source), a.sources))
    if a.cities:
        places = customer_addresses
        found.append(
            select(_ONE).where(places.c.customer_id == c.c.id, _any_of(func.lower(places.c.city), a.cities)).exists()
        )
    if a.list_id:
        members = audience_list_members
        found.append(c.c.id.in_(select(members.c.customer_id).where(members.c.list_id == a.list_id)))
    return found + _purchased(a) + _last_purchase(a) + _lifetime(a) + _open_tickets(a)


def _open_complaint() -> ColumnElement[bool]:
    """An uncorrelated IN over the few open complaints (their partial index, whose predicate is
    repeated with constants): hashed once per statement, where an EXISTS inside CountAudience's
    CASE would probe the tickets once per customer."""
    t = customer_tickets
    complaint: ColumnElement[str] = literal_column(f"'{COMPLAINT}'")
    return c.c.id.in_(select(t.c.customer_id).where(t.c.kind == complaint, t.c.resolved_at.is_(None)))


def _low_satisfaction() -> ColumnElement[bool]:
    score = c.c.latest_survey_score
    return and_(score.is_not(None), score <= LOW_SATISFACTION_SCORE)


def _consent(a: Audience) -> ColumnElement[bool]:
    """Consent in force: advertising only with a yes, a service message unless withdrawn."""
    if a.purpose == "marketing":
        granted: ColumnElement[bool] = c.c[f"marketing_{a.channel}_consent"]
        return granted
    return not_(c.c[f"transactional_{a.channel}_opt_out"])


def _address(a: Audience) -> Any:
    return c.c.phone_number if a.channel == "sms" else c.c.email


def _exclusions(a: Audience) -> dict[str, ColumnElement[bool]]:
    """Why a matched customer may not be reached, by reason, in the order counted."""
    found = {"no_consent": not_(_consent(a)), "no_address": _address(a) == _EMPTY}
    if not a.include_open_complaints:
        found["open_complaint"] = _open_complaint()
    if not a.include_low_satisfaction:
        found["low_satisfaction"] = _low_satisfaction()
    return found


def _reachable(a: Audience) -> list[ColumnElement[bool]]:
    """Consent, an address for the channel, and neither an open complaint nor a low score unless
    included. Consent and address are written as the partial indexes' predicates."""
    found = [_consent(a), _address(a) != _EMPTY]
    if not a.include_open_complaints:
        found.append(not_(_open_complaint()))
    if not a.include_low_satisfaction:
        found.append(not_(_low_satisfaction()))
    return found


def _members(a: Audience, *, limit: int, after: str) -> Select[Any]:
    """The reachable members after the customer id `after`, in id order, at most `limit`."""
    query = select(c.c.id.label("customer_id"), c.c.full_name, _address(a).label("address"), c.c.locale).where(
        *_criteria(a), *_reachable(a)
    )
    if after:
        query = query.where(c.c.id > after)
    return query.order_by(c.c.id).limit(limit)


async def page(uow: UnitOfWork, a: Audience, *, limit: int, after: str) -> list[Member]:
    """Up to `limit` reachable members after the customer id `after` (in id order)."""
    rows = await uow.conn.execute(_members(a, limit=limit, after=after))
    return [Member(r.customer_id, r.full_name, r.address, r.locale) for r in rows]


def _count_statement(a: Audience, sample_size: int) -> Select[Any]:
    exclusions = _exclusions(a)
    reason = case(*((condition, literal(name)) for name, condition in exclusions.items()), else_=literal(REACHABLE))
    matched = select(reason.label("reason"), c.c.locale).where(*_criteria(a)).subquery("matched")
    picked = _members(a, limit=sample_size, after="").subquery("picked")
    member = func.jsonb_build_array(picked.c.customer_id, picked.c.full_name, picked.c.address, picked.c.locale)
    sample = select(
        func.coalesce(
            func.jsonb_agg(aggregate_order_by(member, picked.c.customer_id)), literal_column("'[]'::jsonb"), type_=JSONB
        )
    ).scalar_subquery()
    figures: list[Any] = [
        func.count().label("matched"),
        *(func.count().filter(matched.c.reason == name).label(name) for name in (*REASONS, REACHABLE)),
        *(
            func.count().filter(matched.c.reason == REACHABLE, matched.c.locale == locale).label(f"locale_{n}")
            for n, locale in enumerate(PROFILE_LOCALES)
        ),
        sample.label("sample"),
    ]
    return select(*figures).select_from(matched)


@dataclass(frozen=True)
class Counted:
    # matched, each of REASONS, reachable.
    figures: dict[str, int]
    # The reachable ones per locale that has any.
    reachable_by_locale: dict[str, int]
    sample: list[Member]


async def count(uow: UnitOfWork, a: Audience, sample_size: int) -> Counted:
    """How many live customers match, how many of them may be reached (in all and per locale), why
    the others may not (each counted once, under its first reason in REASONS' order), and the first
    `sample_size` reachable ones in id order. One statement."""
    row = (await uow.conn.execute(_count_statement(a, sample_size))).one()
    by_locale = {locale: int(getattr(row, f"locale_{n}")) for n, locale in enumerate(PROFILE_LOCALES)}
    return Counted(
        {name: int(getattr(row, name)) for name in ("matched", *REASONS, REACHABLE)},
        {locale: n for locale, n in by_locale.items() if n},
        [Member(*member) for member in row.sample],
    )
