"""`make bench-cross-sell`: learning cross-sell rules and suggesting for one customer (issue 20).

An embedded PostgreSQL (the one `make run` starts) with the reporting service's schema and
`purchase_facts` grown with COPY to each size (default 50k and 200k buyers — 200k is the
service's `cross_sell_max_buyers`): 400 products with Zipf-like popularity, one to six products
per buyer, and planted affinities (each product has two companions a buyer of it takes with
probability 0.3), so the rules are many and real. At each size:

- `read`: the service's purchases statement (`queries.purchases`), the one read of a relearning;
- `learn`: `crosssell.learn` over what it read — CPU seconds, and tracemalloc's peak (the memory
  a relearning needs on top of the running service);
- `suggest`: what `GET /customers/{id}/suggestions` costs reporting for a sample of customers
  (`queries.owned_products`, `Affinities.suggest`, `queries.last_cross_sell_offers`) — p50/p95/p99.

Writes `bench/results/cross-sell-<date>-<commit>.json` and prints a Markdown table. Figures are
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
from loadgen import latency_summary, write_result  # noqa: E402
from service_db import header, service_database  # noqa: E402

from crm_kit.db import Database  # noqa: E402
from crm_reporting import crosssell, queries  # noqa: E402
from crm_reporting.db import messaging  # noqa: E402
from crm_reporting.main import MIGRATIONS_DIR  # noqa: E402

PRODUCTS = 400
T0 = datetime(2025, 12, 1, tzinfo=UTC)


def basket(rng: random.Random, weights: list[float]) -> list[str]:
    """One buyer's products: 1–6 popular picks, each bringing its companions at 30 %."""
    picked: dict[int, None] = {}
    for first in rng.choices(range(PRODUCTS), weights=weights, k=rng.randint(1, 6)):
        picked[first] = None
        for companion in ((first * 7 + 1) % PRODUCTS, (first * 13 + 5) % PRODUCTS):
            if rng.random() < 0.3:
                picked[companion] = None
    return [f"SKU-{p:03d}" for p in picked]


async def grow(conn: asyncpg.Connection, start: int, end: int, rng: random.Random) -> None:
    weights = [1 / (rank + 1) for rank in range(PRODUCTS)]
    rows = io.StringIO()
    for buyer in range(start, end):
        at = T0 + timedelta(minutes=rng.randint(0, 365 * 24 * 60))
        for line, sku in enumerate(basket(rng, weights), start=1):
            rows.write(f"deal-{buyer}\t{line}\tlead-{buyer}\t{sku}\tproduct {sku}\t1\t10000\tILS\t{at.isoformat()}\n")
    rows.seek(0)
    columns = ["deal_id", "line", "lead_id", "sku", "description", "quantity", "amount_minor", "currency_code"]
    await conn.copy_to_table(
        "purchase_facts", source=io.BytesIO(rows.getvalue().encode()), columns=[*columns, "closed_at"]
    )
    await conn.execute("ANALYZE purchase_facts")


async def measure(db: Database, size: int, samples: int) -> dict[str, Any]:
    started = time.perf_counter()
    async with db.unit_of_work() as uow:
        found = await queries.purchases(uow, size)
    read_s = time.perf_counter() - started
    cpu = time.process_time()
    model = crosssell.learn(found)
    learn_cpu_s = time.process_time() - cpu
    # Memory in a second learning: tracemalloc slows what it traces, so not in the timed one.
    tracemalloc.start()
    crosssell.learn(found)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    latencies: list[float] = []
    shown = 0
    for n in random.Random(7).sample(range(size), samples):
        started = time.perf_counter()
        async with db.unit_of_work() as uow:
            owned = await queries.owned_products(uow, [f"lead-{n}"])
            suggestions = model.suggest(owned)
            await queries.last_cross_sell_offers(uow, f"customer-{n}")
        latencies.append((time.perf_counter() - started) * 1000)
        shown += len(suggestions)
    return {
        "purchase_rows": len(found),
        "read_seconds": round(read_s, 2),
        "learn_cpu_seconds": round(learn_cpu_s, 2),
        "learn_peak_mb": round(peak / 2**20, 1),
        "rules": model.rule_count,
        "suggestions_mean": round(shown / samples, 2),
        "suggest": latency_summary(latencies),
    }


async def run(sizes: list[int], samples: int) -> dict[str, Any]:
    rng = random.Random(2026)
    results: dict[str, Any] = {}
    async with service_database("reporting", MIGRATIONS_DIR, messaging, source="/bench/cross-sell") as (db, conn):
        grown = 0
        for size in sizes:
            started = time.perf_counter()
            await grow(conn, grown, size, rng)
            grown = size
            results[str(size)] = {"grow_seconds": round(time.perf_counter() - started, 1)}
            results[str(size)].update(await measure(db, size, samples))
    return {**header(), "products": PRODUCTS, "samples": samples, "sizes": results}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| buyers | lines | read s | learn CPU s | learn peak MB | rules | suggest p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, at in result["sizes"].items():
        s = at["suggest"]
        lines.append(
            f"| {int(size):,} | {at['purchase_rows']:,} | {at['read_seconds']} | {at['learn_cpu_seconds']} "
            f"| {at['learn_peak_mb']} | {at['rules']:,} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,200000", help="comma-separated buyer counts")
    parser.add_argument("--samples", type=int, default=300, help="customers asked for suggestions per size")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    result = asyncio.run(run([int(s) for s in args.sizes.split(",")], args.samples))
    return write_result(result, args.results_dir, "cross-sell", table(result))


if __name__ == "__main__":
    main()
