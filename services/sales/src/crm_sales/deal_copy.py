"""The one-off copy of the deals an installation made before the sales service existed, from the
leads database (its old `deals` and `deal_items` tables, kept read-only by leads' migration 0012)
into this one: `python -m crm_sales copy-deals-from-leads` with CRM_LEGACY_LEADS_DATABASE_URL set
(docs/operations.md, "Upgrading to the sales service").

Idempotent: every row is inserted with ON CONFLICT DO NOTHING, one transaction per batch of deals
(with their items), so a copy stopped half-way is simply run again and a second full run copies
nothing. It publishes no event: leads published the DealClosed of every deal it closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from crm_sales.db import deal_items, deals

log = logging.getLogger(__name__)

BATCH = 500

# A deal as leads kept it, with its lead's attribution and team (the owner team was the lead's).
_DEALS = text(
    """
    SELECT d.id, d.lead_id, d.title, d.owner_rep_id, l.team_id AS owner_team_id, l.source, l.campaign,
           d.status, d.total_minor, d.currency_code, d.lost_reason, d.created_at, d.closed_at
    FROM deals d JOIN leads l ON l.id = d.lead_id
    WHERE d.id > :after
    ORDER BY d.id
    LIMIT :limit
    """
)
_ITEMS = text(
    """
    SELECT deal_id, position, sku, description, quantity, unit_price_minor, currency_code
    FROM deal_items WHERE deal_id = ANY(:deal_ids)
    """
)


@dataclass
class CopyReport:
    deals_read: int = 0
    deals_copied: int = 0
    items_copied: int = 0


async def _copy_batch(target: AsyncConnection, rows: list[Any], items: list[Any], report: CopyReport) -> None:
    copied = await target.execute(
        pg_insert(deals).values([dict(r._mapping) for r in rows]).on_conflict_do_nothing().returning(deals.c.id)
    )
    report.deals_copied += len(copied.all())
    if items:
        written = await target.execute(
            pg_insert(deal_items)
            .values([dict(i._mapping) for i in items])
            .on_conflict_do_nothing()
            .returning(deal_items.c.deal_id)
        )
        report.items_copied += len(written.all())


async def copy_deals(source: AsyncEngine, target: AsyncEngine, *, batch: int = BATCH) -> CopyReport:
    """Copy every deal (and its items) of the leads database `source` into the sales database
    `target` that is not there yet; returns what was read and what was new."""
    report = CopyReport()
    after = ""
    while True:
        async with source.connect() as src:
            rows = list((await src.execute(_DEALS, {"after": after, "limit": batch})).all())
            if not rows:
                return report
            items = list((await src.execute(_ITEMS, {"deal_ids": [r.id for r in rows]})).all())
        async with target.begin() as dst:
            await _copy_batch(dst, rows, items, report)
        report.deals_read += len(rows)
        after = rows[-1].id
        log.info("deals copied from leads", extra={"read": report.deals_read, "copied": report.deals_copied})


async def copy_deals_from_leads(settings: Any) -> None:
    """The `copy-deals-from-leads` job: settings are the sales service's (SalesSettings)."""
    if not settings.legacy_leads_database_url:
        raise SystemExit("set CRM_LEGACY_LEADS_DATABASE_URL to the leads database to copy deals from")
    source = create_async_engine(settings.legacy_leads_database_url)
    target = create_async_engine(settings.database_url)
    try:
        report = await copy_deals(source, target)
    finally:
        await source.dispose()
        await target.dispose()
    log.info(
        "deal copy finished",
        extra={"read": report.deals_read, "copied": report.deals_copied, "items": report.items_copied},
    )
