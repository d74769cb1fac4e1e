"""The cost of the report builder's change watermark on the write path: rows written into
`lead_facts` with and without the `changed_xid` trigger (migration 0017), alternated.

One statement inserts 100,000 rows (server time per row, the trigger's own cost without round
trips), six rounds each way; then single-row upserts as a handler writes them (5,000 per round,
one round trip each), six rounds each way; the order alternates round by round. Prints medians
in microseconds; asserts nothing.

    uv run --frozen python bench/fact_trigger.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import asyncpg  # noqa: E402
from service_db import service_database  # noqa: E402

from crm_reporting.db import messaging  # noqa: E402
from crm_reporting.main import MIGRATIONS_DIR  # noqa: E402

BULK = (
    "INSERT INTO lead_facts (lead_id, source, captured_at)"
    " SELECT $1 || g, 'radio', now() FROM generate_series(1, 100000) g"
)
UPSERT = (
    "INSERT INTO lead_facts (lead_id, source, captured_at) VALUES ($1, 'radio', now())"
    " ON CONFLICT (lead_id) DO UPDATE SET source = EXCLUDED.source"
)


async def trigger(conn: asyncpg.Connection, on: bool) -> None:
    await conn.execute(f"ALTER TABLE lead_facts {'ENABLE' if on else 'DISABLE'} TRIGGER lead_facts_changed")


async def main() -> None:
    async with service_database("reporting", MIGRATIONS_DIR, messaging, source="/bench/fact-trigger") as (_, conn):
        bulk: dict[bool, list[float]] = {True: [], False: []}
        single: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(6):
            for on in (True, False) if round_ % 2 else (False, True):
                await trigger(conn, on)
                started = time.perf_counter()
                await conn.execute(BULK, f"bulk-{on}-{round_}-")
                bulk[on].append((time.perf_counter() - started) / 100_000 * 1e6)
        for round_ in range(6):
            for on in (True, False) if round_ % 2 else (False, True):
                await trigger(conn, on)
                started = time.perf_counter()
                for i in range(5_000):
                    await conn.execute(UPSERT, f"one-{on}-{round_}-{i}")
                single[on].append((time.perf_counter() - started) / 5_000 * 1e6)
        for name, runs in (("bulk insert, server µs/row", bulk), ("single-row upsert, µs/row", single)):
            with_it, without = statistics.median(runs[True]), statistics.median(runs[False])
            print(f"{name}: with trigger {with_it:.1f}, without {without:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
