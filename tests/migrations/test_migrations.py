"""Every service's Alembic history builds exactly the schema its code declares, and goes back down."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import create_async_engine

from crm_kit.migrations import alembic_config

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["leads", "sales", "customers", "orders", "notifications", "reporting"]
pytestmark = pytest.mark.integration


async def schema_diff(url: str, metadata: MetaData) -> list[object]:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
async def test_history_matches_the_models_and_downgrades(service: str, fresh_database) -> None:
    url = await fresh_database(service)
    metadata = importlib.import_module(f"crm_{service}.db").metadata
    config = alembic_config(ROOT / "services" / service / "migrations", url)
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await schema_diff(url, metadata) == []
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await schema_diff(url, metadata) == []


async def test_two_migrations_of_one_database_at_once_both_succeed(fresh_database) -> None:
    """Three `migrate` processes started together (a hook Job retried while its first attempt still
    runs, two releases at once): the advisory lock makes the others wait for the first, then find
    nothing to do — without it they create the same tables and all but one fail (most runs)."""
    url = await fresh_database("reporting")
    env = {**os.environ, "CRM_DATABASE_URL": url}

    async def migrate() -> tuple[int, bytes]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crm_reporting", "migrate", env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await process.communicate()
        return process.returncode or 0, err

    results = await asyncio.gather(migrate(), migrate(), migrate())
    assert [code for code, _ in results] == [0, 0, 0], [err.decode()[-2000:] for _, err in results]
    metadata = importlib.import_module("crm_reporting.db").metadata
    assert await schema_diff(url, metadata) == []
