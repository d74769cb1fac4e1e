"""Migration 0011 backfills the facts audiences filter on from the timeline kept before it."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from crm_customers.main import MIGRATIONS_DIR
from crm_kit.migrations import alembic_config

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def run(url: str, sql: str, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> list[Any]:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params or {})
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


def entry(customer_id: str, kind: str, summary: str, at: datetime, **facts: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "kind": kind,
        "summary": summary,
        "event_id": str(uuid.uuid4()),
        "facts": json.dumps(facts),
        "at": at,
    }


async def test_purchases_tickets_surveys_and_sources_come_from_the_timeline(fresh_database: Any) -> None:
    url = await fresh_database("customers")
    config = alembic_config(MIGRATIONS_DIR, url)
    await asyncio.to_thread(command.upgrade, config, "0010")
    await run(url, "INSERT INTO customers (id, full_name, locale) VALUES ('c1', 'a', 'he-IL'), ('c2', 'b', 'fa-IR')")
    day = timedelta(days=1)
    entries = [
        entry("c1", "lead_captured", "Came in again from tv", T0 - 5 * day, source="tv", again="yes"),
        entry("c1", "lead_captured", "Lead captured from radio", T0, source="radio"),
        entry("c1", "lead_captured", "Lead captured from facebook", T0 + day, source="facebook"),
        entry("c1", "deal_won", "Deal won: 4,699.00 ILS", T0, amount_minor="469900", currency_code="ILS"),
        # Older than migration 0008: no facts, the summary says it.
        entry("c1", "deal_won", "Deal won: 1,234,567.00 IRR", T0 + day),
        entry("c1", "deal_lost", "Deal lost: price", T0, lost_reason="price"),
        entry("c1", "ticket_opened", "Ticket 1 opened (complaint)", T0, ticket_id="t-open", ticket_kind="complaint"),
        entry("c1", "ticket_opened", "Ticket 2 opened (complaint)", T0, ticket_id="t-done", ticket_kind="complaint"),
        entry("c1", "ticket_resolved", "Ticket 2 resolved", T0 + day, ticket_id="t-done", ticket_kind="complaint"),
        entry("c1", "survey_answered", "Satisfaction survey of ticket 2: 5/5", T0, score="5"),
        entry("c1", "survey_answered", "Satisfaction survey of ticket 2: 2/5", T0 + day, score="2"),
        entry("c2", "lead_captured", "Lead captured from web_form, campaign Winter, 2026", T0),
        entry("c2", "deal_won", "Deal won", T0, amount_minor="lots", currency_code="ILS"),
    ]
    await run(
        url,
        "INSERT INTO timeline (customer_id, kind, summary, channel, event_id, facts, occurred_at) "
        "VALUES (:customer_id, :kind, :summary, 'system', :event_id, CAST(:facts AS jsonb), :at)",
        entries,
    )

    await asyncio.to_thread(command.upgrade, config, "head")

    purchases = await run(
        url, "SELECT deal_id, line, customer_id, sku, amount_minor, currency_code, closed_at FROM customer_purchases"
    )
    ids = dict(await run(url, "SELECT summary, id FROM timeline WHERE kind = 'deal_won'"))
    assert sorted(purchases) == sorted(
        [
            (f"timeline-{ids['Deal won: 4,699.00 ILS']}", 1, "c1", "", 469900, "ILS", T0),
            (f"timeline-{ids['Deal won: 1,234,567.00 IRR']}", 1, "c1", "", 123456700, "IRR", T0 + day),
        ]
    )
    tickets = await run(url, "SELECT ticket_id, customer_id, kind, opened_at, resolved_at FROM customer_tickets")
    assert sorted(tickets) == [
        ("t-done", "c1", "complaint", T0, T0 + day),
        ("t-open", "c1", "complaint", T0, None),
    ]
    facts = await run(
        url,
        "SELECT id, acquiring_source, acquired_at, latest_survey_score, latest_survey_at FROM customers ORDER BY id",
    )
    assert facts == [("c1", "radio", T0, 2, T0 + day), ("c2", "web_form", T0, None, None)]

    await asyncio.to_thread(command.downgrade, config, "0010")
    await asyncio.to_thread(command.upgrade, config, "head")
