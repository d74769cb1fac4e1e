"""Rows of the at-risk customers and retention lists (crm_reporting.churn has the rules): each
customer's signals as of a moment read from the fact tables in one statement, the lists and their
entries, the reps' answers, and what each group bought since a list was made."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_kit.db import UnitOfWork
from crm_reporting import churn
from crm_reporting.db import customer_risk_bands, retention_entries, retention_lists, scan_marks

# Per customer who bought (won a deal through their acquiring lead) by :now: the signals of
# crm_reporting.churn. Amounts of every currency are summed in minor units (a company sells in
# one). :customer_id narrows it to one customer, :team_id to the customers of a team's leads.
_SIGNALS = text(
    """
WITH customers AS (
    SELECT c.customer_id, c.lead_id, coalesce(l.owner_rep_id, '') AS rep_id
    FROM customer_facts c LEFT JOIN lead_facts l ON l.lead_id = c.lead_id
    WHERE c.lead_id IS NOT NULL
      AND (CAST(:customer_id AS text) IS NULL OR c.customer_id = :customer_id)
      AND (CAST(:team_id AS text) IS NULL OR l.owner_team_id = :team_id)
),
deals AS (
    SELECT c.customer_id,
        max(d.closed_at) FILTER (WHERE d.won) AS last_won,
        min(d.closed_at) FILTER (WHERE d.won) AS first_won,
        max(d.closed_at) AS last_closed,
        count(*) FILTER (WHERE d.won AND d.closed_at > :recent) AS won_recent,
        count(*) FILTER (WHERE d.won AND d.closed_at <= :recent) AS won_before,
        coalesce(sum(d.total_minor) FILTER (WHERE d.won AND d.closed_at > :recent), 0) AS amount_recent,
        coalesce(sum(d.total_minor) FILTER (WHERE d.won AND d.closed_at <= :recent), 0) AS amount_before,
        count(*) FILTER (WHERE NOT d.won AND d.closed_at > :recent) AS lost_recent
    FROM customers c JOIN deal_facts d ON d.lead_id = c.lead_id AND d.closed_at <= :now
    GROUP BY c.customer_id
),
tickets AS (
    SELECT t.customer_id,
        count(*) FILTER (WHERE t.kind = 'complaint' AND t.opened_at > :tickets_since) AS complaints,
        count(*) FILTER (WHERE t.breaches > 0 AND t.opened_at > :tickets_since) AS breached,
        max(t.opened_at) AS last_ticket
    FROM customers c JOIN ticket_facts t ON t.customer_id = c.customer_id AND t.opened_at <= :now
    GROUP BY t.customer_id
),
consents AS (
    SELECT customer_id, bool_or(NOT granted) AS opted_out FROM (
        SELECT DISTINCT ON (f.customer_id, f.channel) f.customer_id, f.granted
        FROM customers c JOIN consent_facts f ON f.customer_id = c.customer_id
        WHERE f.purpose = 'marketing' AND f.changed_at <= :now
        ORDER BY f.customer_id, f.channel, f.changed_at DESC, f.record_id DESC
    ) latest GROUP BY customer_id
),
returns AS (
    SELECT c.customer_id, max(r.at) AS last_return
    FROM customers c JOIN lead_touch_facts r ON r.lead_id = c.lead_id AND r.at <= :now
    GROUP BY c.customer_id
),
messages AS (
    SELECT c.customer_id, max(n.at) AS last_message
    FROM customers c JOIN notification_facts n ON n.customer_id = c.customer_id
    WHERE n.status = 'sent' AND n.at <= :now
    GROUP BY c.customer_id
)
SELECT c.customer_id, c.lead_id, c.rep_id, d.last_won, d.first_won, d.won_recent, d.won_before,
    d.amount_recent, d.amount_before, d.lost_recent,
    coalesce(t.complaints, 0) AS complaints, coalesce(t.breached, 0) AS breached,
    coalesce(s.opted_out, false) AS opted_out,
    greatest(d.last_closed, t.last_ticket, r.last_return, m.last_message) AS last_contact
FROM customers c JOIN deals d ON d.customer_id = c.customer_id
LEFT JOIN tickets t ON t.customer_id = c.customer_id
LEFT JOIN consents s ON s.customer_id = c.customer_id
LEFT JOIN returns r ON r.customer_id = c.customer_id
LEFT JOIN messages m ON m.customer_id = c.customer_id
WHERE d.last_won IS NOT NULL
"""
)

DAY = 86400.0


@dataclass(frozen=True)
class CustomerSignals:
    customer_id: str
    lead_id: str
    owner_rep_id: str
    signals: churn.Signals


def _days(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds() // DAY))


def _signals(now: datetime, recent: datetime, r: Row[Any]) -> churn.Signals:
    # The earlier rate: per 180 days over the time from the first purchase to the recent window.
    before_days = (recent - r.first_won).total_seconds() / DAY if r.first_won < recent else 0.0
    periods = max(1.0, before_days / churn.RECENT_DAYS)
    return churn.Signals(
        days_since_purchase=_days(now, r.last_won),
        purchases_recent=r.won_recent,
        purchase_rate_before=r.won_before / periods,
        amount_recent=int(r.amount_recent),
        amount_rate_before=float(r.amount_before) / periods,
        complaints_recent=r.complaints,
        breached_recent=r.breached,
        opted_out=bool(r.opted_out),
        days_since_contact=_days(now, r.last_contact),
        lost_recent=r.lost_recent,
    )


async def signals(
    uow: UnitOfWork, now: datetime, *, customer_id: str | None = None, team_id: str | None = None
) -> list[CustomerSignals]:
    """Every customer who bought by `now` (or the one, or a team's) with their signals."""
    recent = now - timedelta(days=churn.RECENT_DAYS)
    params = {
        "now": now,
        "recent": recent,
        "tickets_since": now - timedelta(days=churn.TICKET_DAYS),
        "customer_id": customer_id,
        "team_id": team_id,
    }
    rows = await uow.conn.execute(_SIGNALS, params)
    return [CustomerSignals(r.customer_id, r.lead_id, r.rep_id, _signals(now, recent, r)) for r in rows]


_BUYERS_BETWEEN = text(
    "SELECT DISTINCT c.customer_id FROM customer_facts c JOIN deal_facts d ON d.lead_id = c.lead_id"
    " WHERE d.won AND d.closed_at > :start AND d.closed_at <= :end"
)
_FIRST_PURCHASE = text("SELECT min(closed_at) FROM deal_facts WHERE won")


async def buyers_between(uow: UnitOfWork, start: datetime, end: datetime) -> set[str]:
    """Customers who won a deal in (start, end]: those who did not churn in that window."""
    return set((await uow.conn.execute(_BUYERS_BETWEEN, {"start": start, "end": end})).scalars())


async def first_purchase(uow: UnitOfWork) -> datetime | None:
    found: datetime | None = (await uow.conn.execute(_FIRST_PURCHASE)).scalar()
    return found


async def listed_since(uow: UnitOfWork, since: datetime) -> set[str]:
    """Customers on a list made since then."""
    found = (
        select(retention_entries.c.customer_id)
        .join(retention_lists, retention_lists.c.id == retention_entries.c.list_id)
        .where(retention_lists.c.created_at >= since)
    )
    return set((await uow.conn.execute(found)).scalars())


async def list_by_request(uow: UnitOfWork, request_id: str) -> Row[Any] | None:
    if not request_id:
        return None
    return (await uow.conn.execute(select(retention_lists).where(retention_lists.c.request_id == request_id))).first()


@dataclass(frozen=True)
class NewEntry:
    customer_id: str
    lead_id: str
    control: bool
    rep_id: str
    risk: churn.Risk
    offer: str


def reasons_json(reasons: Sequence[churn.Reason]) -> list[dict[str, Any]]:
    return [{"signal": r.signal, "points": r.points, "value": r.value} for r in reasons]


async def create_list(uow: UnitOfWork, values: dict[str, Any], entries: Sequence[NewEntry]) -> Row[Any] | None:
    """The list and its entries in one transaction; None when its request_id was taken meanwhile."""
    created: Row[Any] | None = (
        await uow.conn.execute(
            pg_insert(retention_lists)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[retention_lists.c.request_id])
            .returning(retention_lists)
        )
    ).first()
    if created is None:
        return None
    if entries:
        await uow.conn.execute(
            retention_entries.insert(),
            [
                {
                    "list_id": created.id,
                    "customer_id": e.customer_id,
                    "lead_id": e.lead_id,
                    "position": n,
                    "control": e.control,
                    "rep_id": e.rep_id,
                    "risk": e.risk.risk,
                    "band": e.risk.band.value,
                    "reasons": reasons_json(e.risk.reasons),
                    "offer": e.offer,
                }
                for n, e in enumerate(entries, start=1)
            ],
        )
    uow.audit("reporting.CreateRetentionList", "retention_list", created.id, {"called": values["called"]})
    return created


def _within(team_id: str, rep_id: str) -> list[Any]:
    conditions: list[Any] = []
    if team_id:
        conditions.append(retention_lists.c.team_id == team_id)
    if rep_id:
        conditions.append(
            retention_lists.c.id.in_(select(retention_entries.c.list_id).where(retention_entries.c.rep_id == rep_id))
        )
    return conditions


async def lists(uow: UnitOfWork, *, team_id: str, rep_id: str, limit: int) -> list[Row[Any]]:
    found = (
        select(retention_lists)
        .where(*_within(team_id, rep_id))
        .order_by(retention_lists.c.created_at.desc(), retention_lists.c.id)
        .limit(limit)
    )
    return list(await uow.conn.execute(found))


async def get_list(uow: UnitOfWork, list_id: str, *, team_id: str, rep_id: str) -> Row[Any] | None:
    found = select(retention_lists).where(retention_lists.c.id == list_id, *_within(team_id, rep_id))
    return (await uow.conn.execute(found)).first()


async def entries(uow: UnitOfWork, list_id: str, *, rep_id: str) -> list[Row[Any]]:
    """The list's entries in order; a rep's: their own calls only."""
    found = select(retention_entries).where(retention_entries.c.list_id == list_id)
    if rep_id:
        found = found.where(retention_entries.c.rep_id == rep_id, retention_entries.c.control.is_(False))
    return list(await uow.conn.execute(found.order_by(retention_entries.c.position)))


async def entry(uow: UnitOfWork, list_id: str, customer_id: str) -> Row[Any] | None:
    found = select(retention_entries).where(
        retention_entries.c.list_id == list_id, retention_entries.c.customer_id == customer_id
    )
    return (await uow.conn.execute(found.with_for_update())).first()


async def record_response(
    uow: UnitOfWork, list_id: str, customer_id: str, response: str, who: str, at: datetime
) -> Row[Any]:
    changed: Row[Any] = (
        await uow.conn.execute(
            update(retention_entries)
            .where(retention_entries.c.list_id == list_id, retention_entries.c.customer_id == customer_id)
            .values(response=response, responded_at=at, responded_by=who)
            .returning(retention_entries)
        )
    ).one()
    uow.audit(
        "reporting.RecordRetentionResponse",
        "retention_entry",
        customer_id,
        {"list_id": list_id, "response": response},
    )
    return changed


# Per group of a list (control or not): its answers; and its customers who won a deal through
# their lead after the list was made, with that revenue per currency.
_RESPONSES = text(
    "SELECT control, response, count(*) AS n FROM retention_entries WHERE list_id = :list_id GROUP BY control, response"
)
_BOUGHT = text(
    """
SELECT e.control, d.currency_code, count(DISTINCT e.customer_id) AS buyers, sum(d.total_minor) AS revenue
FROM retention_entries e JOIN deal_facts d ON d.lead_id = e.lead_id AND d.won AND d.closed_at > :since
WHERE e.list_id = :list_id
GROUP BY GROUPING SETS ((e.control, d.currency_code), (e.control))
"""
)


@dataclass
class GroupFigures:
    customers: int = 0
    responses: dict[str, int] = field(default_factory=dict)
    buyers: int = 0
    revenue: dict[str, int] = field(default_factory=dict)


async def report(uow: UnitOfWork, list_id: str, since: datetime) -> dict[bool, GroupFigures]:
    """Per group (control or not): customers and answers, buyers since `since` and revenue."""
    groups = {False: GroupFigures(), True: GroupFigures()}
    for r in await uow.conn.execute(_RESPONSES, {"list_id": list_id}):
        group = groups[r.control]
        group.customers += r.n
        if r.response:
            group.responses[r.response] = r.n
    for r in await uow.conn.execute(_BOUGHT, {"list_id": list_id, "since": since}):
        group = groups[r.control]
        if r.currency_code is None:
            group.buyers = r.buyers
        else:
            group.revenue[r.currency_code] = int(r.revenue)
    return groups


# ---------------------------------------------------------------- the scheduled scoring


SCAN = "customer-risk-scan"


async def take_scan(uow: UnitOfWork, now: datetime, every: timedelta) -> bool:
    """This transaction's turn at the scheduled scoring: its advisory lock (one replica at a time;
    another finds it taken and skips), and no run within `every` before now (a replica whose turn
    comes right after another's run skips it too). Marks the run when it is this one's."""
    locked = await uow.conn.execute(text("SELECT pg_try_advisory_xact_lock(hashtext('reporting.customer-risk-scan'))"))
    if not locked.scalar():
        return False
    last = (await uow.conn.execute(select(scan_marks.c.at).where(scan_marks.c.name == SCAN))).scalar()
    if last is not None and now - last < every:
        return False
    insert = pg_insert(scan_marks).values(name=SCAN, at=now)
    await uow.conn.execute(
        insert.on_conflict_do_update(index_elements=[scan_marks.c.name], set_={"at": insert.excluded.at})
    )
    return True


async def bands(uow: UnitOfWork) -> dict[str, str]:
    rows = await uow.conn.execute(select(customer_risk_bands.c.customer_id, customer_risk_bands.c.band))
    return {r.customer_id: r.band for r in rows}


async def save_bands(uow: UnitOfWork, rows: Sequence[tuple[str, str, float]], at: datetime) -> None:
    if not rows:
        return
    insert = pg_insert(customer_risk_bands)
    await uow.conn.execute(
        insert.on_conflict_do_update(
            index_elements=[customer_risk_bands.c.customer_id],
            set_={"band": insert.excluded.band, "risk": insert.excluded.risk, "scored_at": insert.excluded.scored_at},
        ),
        [{"customer_id": c, "band": b, "risk": r, "scored_at": at} for c, b, r in rows],
    )
