"""`make bench-report-builder`: the report builder's common shapes over millions of fact rows
(issue 20's measure).

An embedded PostgreSQL with reporting's schema; `lead_facts` grown with COPY to each size (default
1M leads; `--sizes 1000000,10000000` for the issue's 10M) over the last two years — 8 sources, 40
campaigns, 50 reps in 5 teams, 6 product lines, 20 cities — and `deal_facts` with a closed deal for
3 leads in 10 (4 in 10 of them won, 3 pipelines), each deal entering 1-4 of its pipeline's stages
(`deal_stage_facts`). At each size, each shape is run `--samples` times through the service's own
code (builder_store.day_rows, then builder.add_up):

- `source_x_month`: leads by source × Gregorian month, the last 12 months;
- `jalali_weeks`: leads by week (Saturday) named in Persian, the last 90 days;
- `rep_x_pipeline`: deals won, revenue and win rate by rep × pipeline, the last quarter;
- `rep_x_stage`: deals reaching each stage by rep × stage, the last quarter;
- `rep_own_months`: one rep's leads by source × month, the last 12 months (a rep's reach);
- `city_all_time`: leads by city over ten years (every row).

Reports p50/p95/max milliseconds (max is the p99 of this few samples) and tracemalloc's peak of one
run (the Python side: rows read and added up).

With `--duckdb`, reporting's own DuckDB copy (crm_reporting.replica, `--memory` its memory_limit)
is loaded from the grown tables and measured side by side: its load time, file size and the
process's memory, a catch-up after 10,000 leads are reassigned, and each shape through the
builder's path (a catch-up, then DuckDB's GROUP BY from the same catalogue, added up by the same
code) — the two engines' reports compared row by row.

Writes `bench/results/report-builder-<date>-<commit>.json` and prints a Markdown table. Figures are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import asyncpg  # noqa: E402
from loadgen import write_result  # noqa: E402
from service_db import header, service_database  # noqa: E402

from crm_kit.db import Database  # noqa: E402
from crm_reporting import builder, builder_store, replica  # noqa: E402
from crm_reporting.db import messaging  # noqa: E402
from crm_reporting.main import MIGRATIONS_DIR  # noqa: E402

ZONE = ZoneInfo("Asia/Jerusalem")
SOURCES = ("radio", "tv", "website", "referral", "exhibition", "press", "telemarketing", "email")
CHUNK = 500_000
STAGE_NAMES = ("New", "Qualified", "Proposal", "Negotiation")


async def grow(conn: asyncpg.Connection, start: int, end: int, rng: random.Random) -> int:
    """Leads start..end, their deals and the deals' stage entries, COPYed in chunks; the deals written."""
    now = datetime.now(UTC)
    deals_written = 0
    for first in range(start, end, CHUNK):
        leads, deals, stages = io.StringIO(), io.StringIO(), io.StringIO()
        for n in range(first, min(first + CHUNK, end)):
            at = now - timedelta(seconds=rng.randint(0, 730 * 86400))
            source = SOURCES[n % len(SOURCES)]
            rep = rng.randint(0, 49)
            team, line = f"team-{rep % 5}", f"line-{n % 6}"
            leads.write(
                f"l{n}\t{source}\tcampaign-{n % 40}\t{at.isoformat()}\trep-{rep}\t{team}\t{line}\tcity-{n % 20}"
                f"\t{rng.randint(5, 3600)}\trep-{rep}\t{team}\n"
            )
            if n % 10 < 3:
                won = "t" if rng.random() < 0.4 else "f"
                closed = at + timedelta(days=rng.randint(1, 60))
                deals.write(
                    f"d{n}\tl{n}\t{source}\t{won}\t{rng.randint(10_000, 900_000)}\tILS\t{closed.isoformat()}"
                    f"\trep-{rep}\t{team}\tpipeline-{n % 3}\t{line}\n"
                )
                deals_written += 1
                entered = at
                for k, name in enumerate(STAGE_NAMES[: rng.randint(1, 4)]):
                    entered += timedelta(days=rng.randint(0, 10))
                    stages.write(
                        f"d{n}\tpipeline-{n % 3}-{k}\tl{n}\tpipeline-{n % 3}\trep-{rep}\t{team}\t{entered.isoformat()}"
                        f"\t{name}\n"
                    )
        await conn.copy_to_table(
            "lead_facts",
            source=io.BytesIO(leads.getvalue().encode()),
            columns=[
                "lead_id", "source", "campaign", "captured_at", "rep_id", "team_id", "product_line", "city",
                "speed_to_assign_seconds", "owner_rep_id", "owner_team_id",
            ],
        )  # fmt: skip
        await conn.copy_to_table(
            "deal_facts",
            source=io.BytesIO(deals.getvalue().encode()),
            columns=[
                "deal_id", "lead_id", "source", "won", "total_minor", "currency_code", "closed_at", "owner_rep_id",
                "owner_team_id", "pipeline_id", "product_line",
            ],
        )  # fmt: skip
        await conn.copy_to_table(
            "deal_stage_facts", source=io.BytesIO(stages.getvalue().encode()), columns=list(STAGE_COLUMNS)
        )
    await conn.execute("ANALYZE lead_facts; ANALYZE deal_facts; ANALYZE deal_stage_facts")
    return deals_written


def shapes(today: date) -> dict[str, tuple[builder.Query, builder.Reach]]:
    year_ago, quarter = today - timedelta(days=365), builder.resolve_range("last_quarter", today, builder.Periods())
    months = builder.Periods("month")
    return {
        "source_x_month": (builder.Query(("leads",), ("source", "period"), year_ago, today, months), builder.Reach()),
        "jalali_weeks": (
            builder.Query(
                ("leads",), ("period",), today - timedelta(days=90), today, builder.Periods("week", "jalali")
            ),
            builder.Reach(),
        ),
        "rep_x_pipeline": (
            builder.Query(("deals_won", "revenue", "win_rate"), ("rep", "pipeline"), *quarter),
            builder.Reach(),
        ),
        "rep_x_stage": (builder.Query(("deals_reached",), ("rep", "stage"), *quarter), builder.Reach()),
        "rep_own_months": (
            builder.Query(("leads",), ("source", "period"), year_ago, today, months),
            builder.Reach(rep_id="rep-7"),
        ),
        "city_all_time": (
            builder.Query(("leads",), ("city",), today - timedelta(days=3650), today),
            builder.Reach(),
        ),
    }


def spread(times: list[float]) -> dict[str, float]:
    """p50, p95 and max of milliseconds (max is the p99 of this few samples)."""
    times = sorted(times)
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
        "max_ms": round(times[-1], 1),
    }


async def once(db: Database, query: builder.Query, reach: builder.Reach) -> builder.Result:
    async with db.unit_of_work() as uow:
        rows = await builder_store.day_rows(uow, query, reach, ZONE)
    return builder.add_up(query, rows, "fa")


async def measure(db: Database, samples: int, results: dict[str, builder.Result] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, (query, reach) in shapes(datetime.now(ZONE).date()).items():
        builder.validate(query)
        await once(db, query, reach)  # warm: plans and buffers
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            result = await once(db, query, reach)
            times.append((time.perf_counter() - started) * 1000)
        tracemalloc.start()
        await once(db, query, reach)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        found[name] = {**spread(times), "rows": len(result.rows), "python_peak_mb": round(peak / 2**20, 2)}
        if results is not None:
            results[name] = result
    return found


STAGE_COLUMNS = (
    "deal_id", "stage_id", "lead_id", "pipeline_id", "owner_rep_id", "owner_team_id", "entered_at", "stage_name"
)  # fmt: skip
# Leads reassigned between the load and the timed catch-up (their rows rewritten).
CHANGED_LEADS = 10_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def file_mb(directory: str) -> float:
    return round(sum(f.stat().st_size for f in Path(directory).glob("facts.duckdb*")) / 2**20, 1)


async def measure_duckdb(
    db: Database, conn: asyncpg.Connection, samples: int, expected: dict[str, builder.Result], memory: str, size: int
) -> dict[str, Any]:
    """The service's own copy (crm_reporting.replica): its load, a catch-up after CHANGED_LEADS
    reassignments, and each shape through the builder's path (a catch-up, then DuckDB)."""
    with tempfile.TemporaryDirectory(prefix="crm-bench-duckdb-") as tmp:
        copy = replica.Replica(db, tmp, memory_limit=memory, threads=2)
        before = rss_mb()
        started = time.perf_counter()
        await copy.refresh()
        found: dict[str, Any] = {
            "load_seconds": round(time.perf_counter() - started, 1),
            "rss_after_load_mb": round(rss_mb() - before, 1),
            "file_mb": file_mb(tmp),
            "memory_limit": memory,
        }
        # A tenth of the leads at most: the rep's own months still has rows to compare.
        changed = min(CHANGED_LEADS, max(1, size // 10))
        found["changed_leads"] = changed
        await conn.execute(
            "UPDATE lead_facts SET owner_rep_id = 'rep-0' WHERE lead_id IN"
            f" (SELECT lead_id FROM lead_facts ORDER BY random() LIMIT {changed})"
        )
        started = time.perf_counter()
        await copy.catch_up()
        found["catch_up_ms"] = round((time.perf_counter() - started) * 1000, 1)
        for name, (query, reach) in shapes(datetime.now(ZONE).date()).items():
            rows = await copy.day_rows(query, reach, ZONE)
            assert rows is not None
            result = builder.add_up(query, rows, "fa")
            times = []
            for _ in range(samples):
                started = time.perf_counter()
                builder.add_up(query, await copy.day_rows(query, reach, ZONE) or [], "fa")
                times.append((time.perf_counter() - started) * 1000)
            found[name] = {
                **spread(times),
                "rows": len(result.rows),
                # The PostgreSQL answers were read before the reassignments: only the shapes that
                # do not read lead owners can be compared row by row.
                "same_as_postgresql": [(r.keys, r.values) for r in result.rows]
                == [(r.keys, r.values) for r in expected[name].rows]
                if name not in ("rep_own_months",)
                else None,
            }
        found["rss_after_reports_mb"] = round(rss_mb() - before, 1)
        copy.close()
    return found


async def run(sizes: list[int], samples: int, duckdb: bool = False, memory: str = "256MB") -> dict[str, Any]:
    rng = random.Random(2026)
    results: dict[str, Any] = {}
    async with service_database("reporting", MIGRATIONS_DIR, messaging, source="/bench/report-builder") as (db, conn):
        grown = 0
        for size in sizes:
            started = time.perf_counter()
            deals = await grow(conn, grown, size, rng)
            grown = size
            table_mb = await conn.fetchval(
                "SELECT (pg_total_relation_size('lead_facts') + pg_total_relation_size('deal_facts')"
                " + pg_total_relation_size('deal_stage_facts')) / 1048576"
            )
            answers: dict[str, builder.Result] = {}
            results[str(size)] = {
                "grow_seconds": round(time.perf_counter() - started, 1),
                "deals_added": deals,
                "tables_mb": int(table_mb),
                "shapes": await measure(db, samples, answers),
            }
            if duckdb:
                results[str(size)]["duckdb"] = await measure_duckdb(db, conn, samples, answers, memory, size)
    return {**header(), "samples": samples, "sizes": results}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| leads | shape | rows | PostgreSQL p50 ms | p95 ms | max ms | Python peak MB "
        "| DuckDB p50 ms | max ms | same |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, at in result["sizes"].items():
        for name, s in at["shapes"].items():
            d = at.get("duckdb", {}).get(name, {})
            lines.append(
                f"| {int(size):,} | {name} | {s['rows']} | {s['p50_ms']} | {s['p95_ms']} | {s['max_ms']} "
                f"| {s['python_peak_mb']} | {d.get('p50_ms', '—')} | {d.get('max_ms', '—')} "
                f"| {d.get('same_as_postgresql', '—')} |"
            )
    for size, at in result["sizes"].items():
        d = at.get("duckdb")
        if d:
            lines.append(
                f"\nDuckDB copy at {int(size):,} leads: loaded in {d['load_seconds']} s, file {d['file_mb']} MB, "
                f"+{d['rss_after_load_mb']} MB RSS after the load, +{d['rss_after_reports_mb']} MB after the reports "
                f"(memory_limit {d['memory_limit']}); catch-up after {d['changed_leads']:,} reassignments "
                f"{d['catch_up_ms']} ms."
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000", help="comma-separated lead counts (deals: 3 in 10)")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--duckdb", action="store_true", help="measure reporting's DuckDB copy side by side")
    parser.add_argument("--memory", default="256MB", help="the copy's DuckDB memory_limit (CRM_REPORT_ENGINE_MEMORY)")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    result = asyncio.run(run([int(s) for s in args.sizes.split(",")], args.samples, args.duckdb, args.memory))
    return write_result(result, args.results_dir, "report-builder", table(result))


if __name__ == "__main__":
    main()
