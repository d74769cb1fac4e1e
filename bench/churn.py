"""`make bench-churn`: refreshing the churn model and scoring every customer (issue 20's measure).

An embedded PostgreSQL with reporting's schema; `customer_facts` and `deal_facts` grown with COPY
to each size (default 20k and 100k customers; `--sizes 1000000` for the issue's million): each
customer's acquiring lead buys every 45–75 days from two years ago, half of them to this day and
half stopping at a random moment. At each size:

- `history`: `retention_api.churn_history` — the two snapshots' signals and who bought after each
  (four statements), the relearning's read;
- `learn`: `churn_model.train` on them — CPU seconds, and tracemalloc's peak in a second, traced
  learning;
- `score_all`: every customer's signals now (one statement) scored by the model — what making a
  company-wide list costs — seconds and customers per second.

Writes `bench/results/churn-<date>-<commit>.json` and prints a Markdown table. Figures are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import asyncpg  # noqa: E402
from loadgen import write_result  # noqa: E402
from service_db import header, service_database  # noqa: E402

from crm_kit.db import Database  # noqa: E402
from crm_reporting import churn_model, retention_store  # noqa: E402
from crm_reporting.db import messaging  # noqa: E402
from crm_reporting.main import MIGRATIONS_DIR  # noqa: E402
from crm_reporting.retention_api import churn_history  # noqa: E402


async def grow(conn: asyncpg.Connection, start: int, end: int, rng: random.Random) -> int:
    now = datetime.now(UTC)
    customers, deals = io.StringIO(), io.StringIO()
    written = 0
    for n in range(start, end):
        customers.write(f"c{n}\tl{n}\t{(now - timedelta(days=730)).isoformat()}\n")
        stops = now if n % 2 == 0 else now - timedelta(days=rng.randint(30, 700))
        at = now - timedelta(days=730 - rng.randint(0, 40))
        while at < stops:
            deals.write(f"d{n}-{written}\tl{n}\tt\t100000\tILS\t{at.isoformat()}\n")
            written += 1
            at += timedelta(days=rng.randint(45, 75))
    await conn.copy_to_table(
        "customer_facts",
        source=io.BytesIO(customers.getvalue().encode()),
        columns=["customer_id", "lead_id", "created_at"],
    )
    await conn.copy_to_table(
        "deal_facts",
        source=io.BytesIO(deals.getvalue().encode()),
        columns=["deal_id", "lead_id", "won", "total_minor", "currency_code", "closed_at"],
    )
    await conn.execute("ANALYZE customer_facts; ANALYZE deal_facts")
    return written


async def measure(db: Database) -> dict[str, Any]:
    started = time.perf_counter()
    async with db.unit_of_work() as uow:
        found = await churn_history(uow)
    history_s = time.perf_counter() - started
    cpu = time.process_time()
    model = churn_model.train(*found)
    learn_cpu = time.process_time() - cpu
    tracemalloc.start()
    churn_model.train(*found)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    started = time.perf_counter()
    async with db.unit_of_work() as uow:
        now = await retention_store.signals(uow, datetime.now(UTC))
    read_s = time.perf_counter() - started
    cpu = time.process_time()
    scored = model.risks([c.signals for c in now])
    score_cpu = time.process_time() - cpu
    v = model.validation
    return {
        "history_read_seconds": round(history_s, 2),
        "learn_cpu_seconds": round(learn_cpu, 2),
        "learn_peak_mb": round(peak / 2**20, 1),
        "validation": {"customers": v.customers, "auc": v.auc, "top_decile_lift": v.top_decile_lift, "brier": v.brier},
        "score_all": {
            "customers": len(scored),
            "read_seconds": round(read_s, 2),
            "score_cpu_seconds": round(score_cpu, 2),
            "per_second": round(len(scored) / max(score_cpu, 1e-9)),
        },
    }


async def run(sizes: list[int]) -> dict[str, Any]:
    rng = random.Random(2026)
    results: dict[str, Any] = {}
    async with service_database("reporting", MIGRATIONS_DIR, messaging, source="/bench/churn") as (db, conn):
        grown = 0
        for size in sizes:
            started = time.perf_counter()
            deals = await grow(conn, grown, size, rng)
            grown = size
            results[str(size)] = {"grow_seconds": round(time.perf_counter() - started, 1), "deals_added": deals}
            results[str(size)].update(await measure(db))
    return {**header(), "sizes": results}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| customers | history read s | learn CPU s | learn peak MB | AUC | lift | read all s | score CPU s | /s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, at in result["sizes"].items():
        v, s = at["validation"], at["score_all"]
        lines.append(
            f"| {int(size):,} | {at['history_read_seconds']} | {at['learn_cpu_seconds']} | {at['learn_peak_mb']} "
            f"| {v['auc']} | {v['top_decile_lift']} | {s['read_seconds']} | {s['score_cpu_seconds']} "
            f"| {s['per_second']:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000", help="comma-separated customer counts")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    result = asyncio.run(run([int(s) for s in args.sizes.split(",")]))
    return write_result(result, args.results_dir, "churn", table(result))


if __name__ == "__main__":
    main()
