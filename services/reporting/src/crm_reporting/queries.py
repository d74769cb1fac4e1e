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
from crm_reporting.db import deal_facts, lead_facts


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
