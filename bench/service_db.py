"""What the sized benches (search, support, cross-sell) share: one service's database in an
embedded PostgreSQL (the one `make run` starts), migrated, with the service's `Database` for its
real queries and an asyncpg connection for growing tables with COPY; and the run's header."""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from loadgen import commit

from crm_devstack._util import free_ports
from crm_devstack.postgres import EmbeddedPostgres
from crm_kit import migrations
from crm_kit.db import Database
from crm_kit.tables import MessagingTables


@asynccontextmanager
async def service_database(
    name: str, migrations_dir: Path, messaging: MessagingTables, *, source: str
) -> AsyncIterator[tuple[Database, asyncpg.Connection]]:
    """The service's database `name`, migrated: (its Database, a raw connection)."""
    with tempfile.TemporaryDirectory(prefix=f"crm-bench-{name}-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_ports(1)[0])
        pg.start()
        try:
            await pg.acreate_database(name)
            url = pg.url(name)
            await asyncio.to_thread(migrations.upgrade, migrations_dir, url)
            conn = await asyncpg.connect(pg.dsn(name))
            db = Database(url, messaging, source=source, pool_size=2)
            try:
                yield db, conn
            finally:
                await db.dispose()
                await conn.close()
        finally:
            pg.stop()


def header() -> dict[str, Any]:
    """When, at which commit and on what machine a run was made."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
