"""Read side of reporting: the per-source and per-campaign reports over the fact tables, and
targets with their actuals.

Leads are counted by capture time and deals by close time, each within the half-open
period [start, end); a deal's source is the one on its DealClosed event, else its lead's
(see `crm_reporting.domain` for the attribution rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, false, func, or_, select, text, true

from crm_kit.db import UnitOfWork
from crm_kit.pagination import keyset_page
from crm_reporting import attribution, crosssell, domain, scoring, targets
from crm_reporting.db import (
    campaign_facts,
    cross_sell_offers,
    customer_facts,
    deal_facts,
    lead_facts,
    lead_touch_facts,
    ticket_facts,
)
from crm_reporting.db import targets as targets_table


def _within(query: Select[Any], column: ColumnElement[Any], period: domain.Period) -> Select[Any]:
    if period.start is not None:
        query = query.where(column >= period.start)
    if period.end is not None:
        query = query.where(column < period.end)
    return query


async def source_report(uow: UnitOfWork, period: domain.Period) -> list[domain.SourceRow]:
    """Leads, won and lost deals and won revenue per source in the period, sorted by source."""
    leads_query = _within(
        select(lead_facts.c.source, func.count().label("leads"))
        .where(lead_facts.c.captured_at.is_not(None))
        .group_by(lead_facts.c.source),
        lead_facts.c.captured_at,
        period,
    )
    lead_counts = {row.source or "": int(row.leads) for row in (await uow.conn.execute(leads_query)).all()}

    # NULLs (not a literal fallback) keep the grouped expression free of bind parameters.
    deal_source = func.coalesce(deal_facts.c.source, lead_facts.c.source)
    deals_query = _within(
        select(
            deal_source.label("source"),
            deal_facts.c.won,
            deal_facts.c.currency_code,
            func.count().label("deals"),
            func.sum(deal_facts.c.total_minor).label("total_minor"),
        )
        .select_from(deal_facts.outerjoin(lead_facts, lead_facts.c.lead_id == deal_facts.c.lead_id))
        .group_by(deal_source, deal_facts.c.won, deal_facts.c.currency_code),
        deal_facts.c.closed_at,
        period,
    )
    deals = [
        domain.DealAggregate(
            source=row.source or "",
            won=row.won,
            currency_code=row.currency_code,
            deals=int(row.deals),
            total_minor=int(row.total_minor or 0),
        )
        for row in (await uow.conn.execute(deals_query)).all()
    ]
    return domain.build_source_report(lead_counts, deals, await _ticket_counts(uow, period))


async def _ticket_counts(uow: UnitOfWork, period: domain.Period) -> list[domain.TicketAggregate]:
    """Tickets opened in the period per source of the customer's acquiring lead (what a source's
    customers cost the service desk after the sale)."""
    source = lead_facts.c.source
    complaint = (ticket_facts.c.kind == "complaint").label("complaint")
    query = _within(
        select(source, complaint, func.count().label("tickets"))
        .select_from(
            ticket_facts.outerjoin(
                customer_facts, customer_facts.c.customer_id == ticket_facts.c.customer_id
            ).outerjoin(lead_facts, lead_facts.c.lead_id == customer_facts.c.lead_id)
        )
        .where(ticket_facts.c.opened_at.is_not(None))
        .group_by(source, complaint),
        ticket_facts.c.opened_at,
        period,
    )
    return [
        domain.TicketAggregate(source=row.source or "", complaint=bool(row.complaint), tickets=int(row.tickets))
        for row in (await uow.conn.execute(query)).all()
    ]


async def source_costs(uow: UnitOfWork) -> dict[str, dict[str, int]]:
    """The actual cost of every source's campaigns, per currency."""
    rows = (
        await uow.conn.execute(
            select(
                campaign_facts.c.source,
                campaign_facts.c.currency_code,
                func.sum(campaign_facts.c.actual_cost_minor).label("cost"),
            )
            .where(campaign_facts.c.currency_code != "")
            .group_by(campaign_facts.c.source, campaign_facts.c.currency_code)
        )
    ).all()
    costs: dict[str, dict[str, int]] = {}
    for row in rows:
        costs.setdefault(row.source, {})[row.currency_code] = int(row.cost or 0)
    return costs


async def campaign_report(uow: UnitOfWork, period: domain.Period, source: str) -> list[domain.CampaignRow]:
    """Every campaign (of source, if given) with its cost and its period's leads, deals and revenue,
    sorted by source and name."""
    query = select(campaign_facts)
    if source:
        query = query.where(campaign_facts.c.source == source)
    rows = {
        r.campaign_id: domain.CampaignRow(
            campaign_id=r.campaign_id,
            source=r.source,
            name=r.name,
            budget_minor=r.budget_minor,
            cost_minor=r.actual_cost_minor,
            currency_code=r.currency_code,
        )
        for r in (await uow.conn.execute(query)).all()
    }
    if not rows:
        return []
    ids = list(rows)
    leads_query = _within(
        select(lead_facts.c.campaign_id, func.count().label("leads"))
        .where(lead_facts.c.campaign_id.in_(ids), lead_facts.c.captured_at.is_not(None))
        .group_by(lead_facts.c.campaign_id),
        lead_facts.c.captured_at,
        period,
    )
    for row in (await uow.conn.execute(leads_query)).all():
        rows[row.campaign_id].leads = int(row.leads)
    deals_query = _within(
        select(
            lead_facts.c.campaign_id,
            deal_facts.c.won,
            deal_facts.c.currency_code,
            func.count().label("deals"),
            func.sum(deal_facts.c.total_minor).label("total_minor"),
        )
        .select_from(deal_facts.join(lead_facts, lead_facts.c.lead_id == deal_facts.c.lead_id))
        .where(lead_facts.c.campaign_id.in_(ids))
        .group_by(lead_facts.c.campaign_id, deal_facts.c.won, deal_facts.c.currency_code),
        deal_facts.c.closed_at,
        period,
    )
    for row in (await uow.conn.execute(deals_query)).all():
        domain.add_deals(
            rows,
            row.campaign_id,
            domain.DealAggregate(
                source="",
                won=row.won,
                currency_code=row.currency_code,
                deals=int(row.deals),
                total_minor=int(row.total_minor or 0),
            ),
        )
    return sorted(rows.values(), key=lambda r: (r.source, r.name, r.campaign_id))


# ---------------------------------------------------------------- targets vs actual
#
# Actuals are read from the fact tables, not kept as rollups: a subject's won deals (or leads) in
# a period is one range of a (subject, time) index, so the report costs one grouped query per
# subject kind whatever the period, and nothing has to be recounted when the company's time zone
# changes, an event arrives late or a target is set after the fact.

_DEAL_SUBJECT = {
    targets.SubjectKind.REP: deal_facts.c.owner_rep_id,
    targets.SubjectKind.TEAM: deal_facts.c.owner_team_id,
    targets.SubjectKind.SOURCE: deal_facts.c.source,
    targets.SubjectKind.PRODUCT_LINE: deal_facts.c.product_line,
}
_LEAD_SUBJECT = {
    targets.SubjectKind.REP: lead_facts.c.rep_id,
    targets.SubjectKind.TEAM: lead_facts.c.team_id,
    targets.SubjectKind.SOURCE: lead_facts.c.source,
    targets.SubjectKind.PRODUCT_LINE: lead_facts.c.product_line,
}


def stored_target(row: Row[Any]) -> targets.StoredTarget:
    return targets.StoredTarget(
        id=row.id,
        target=targets.Target(
            subject_kind=targets.SubjectKind(row.subject_kind),
            subject_id=row.subject_id,
            period_kind=targets.PeriodKind(row.period_kind),
            period_start=row.period_start,
            metric=targets.Metric(row.metric),
            value=row.value,
            currency_code=row.currency_code,
        ),
    )


def _in_scope(scope: targets.TargetScope) -> ColumnElement[bool]:
    if scope.every_target:
        return true()
    held: list[ColumnElement[bool]] = []
    if scope.kinds:
        held.append(targets_table.c.subject_kind.in_(sorted(k.value for k in scope.kinds)))
    for kind, ids in scope.ids_by_kind().items():
        held.append(and_(targets_table.c.subject_kind == kind.value, targets_table.c.subject_id.in_(ids)))
    return or_(*held) if held else false()


async def get_target(uow: UnitOfWork, target_id: str, *, lock: bool = False) -> Row[Any]:
    query = select(targets_table).where(targets_table.c.id == target_id)
    row = (await uow.conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise targets.target_not_found(target_id)
    return row


async def find_target_by_request_id(uow: UnitOfWork, request_id: str) -> Row[Any] | None:
    query = select(targets_table).where(targets_table.c.request_id == request_id)
    return (await uow.conn.execute(query)).first()


async def find_target(uow: UnitOfWork, target: targets.Target) -> Row[Any] | None:
    """The target of the same subject, period and metric, if there is one."""
    query = select(targets_table).where(
        targets_table.c.subject_kind == target.subject_kind.value,
        targets_table.c.subject_id == target.subject_id,
        targets_table.c.period_kind == target.period_kind.value,
        targets_table.c.period_start == target.period_start,
        targets_table.c.metric == target.metric.value,
    )
    return (await uow.conn.execute(query)).first()


@dataclass(frozen=True)
class TargetFilter:
    subject_kind: targets.SubjectKind | None = None
    period_kind: targets.PeriodKind | None = None
    period_start: date | None = None


def _filtered(query: Select[Any], scope: targets.TargetScope, where: TargetFilter) -> Select[Any]:
    query = query.where(_in_scope(scope))
    if where.subject_kind is not None:
        query = query.where(targets_table.c.subject_kind == where.subject_kind.value)
    if where.period_kind is not None:
        query = query.where(targets_table.c.period_kind == where.period_kind.value)
    if where.period_start is not None:
        query = query.where(targets_table.c.period_start == where.period_start)
    return query


async def list_targets(
    uow: UnitOfWork,
    scope: targets.TargetScope,
    where: TargetFilter,
    *,
    limit: int,
    after: tuple[Any, ...] | None,
) -> tuple[list[Row[Any]], list[Any] | None]:
    """Targets in the scope, newest period first, by keyset (period_start, id)."""
    return await keyset_page(
        uow.conn,
        _filtered(select(targets_table), scope, where),
        targets_table.c.period_start,
        targets_table.c.id,
        limit=limit,
        after=after,
        descending=True,
    )


async def period_targets(uow: UnitOfWork, scope: targets.TargetScope, where: TargetFilter) -> list[Row[Any]]:
    """Every target of one period in the scope, by subject and metric."""
    query = _filtered(select(targets_table), scope, where).order_by(
        targets_table.c.subject_kind, targets_table.c.subject_id, targets_table.c.metric
    )
    return list((await uow.conn.execute(query)).all())


async def won_deals(
    uow: UnitOfWork, subjects: Iterable[targets.Subject], period: targets.LocalPeriod
) -> dict[targets.Subject, targets.WonDeals]:
    """Each subject's won deals closed in the period: a count and totals per currency."""
    found: dict[targets.Subject, targets.WonDeals] = {}
    for kind, ids in targets.ids_by_kind(subjects).items():
        column = _DEAL_SUBJECT[kind]
        query = (
            select(
                column.label("subject_id"),
                deal_facts.c.currency_code,
                func.count().label("deals"),
                func.sum(deal_facts.c.total_minor).label("total_minor"),
            )
            .where(
                deal_facts.c.won,
                column.in_(ids),
                deal_facts.c.closed_at >= period.start,
                deal_facts.c.closed_at < period.end,
            )
            .group_by(column, deal_facts.c.currency_code)
        )
        for row in (await uow.conn.execute(query)).all():
            deals = found.setdefault(targets.Subject(kind, row.subject_id), targets.WonDeals())
            deals.add(row.currency_code, int(row.deals), int(row.total_minor or 0))
    return found


async def lead_counts(
    uow: UnitOfWork, subjects: Iterable[targets.Subject], period: targets.LocalPeriod
) -> dict[targets.Subject, int]:
    """Each subject's leads captured in the period."""
    found: dict[targets.Subject, int] = {}
    for kind, ids in targets.ids_by_kind(subjects).items():
        column = _LEAD_SUBJECT[kind]
        query = (
            select(column.label("subject_id"), func.count().label("leads"))
            .where(column.in_(ids), lead_facts.c.captured_at >= period.start, lead_facts.c.captured_at < period.end)
            .group_by(column)
        )
        for row in (await uow.conn.execute(query)).all():
            found[targets.Subject(kind, row.subject_id)] = int(row.leads)
    return found


# A promotion's recipients (their first sent message), those whose lead came in again within the
# window after it, and the won deals of their acquiring leads closed within it: the totals, and the
# revenue per currency. One statement.
_PROMOTION_RESULTS = text(
    "WITH reached AS ("
    " SELECT customer_id, min(at) AS sent_at FROM notification_facts"
    " WHERE promotion_id = :promotion_id AND status = 'sent' AND customer_id IS NOT NULL GROUP BY customer_id),"
    " bought AS ("
    " SELECT r.customer_id, d.total_minor, d.currency_code FROM reached r"
    " JOIN customer_facts c ON c.customer_id = r.customer_id"
    " JOIN deal_facts d ON d.lead_id = c.lead_id AND d.won"
    " AND d.closed_at >= r.sent_at AND d.closed_at < r.sent_at + make_interval(days => :days))"
    " SELECT (SELECT count(*) FROM reached) AS recipients,"
    " (SELECT count(*) FROM reached r JOIN customer_facts c ON c.customer_id = r.customer_id"
    "  WHERE EXISTS (SELECT 1 FROM lead_touch_facts t WHERE t.lead_id = c.lead_id AND t.at >= r.sent_at"
    "  AND t.at < r.sent_at + make_interval(days => :days))) AS leads,"
    " (SELECT count(DISTINCT customer_id) FROM bought) AS buyers,"
    " (SELECT count(*) FROM bought) AS deals,"
    " (SELECT coalesce(jsonb_object_agg(currency_code, total), '{}'::jsonb) FROM"
    "  (SELECT currency_code, sum(total_minor) AS total FROM bought GROUP BY currency_code) AS per) AS revenue"
)


# The same per A/B variant (the recipient's variant: one message per recipient and promotion).
_PROMOTION_RESULTS_BY_VARIANT = text(
    "WITH reached AS ("
    " SELECT customer_id, min(at) AS sent_at, max(variant) AS variant FROM notification_facts"
    " WHERE promotion_id = :promotion_id AND status = 'sent' AND customer_id IS NOT NULL AND variant <> ''"
    " GROUP BY customer_id),"
    " bought AS ("
    " SELECT r.variant, r.customer_id, d.total_minor, d.currency_code FROM reached r"
    " JOIN customer_facts c ON c.customer_id = r.customer_id"
    " JOIN deal_facts d ON d.lead_id = c.lead_id AND d.won"
    " AND d.closed_at >= r.sent_at AND d.closed_at < r.sent_at + make_interval(days => :days)),"
    " per_variant AS (SELECT r.variant, count(*) AS recipients, count(*) FILTER (WHERE EXISTS ("
    "  SELECT 1 FROM customer_facts c JOIN lead_touch_facts t ON t.lead_id = c.lead_id"
    "  WHERE c.customer_id = r.customer_id AND t.at >= r.sent_at"
    "  AND t.at < r.sent_at + make_interval(days => :days))) AS leads FROM reached r GROUP BY r.variant),"
    " per_buyer AS (SELECT variant, count(DISTINCT customer_id) AS buyers, count(*) AS deals FROM bought"
    "  GROUP BY variant),"
    " per_currency AS (SELECT variant, jsonb_object_agg(currency_code, total) AS revenue FROM"
    "  (SELECT variant, currency_code, sum(total_minor) AS total FROM bought GROUP BY 1, 2) AS x GROUP BY variant)"
    " SELECT v.variant, v.recipients, v.leads, coalesce(b.buyers, 0) AS buyers, coalesce(b.deals, 0) AS deals,"
    " coalesce(c.revenue, '{}'::jsonb) AS revenue"
    " FROM per_variant v LEFT JOIN per_buyer b USING (variant) LEFT JOIN per_currency c USING (variant)"
    " ORDER BY v.variant"
)


@dataclass(frozen=True)
class PromotionResults:
    recipients: int
    buyers: int
    deals_won: int
    revenue: dict[str, int]
    leads: int = 0
    # Per A/B variant, the same (empty without variants).
    variants: dict[str, PromotionResults] = field(default_factory=dict)


def _results(row: Any) -> PromotionResults:
    return PromotionResults(
        recipients=int(row.recipients),
        buyers=int(row.buyers),
        deals_won=int(row.deals),
        revenue={currency: int(total) for currency, total in sorted(row.revenue.items())},
        leads=int(row.leads),
    )


async def promotion_results(uow: UnitOfWork, promotion_id: str, window_days: int) -> PromotionResults:
    """What a promotion's recipients bought within window_days after its message reached them, in
    total and per A/B variant."""
    params = {"promotion_id": promotion_id, "days": window_days}
    total = _results((await uow.conn.execute(_PROMOTION_RESULTS, params)).one())
    per_variant = {r.variant: _results(r) for r in await uow.conn.execute(_PROMOTION_RESULTS_BY_VARIANT, params)}
    return PromotionResults(total.recipients, total.buyers, total.deals_won, total.revenue, total.leads, per_variant)


# ---------------------------------------------------------------- attribution


@dataclass(frozen=True)
class JourneyFacts:
    """A lead's journey as attribution reads it, with its won deal's currency."""

    journey: attribution.Journey
    currency_code: str


def _channel(dimension: str, source: str | None, campaign_id: str | None) -> str:
    return (source or "") if dimension == "source" else (campaign_id or "")


async def journeys(uow: UnitOfWork, period: domain.Period, dimension: str) -> list[JourneyFacts]:
    """Every lead with a deal won in the period (converted: its capture and returns up to the win,
    valued at the deal's total) and every lead captured in it without one (not converted), each
    touch named by its source or campaign id. Three statements."""
    won = (
        await uow.conn.execute(
            _within(
                select(
                    deal_facts.c.lead_id, deal_facts.c.closed_at, deal_facts.c.total_minor, deal_facts.c.currency_code
                )
                .where(deal_facts.c.won, deal_facts.c.lead_id.is_not(None))
                .order_by(deal_facts.c.closed_at),
                deal_facts.c.closed_at,
                period,
            )
        )
    ).all()
    deals: dict[str, Any] = {}
    for row in won:
        deals.setdefault(row.lead_id, row)  # a lead's first win in the period
    captured = _within(select(lead_facts.c.lead_id), lead_facts.c.captured_at, period)
    leads_query = select(lead_facts).where(
        lead_facts.c.captured_at.is_not(None),
        or_(lead_facts.c.lead_id.in_(list(deals)), lead_facts.c.lead_id.in_(captured)),
    )
    leads = {r.lead_id: r for r in (await uow.conn.execute(leads_query)).all()}
    touches: dict[str, list[Any]] = {}
    touch_rows = await uow.conn.execute(
        select(lead_touch_facts).where(lead_touch_facts.c.lead_id.in_(list(leads))).order_by(lead_touch_facts.c.at)
    )
    for t in touch_rows.all():
        touches.setdefault(t.lead_id, []).append(t)
    found = []
    for lead_id, lead in leads.items():
        deal = deals.get(lead_id)
        end = deal.closed_at if deal is not None else None
        path = [attribution.Touch(_channel(dimension, lead.source, lead.campaign_id), lead.captured_at)]
        path += [
            attribution.Touch(_channel(dimension, t.source, t.campaign_id), t.at)
            for t in touches.get(lead_id, [])
            if end is None or t.at <= end
        ]
        value = float(deal.total_minor) if deal is not None else 1.0
        found.append(
            JourneyFacts(
                attribution.Journey(tuple(path), end, value, lead_index=0),
                deal.currency_code if deal is not None else "",
            )
        )
    return found


async def attribution_costs(uow: UnitOfWork, dimension: str) -> dict[str, tuple[str, dict[str, int]]]:
    """Each row's name and actual cost per currency: a campaign's own, or a source's campaigns'."""
    if dimension == "source":
        return {source: (source, costs) for source, costs in (await source_costs(uow)).items()}
    rows = (await uow.conn.execute(select(campaign_facts))).all()
    return {
        r.campaign_id: (r.name, {r.currency_code: int(r.actual_cost_minor)} if r.currency_code else {}) for r in rows
    }


# Each decided lead once: won if any of its deals was won (decided when the first was), lost if
# every closed deal was lost (decided at the last); the most recent first, at most :limit.
_DECIDED_LEADS = text(
    "SELECT coalesce(l.source, '') AS source, coalesce(l.campaign_id, '') AS campaign,"
    " coalesce(l.product_line, '') AS product_line, bool_or(d.won) AS won,"
    " coalesce(min(d.closed_at) FILTER (WHERE d.won), max(d.closed_at)) AS decided_at"
    " FROM deal_facts d JOIN lead_facts l ON l.lead_id = d.lead_id"
    " GROUP BY l.lead_id ORDER BY decided_at DESC LIMIT :limit"
)


async def decided_leads(uow: UnitOfWork, limit: int) -> list[scoring.DecidedLead]:
    """The most recent `limit` decided leads with their capture-time fields (one statement)."""
    rows = await uow.conn.execute(_DECIDED_LEADS, {"limit": limit})
    return [
        scoring.DecidedLead(
            {"source": r.source, "campaign": r.campaign, "product_line": r.product_line},
            bool(r.won),
            r.decided_at.timestamp(),
        )
        for r in rows
    ]


# Each of the most recent `limit` buyers' products: the latest purchase of each SKU and its name
# then. The buyers are picked from the (closed_at) index, their lines from the (lead_id, sku) one.
_PURCHASES = text(
    "WITH buyers AS (SELECT lead_id FROM purchase_facts GROUP BY lead_id ORDER BY max(closed_at) DESC LIMIT :limit)"
    " SELECT p.lead_id, p.sku, max(p.closed_at) AS at,"
    " (array_agg(p.description ORDER BY p.closed_at DESC, p.line))[1] AS name"
    " FROM purchase_facts p JOIN buyers b ON b.lead_id = p.lead_id"
    " GROUP BY p.lead_id, p.sku"
)


async def purchases(uow: UnitOfWork, limit: int) -> list[crosssell.Purchase]:
    """The products of the most recent `limit` buyers (one statement)."""
    rows = await uow.conn.execute(_PURCHASES, {"limit": limit})
    return [crosssell.Purchase(r.lead_id, r.sku, r.name, r.at) for r in rows]


_OWNED_BY_LEAD = text(
    "SELECT lead_id, sku, max(closed_at) AS at FROM purchase_facts WHERE lead_id = ANY(:lead_ids) GROUP BY lead_id, sku"
)


async def owned_by_lead(uow: UnitOfWork, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What each lead bought: lead → SKU → when last (one statement)."""
    found: dict[str, dict[str, Any]] = {}
    if lead_ids:
        for r in await uow.conn.execute(_OWNED_BY_LEAD, {"lead_ids": lead_ids}):
            found.setdefault(r.lead_id, {})[r.sku] = r.at
    return found


async def owned_products(uow: UnitOfWork, lead_ids: list[str]) -> dict[str, Any]:
    """What a customer (their leads) bought: SKU → when last."""
    owned: dict[str, Any] = {}
    for bought in (await owned_by_lead(uow, lead_ids)).values():
        for sku, at in bought.items():
            owned[sku] = max(at, owned.get(sku, at))
    return owned


_LAST_OFFERS = text(
    "SELECT DISTINCT ON (sku) * FROM cross_sell_offers WHERE customer_id = :customer_id ORDER BY sku, offered_at DESC"
)


async def last_cross_sell_offers(uow: UnitOfWork, customer_id: str) -> dict[str, Row[Any]]:
    """The latest offer of each SKU to the customer."""
    return {r.sku: r for r in await uow.conn.execute(_LAST_OFFERS, {"customer_id": customer_id})}


async def cross_sell_offer_by_request(uow: UnitOfWork, request_id: str) -> Row[Any] | None:
    found = select(cross_sell_offers).where(cross_sell_offers.c.request_id == request_id)
    return (await uow.conn.execute(found)).first()


# Per offered SKU in the period: offers, answers, and offers after which one of the customer's
# leads bought the SKU within the window (the acceptance that shows in the sales, not only in the
# rep's click).
_CROSS_SELL_REPORT = text(
    "SELECT o.sku, count(*) AS offers,"
    " count(*) FILTER (WHERE o.response = 'accepted') AS accepted,"
    " count(*) FILTER (WHERE o.response = 'declined') AS declined,"
    " sum(CASE WHEN EXISTS (SELECT 1 FROM purchase_facts p WHERE p.lead_id = ANY(o.lead_ids) AND p.sku = o.sku"
    " AND p.closed_at >= o.offered_at AND p.closed_at < o.offered_at + make_interval(days => :window_days))"
    " THEN 1 ELSE 0 END) AS bought_after"
    " FROM cross_sell_offers o"
    " WHERE (CAST(:start AS timestamptz) IS NULL OR o.offered_at >= :start)"
    " AND (CAST(:end AS timestamptz) IS NULL OR o.offered_at < :end)"
    " GROUP BY o.sku ORDER BY offers DESC, o.sku"
)


async def cross_sell_report(uow: UnitOfWork, period: domain.Period, window_days: int) -> list[Row[Any]]:
    params = {"start": period.start, "end": period.end, "window_days": window_days}
    return list(await uow.conn.execute(_CROSS_SELL_REPORT, params))
