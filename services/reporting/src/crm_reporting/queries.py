"""Read side of reporting: the per-source report over the fact tables.

Leads are counted by capture time and deals by close time, each within the half-open
period [start, end); a deal's source is the one on its DealClosed event, else its lead's
(see `crm_reporting.domain` for the attribution rule).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, select

from crm_kit.db import UnitOfWork
from crm_reporting import domain
from crm_reporting.db import campaign_facts, deal_facts, lead_facts


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
    return domain.build_source_report(lead_counts, deals)


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
