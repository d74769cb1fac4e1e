"""Migration 0010 scopes the request ids of captures made before it: they keep working."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from alembic import command
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from crm_kit.migrations import alembic_config
from crm_leads.main import MIGRATIONS_DIR

pytestmark = pytest.mark.integration

IMPORT_ID = str(uuid.uuid4())
KEY_ID = str(uuid.uuid4())

LEAD_COLUMNS = (
    "id, request_id, full_name, phone_number, email, source, campaign, locale, product_line, status, web_form_key_id"
)


def lead(lead_id: str, request_id: str | None, key_id: str | None = None) -> dict[str, Any]:
    return {"id": lead_id, "request_id": request_id, "key_id": key_id}


async def run(url: str, *statements: tuple[str, dict[str, Any]]) -> list[Any]:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            results = [await conn.execute(text(sql), params) for sql, params in statements]
            return [r.all() if r.returns_rows else None for r in results]
    finally:
        await engine.dispose()


async def test_request_ids_of_existing_captures_get_their_scope(fresh_database) -> None:
    url = await fresh_database("leads")
    config = alembic_config(MIGRATIONS_DIR, url)
    await asyncio.to_thread(command.upgrade, config, "0009")
    insert_lead = (
        f"INSERT INTO leads ({LEAD_COLUMNS}) VALUES "
        "(:id, :request_id, 'x', '', '', 'radio', '', 'he-IL', '', 'new', :key_id)"
    )
    await run(
        url,
        (
            "INSERT INTO lead_imports (id, request_id, source, mode, status, create_actor) "
            "VALUES (:id, 'upload-1', 'radio', 'all_or_nothing', 'completed', 'marketing-1')",
            {"id": IMPORT_ID},
        ),
        (
            "INSERT INTO web_form_keys (id, display_name, source, secret_hash, secret_prefix, create_actor) "
            "VALUES (:id, 'site', 'web_form', 'h', 'wfk_', 'a')",
            {"id": KEY_ID},
        ),
        (insert_lead, lead("l-import", f"import:{IMPORT_ID}:7")),
        (insert_lead, lead("l-form", "web-form:abc", KEY_ID)),
        (insert_lead, lead("l-api", "crm-1")),
        (insert_lead, lead("l-unknown", "crm-2")),
        (insert_lead, lead("l-none", None)),
        (
            "INSERT INTO audit_log (actor, action, record_type, record_id, details) "
            "VALUES ('alice', 'leads.CaptureLead', 'lead', 'l-api', '{}'), "
            "('bob', 'leads.AttachTouch', 'lead', 'l-api', '{\"touch_id\": \"t-1\"}')",
            {},
        ),
        (
            "INSERT INTO lead_touches (id, lead_id, request_id, source, matched_on, touched_at) "
            "VALUES ('t-1', 'l-api', 'crm-3', 'tv', 'phone_number', now())",
            {},
        ),
    )

    await asyncio.to_thread(command.upgrade, config, "head")

    [leads, touches] = await run(
        url,
        ("SELECT id, request_scope, request_id FROM leads ORDER BY id", {}),
        ("SELECT id, request_scope, request_id FROM lead_touches", {}),
    )
    assert {row.id: (row.request_scope, row.request_id) for row in leads} == {
        # a resumed import finds the rows it captured (crm_leads.imports.commands looks up this pair)
        "l-import": (f"import:{IMPORT_ID}", "7"),
        "l-form": (f"web-form-key:{KEY_ID}", "web-form:abc"),
        "l-api": ("actor:alice", "crm-1"),
        # no record of who captured it: a scope nobody has, so it is never replayed to anyone
        "l-unknown": ("legacy", "crm-2"),
        "l-none": (None, None),
    }
    assert [(t.request_scope, t.request_id) for t in touches] == [("actor:bob", "crm-3")]

    await asyncio.to_thread(command.downgrade, config, "0009")
    [leads] = await run(url, ("SELECT id, request_id FROM leads WHERE id = 'l-import'", {}))
    assert leads[0].request_id == f"import:{IMPORT_ID}:7"
