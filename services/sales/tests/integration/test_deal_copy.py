"""Upgrading an installation that already has deals in the leads database: leads' migration 0012
records their conversions, and sales' one-off copy job moves them, idempotently."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from alembic import command
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from crm_kit.migrations import alembic_config
from crm_sales.deal_copy import copy_deals
from crm_sales.main import MIGRATIONS_DIR as SALES_MIGRATIONS

pytestmark = pytest.mark.integration


def logged(output: str, message: str) -> dict[str, Any]:
    """The JSON log line of a command's output that says message."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [line] = [line for line in lines if line.get("message") == message]
    return line


LEADS_MIGRATIONS = SALES_MIGRATIONS.parents[1] / "leads" / "migrations"

LEADS = [
    # id, rep, team, source, campaign
    ("lead-open", "rep-dana", "team-media", "radio", "spring"),
    ("lead-won", "rep-moshe", "team-media", "tv", ""),
    ("lead-lost", "rep-dana", "team-media", "website", "web"),
]
DEALS = [
    # id, lead, title, status, total, currency, lost reason, closed
    ("deal-a", "lead-open", "ספה", "open", 0, "", "", False),
    ("deal-b", "lead-won", "כורסה", "won", 469900, "ILS", "", True),
    ("deal-c", "lead-lost", "שולחן", "lost", 0, "", "price", True),
]
REP_OF = {lead: rep for lead, rep, *_ in LEADS}


async def run(url: str, sql: str, params: list[dict[str, Any]] | dict[str, Any] | None = None) -> list[Any]:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params or {})
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def leads_with_old_deals(url: str) -> None:
    """A leads database as the release before the sales service left it, with three deals."""
    await asyncio.to_thread(command.upgrade, alembic_config(LEADS_MIGRATIONS, url), "0011")
    await run(
        url,
        "INSERT INTO leads (id, full_name, phone_number, email, source, campaign, locale, product_line, status,"
        " rep_id, team_id) VALUES (:id, 'x', '', '', :source, :campaign, 'he-IL', '', 'converted', :rep, :team)",
        [{"id": i, "rep": r, "team": t, "source": s, "campaign": c} for i, r, t, s, c in LEADS],
    )
    await run(
        url,
        "INSERT INTO deals (id, lead_id, title, owner_rep_id, status, total_minor, currency_code, lost_reason,"
        " closed_at) VALUES (:id, :lead, :title, :rep, :status, :total, :currency, :reason,"
        " CASE WHEN :closed THEN now() END)",
        [
            {"id": d, "lead": lead, "rep": REP_OF[lead], "title": t, "status": s}
            | {"total": n, "currency": c, "reason": r, "closed": x}
            for d, lead, t, s, n, c, r, x in DEALS
        ],
    )
    await run(
        url,
        "INSERT INTO deal_items (deal_id, position, sku, description, quantity, unit_price_minor, currency_code)"
        " VALUES ('deal-b', 0, 'SOFA', 'ספה', 1, 459900, 'ILS'), ('deal-b', 1, 'PILLOW', 'כרית', 2, 5000, 'ILS')",
    )


async def test_conversions_are_recorded_and_deals_copied_once(fresh_database) -> None:
    leads_url, sales_url = await fresh_database("leads"), await fresh_database("sales")
    await leads_with_old_deals(leads_url)
    await asyncio.to_thread(command.upgrade, alembic_config(LEADS_MIGRATIONS, leads_url), "head")
    await asyncio.to_thread(command.upgrade, alembic_config(SALES_MIGRATIONS, sales_url), "head")

    conversions = await run(
        leads_url,
        "SELECT deal_id, lead_id, title, owner_rep_id, owner_team_id, source, campaign, legacy FROM lead_conversions"
        " ORDER BY deal_id",
    )
    assert [tuple(c) for c in conversions] == [
        ("deal-a", "lead-open", "ספה", "rep-dana", "team-media", "radio", "spring", True),
        ("deal-b", "lead-won", "כורסה", "rep-moshe", "team-media", "tv", "", True),
        ("deal-c", "lead-lost", "שולחן", "rep-dana", "team-media", "website", "web", True),
    ]

    source = create_async_engine(leads_url, poolclass=pool.NullPool)
    target = create_async_engine(sales_url, poolclass=pool.NullPool)
    try:
        first = await copy_deals(source, target, batch=2)  # two batches
        assert (first.deals_read, first.deals_copied, first.items_copied) == (3, 3, 2)
        second = await copy_deals(source, target, batch=2)
        assert (second.deals_read, second.deals_copied, second.items_copied) == (3, 0, 0)
    finally:
        await source.dispose()
        await target.dispose()

    copied = await run(
        sales_url,
        "SELECT id, lead_id, title, owner_rep_id, owner_team_id, source, campaign, status, total_minor,"
        " currency_code, lost_reason, closed_at IS NOT NULL FROM deals ORDER BY id",
    )
    assert [tuple(d) for d in copied] == [
        ("deal-a", "lead-open", "ספה", "rep-dana", "team-media", "radio", "spring", "open", 0, "", "", False),
        ("deal-b", "lead-won", "כורסה", "rep-moshe", "team-media", "tv", "", "won", 469900, "ILS", "", True),
        ("deal-c", "lead-lost", "שולחן", "rep-dana", "team-media", "website", "web", "lost", 0, "", "price", True),
    ]
    items = await run(sales_url, "SELECT deal_id, position, sku, quantity FROM deal_items ORDER BY position")
    assert [tuple(i) for i in items] == [("deal-b", 0, "SOFA", 1), ("deal-b", 1, "PILLOW", 2)]
    # Each copied deal is in the default pipeline by its status, with its one history row.
    placed = await run(
        sales_url,
        "SELECT d.id, d.pipeline_id, d.stage_id, h.to_stage_id, h.actor FROM deals d"
        " JOIN deal_stage_history h ON h.deal_id = d.id ORDER BY d.id",
    )
    assert [tuple(p) for p in placed] == [
        ("deal-a", "default", "default-new", "default-new", "copy-deals-from-leads"),
        ("deal-b", "default", "default-won", "default-won", "copy-deals-from-leads"),
        ("deal-c", "default", "default-lost", "default-lost", "copy-deals-from-leads"),
    ]


async def test_the_copy_follows_merges_and_many_items_and_waits_for_a_late_deals_conversion(
    fresh_database,
) -> None:
    leads_url, sales_url = await fresh_database("leads"), await fresh_database("sales")
    await leads_with_old_deals(leads_url)
    await asyncio.to_thread(command.upgrade, alembic_config(LEADS_MIGRATIONS, leads_url), "head")
    await asyncio.to_thread(command.upgrade, alembic_config(SALES_MIGRATIONS, sales_url), "head")
    # After the upgrade, before the copy: a merge moved deal-a's conversion to another lead ...
    await run(
        leads_url, "UPDATE lead_conversions SET lead_id = 'lead-survivor', lead_since = now() WHERE deal_id = 'deal-a'"
    )
    # ... deal-b has 5,002 items (more parameters than one statement takes) ...
    await run(
        leads_url,
        "INSERT INTO deal_items (deal_id, position, sku, description, quantity, unit_price_minor, currency_code)"
        " SELECT 'deal-b', n, 'SKU-' || n, '', 1, 100, 'ILS' FROM generate_series(2, 5001) AS n",
    )
    # ... and a leads pod of the release before, still running, made deal-d with no conversion.
    await run(
        leads_url,
        "INSERT INTO leads (id, full_name, phone_number, email, source, campaign, locale, product_line, status,"
        " rep_id, team_id) VALUES ('lead-late', 'x', '', '', 'tv', '', 'he-IL', '', 'converted', 'rep-dana',"
        " 'team-media')",
    )
    await run(
        leads_url,
        "INSERT INTO deals (id, lead_id, title, owner_rep_id, status) VALUES"
        " ('deal-d', 'lead-late', 'late', 'rep-dana', 'open')",
    )

    source = create_async_engine(leads_url, poolclass=pool.NullPool)
    target = create_async_engine(sales_url, poolclass=pool.NullPool)
    try:
        first = await copy_deals(source, target, batch=2)
        assert (first.deals_read, first.deals_copied, first.items_copied) == (4, 3, 5002)
        assert first.without_conversion == ["deal-d"]
        moved = await run(sales_url, "SELECT lead_id FROM deals WHERE id = 'deal-a'")
        assert moved[0][0] == "lead-survivor"
        since = (
            await run(sales_url, "SELECT lead_since FROM deals WHERE id = 'deal-a'"),
            await run(leads_url, "SELECT lead_since FROM lead_conversions WHERE deal_id = 'deal-a'"),
        )
        assert since[0] == since[1]

        # Leads' job records the late deal's conversion; the next copy takes it, and only it.
        recorded = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "crm_leads", "record-legacy-conversions"],
            env={**os.environ, "CRM_DATABASE_URL": leads_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert recorded.returncode == 0, recorded.stderr
        assert logged(recorded.stderr + recorded.stdout, "legacy conversions recorded")["recorded"] == 1
        second = await copy_deals(source, target, batch=2)
        assert (second.deals_copied, second.items_copied, second.without_conversion) == (1, 0, [])
    finally:
        await source.dispose()
        await target.dispose()
    late = await run(leads_url, "SELECT lead_id, legacy FROM lead_conversions WHERE deal_id = 'deal-d'")
    assert tuple(late[0]) == ("lead-late", True)
    counts = await run(sales_url, "SELECT (SELECT count(*) FROM deals), (SELECT count(*) FROM deal_items)")
    assert tuple(counts[0]) == (4, 5002)


async def test_the_job_command_resumes_a_copy_stopped_half_way(fresh_database) -> None:
    leads_url, sales_url = await fresh_database("leads"), await fresh_database("sales")
    await leads_with_old_deals(leads_url)
    await asyncio.to_thread(command.upgrade, alembic_config(LEADS_MIGRATIONS, leads_url), "head")
    await asyncio.to_thread(command.upgrade, alembic_config(SALES_MIGRATIONS, sales_url), "head")
    # A first run that stopped after one deal.
    await run(
        sales_url,
        "INSERT INTO deals (id, lead_id, title, status, pipeline_id, stage_id)"
        " VALUES ('deal-a', 'lead-open', 'ספה', 'open', 'default', 'default-new')",
    )
    env = {**os.environ, "CRM_DATABASE_URL": sales_url, "CRM_LEGACY_LEADS_DATABASE_URL": leads_url}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "crm_sales", "copy-deals-from-leads"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert logged(done.stderr + done.stdout, "deal copy finished")["copied"] == 2
    counts = await run(sales_url, "SELECT (SELECT count(*) FROM deals), (SELECT count(*) FROM deal_items)")
    assert tuple(counts[0]) == (3, 2)
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "crm_sales", "copy-deals-from-leads"],
        env={**env, "CRM_LEGACY_LEADS_DATABASE_URL": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "CRM_LEGACY_LEADS_DATABASE_URL" in refused.stderr
