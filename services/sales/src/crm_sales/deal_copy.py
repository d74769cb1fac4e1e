"""The one-off copy of the deals an installation made before the sales service existed, from the
leads database (its old `deals` and `deal_items` tables, kept read-only by leads' migration 0012)
into this one: `python -m crm_sales copy-deals-from-leads` with CRM_LEGACY_LEADS_DATABASE_URL set
(docs/operations.md, "Upgrading to the sales service").

Idempotent: deals are inserted with ON CONFLICT DO NOTHING and the items of the deals a batch
inserted go in the same transaction, so a copy stopped half-way is simply run again and a second
full run copies nothing; a deal already here (opened or closed by sales since) is never touched.
It publishes no event: leads published the DealClosed of every deal it closed. Each deal lands in
the default pipeline by its status (open → its first open stage, won → won, lost → lost; as
migration 0002 placed the deals already here), with one stage history row. Each deal keeps
`lead_since` from its conversion, so a merge in leads after it is read still moves the deal
(crm_sales.domain.merge_order) and one before it is not applied twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from crm_kit.settings import asyncpg_url
from crm_sales.db import deal_items, deal_stage_history, deals, pipeline_stages
from crm_sales.pipelines import DEFAULT_PIPELINE_ID

log = logging.getLogger(__name__)

BATCH = 500

# A deal as leads kept it, on the lead its conversion names now (merges since migration 0012 moved
# the conversion, not the old row) and since when. A deal with no conversion (made by a leads pod of
# the release before after 0012 ran) is counted and skipped: leads' `record-legacy-conversions` job
# records it, and the next run copies it.
_DEALS = text(
    """
    SELECT d.id, c.lead_id, c.lead_since, d.title, d.owner_rep_id, c.owner_team_id, c.source, c.campaign,
           d.status, d.total_minor, d.currency_code, d.lost_reason, d.created_at, d.closed_at
    FROM deals d LEFT JOIN lead_conversions c ON c.deal_id = d.id
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
# Who moved a copied deal into its stage, in its stage history.
COPY_ACTOR = "copy-deals-from-leads"
# Rows per INSERT of items: 7 parameters each, far below PostgreSQL's 32,767 per statement.
ITEM_ROWS_PER_INSERT = 1_000


@dataclass
class CopyReport:
    deals_read: int = 0
    deals_copied: int = 0
    items_copied: int = 0
    # Deal ids without a conversion in leads: not copied (see above).
    without_conversion: list[str] = field(default_factory=list)


async def _stage_by_status(target: AsyncConnection) -> dict[str, str]:
    """The default pipeline's stage for a deal of each status: its first open, the won, the lost."""
    query = (
        select(pipeline_stages.c.id, pipeline_stages.c.outcome)
        .where(pipeline_stages.c.pipeline_id == DEFAULT_PIPELINE_ID)
        .order_by(pipeline_stages.c.position.desc())
    )
    # Highest position first, so the first open stage is the one left in the dict.
    return {outcome: stage_id for stage_id, outcome in await target.execute(query)}


def _placed(row: Any, stages: dict[str, str]) -> dict[str, Any]:
    deal = dict(row._mapping)
    entered = deal["closed_at"] or deal["created_at"]
    return deal | {"pipeline_id": DEFAULT_PIPELINE_ID, "stage_id": stages[deal["status"]], "stage_entered_at": entered}


async def _copy_batch(source: AsyncConnection, target: AsyncConnection, rows: list[Any], report: CopyReport) -> None:
    """Insert the batch's deals that are new here with their first history row, then the items of
    exactly those deals (a deal already here, whatever sales did with it since, keeps its own)."""
    report.without_conversion += [r.id for r in rows if r.lead_id is None]
    stages = await _stage_by_status(target)
    convertible = [_placed(r, stages) for r in rows if r.lead_id is not None]
    if not convertible:
        return
    inserted = await target.execute(pg_insert(deals).values(convertible).on_conflict_do_nothing().returning(deals.c.id))
    new_ids = [row.id for row in inserted]
    report.deals_copied += len(new_ids)
    if not new_ids:
        return
    copied = set(new_ids)
    history = [
        {"deal_id": d["id"], "to_stage_id": d["stage_id"], "actor": COPY_ACTOR, "moved_at": d["stage_entered_at"]}
        for d in convertible
        if d["id"] in copied
    ]
    await target.execute(pg_insert(deal_stage_history).values(history))
    items = [dict(i._mapping) for i in await source.execute(_ITEMS, {"deal_ids": new_ids})]
    for start in range(0, len(items), ITEM_ROWS_PER_INSERT):
        await target.execute(pg_insert(deal_items).values(items[start : start + ITEM_ROWS_PER_INSERT]))
    report.items_copied += len(items)


async def copy_deals(source: AsyncEngine, target: AsyncEngine, *, batch: int = BATCH) -> CopyReport:
    """Copy every deal (and its items) of the leads database `source` into the sales database
    `target` that is not there yet; returns what was read, what was new and what was skipped."""
    report = CopyReport()
    after = ""
    while True:
        async with source.connect() as src:
            rows = list((await src.execute(_DEALS, {"after": after, "limit": batch})).all())
            if not rows:
                return report
            async with target.begin() as dst:
                await _copy_batch(src, dst, rows, report)
        report.deals_read += len(rows)
        after = rows[-1].id
        log.info("deals copied from leads", extra={"read": report.deals_read, "copied": report.deals_copied})


async def copy_deals_from_leads(settings: Any) -> None:
    """The `copy-deals-from-leads` job: settings are the sales service's (SalesSettings)."""
    if not settings.legacy_leads_database_url:
        raise SystemExit("set CRM_LEGACY_LEADS_DATABASE_URL to the leads database to copy deals from")
    source = create_async_engine(asyncpg_url(settings.legacy_leads_database_url))
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
    if report.without_conversion:
        log.error(
            "deals without a conversion in leads were not copied: run `python -m crm_leads "
            "record-legacy-conversions`, then this job again",
            extra={"deal_ids": report.without_conversion[:20], "count": len(report.without_conversion)},
        )
        raise SystemExit(1)
