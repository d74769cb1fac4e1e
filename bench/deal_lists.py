"""Deal lists and the pipeline board at 100k deals and 1M stage-history rows (issue 15's measure).

Seeds the sales database of a running stack with ``generate_series`` as a bulk load (one pipeline
of five open stages plus won and lost, 12 reps in 3 teams, amounts in ILS and USD, a tenth without
an expected close date, 15 % closed in the last 90 days, about ten history rows per deal; triggers
and foreign-key checks off, the stage totals filled once), VACUUM ANALYZEs, then drives 16 clients
closed loop through the gateway:

- board: ``GET /pipelines/{id}/board`` as an admin (every deal of the pipeline) and as a manager
  (one team's third);
- list: ``GET /deals`` first page (50), pages deep in the list (page tokens of random positions,
  built with the service's own encoder), and a filtered list (a team and a stage);

and, as the floor, the same SQL the figures stand on straight over asyncpg at 16 connections: the
board's one ``GROUP BY`` of sums and one keyset page. Every statement of the floor is EXPLAINed and
the plan's node types kept in the JSON (an index range scan for a page, wherever it is).
Figures are reported, never asserted. Alone (its own stack):

    uv run --frozen python bench/deal_lists.py [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # sibling modules, whether run as a script or loaded by run.py
    sys.path.insert(0, str(BENCH))

from loadgen import closed_loop, session  # noqa: E402

from crm_devstack.stack import Ports, Stack  # noqa: E402
from crm_kit.protoconv import encode_page_token  # noqa: E402

# (deals, stage-history rows) per mode; the issue asks 100k and 1M.
SIZES = {"tiny": (2_000, 20_000), "short": (100_000, 1_000_000), "full": (100_000, 1_000_000)}
PIPELINE = "bench-deals"
# (id, name, probability, outcome, forecast category)
STAGES = [
    ("bench-s0", "New", 10, "open", "pipeline"),
    ("bench-s1", "Qualified", 30, "open", "pipeline"),
    ("bench-s2", "Proposal", 60, "open", "best_case"),
    ("bench-s3", "Negotiation", 80, "open", "commit"),
    ("bench-s4", "Contract", 90, "open", "commit"),
    ("bench-won", "Won", 100, "won", "closed"),
    ("bench-lost", "Lost", 0, "lost", "omitted"),
]
TEAM = "team-bench-1"
SUM_ARGS = ([s[0] for s in STAGES if s[3] == "open"], [s[0] for s in STAGES if s[3] != "open"])

# g = 1..N. Of every 20 deals two are won and one lost (closed in the last 90 days), the rest open
# in one of the five open stages; rep g % 12 in team (g % 12) / 4; every tenth has no expected close.
SEED_DEALS = """
INSERT INTO deals (id, lead_id, lead_since, title, owner_rep_id, owner_team_id, source, campaign, status,
                   total_minor, currency_code, created_at, closed_at, pipeline_id, stage_id, stage_entered_at,
                   expected_close_date, amount_minor, amount_currency)
SELECT 'bench-' || g, 'bench-lead-' || g, created, 'עסקה ' || g,
       'rep-bench-' || lpad((g % 12)::text, 2, '0'), 'team-bench-' || (g % 12) / 4, 'radio', '', status,
       CASE WHEN status = 'won' THEN amount ELSE 0 END, CASE WHEN status = 'won' THEN currency ELSE '' END,
       created, closed, 'bench-deals',
       CASE status WHEN 'won' THEN 'bench-won' WHEN 'lost' THEN 'bench-lost' ELSE 'bench-s' || (g * 7) % 5 END,
       coalesce(closed, created),
       CASE WHEN g % 10 = 9 THEN NULL ELSE current_date + (g % 365 - 60) END, amount, currency
FROM (
    SELECT g,
           CASE WHEN g % 20 < 2 THEN 'won' WHEN g % 20 = 2 THEN 'lost' ELSE 'open' END AS status,
           now() - make_interval(days => g % 400, secs => g % 86400) AS created,
           CASE WHEN g % 20 < 3 THEN now() - make_interval(days => g % 90, secs => g % 3600) END AS closed,
           (g % 1000 + 1) * 10000::bigint AS amount,
           CASE WHEN g % 4 = 0 THEN 'USD' ELSE 'ILS' END AS currency
    FROM generate_series(1, $1::int) AS g
) AS planned
"""
# History row h belongs to deal h % N + 1: ten rows per deal at 1M / 100k.
SEED_HISTORY = """
INSERT INTO deal_stage_history (deal_id, from_stage_id, to_stage_id, actor, moved_at, seconds_in_previous)
SELECT 'bench-' || (h % $2::int + 1), 'bench-s' || h % 5, 'bench-s' || (h + 1) % 5,
       'rep-bench-' || lpad((h % 12)::text, 2, '0'), now() - make_interval(days => h % 400), h % 604800
FROM generate_series(1, $1::int) AS h
"""
# What the trigger deals_stage_totals (sales migration 0003) keeps, for the bench pipeline's deals.
FILL_TOTALS = """
INSERT INTO deal_stage_totals (stage_id, owner_rep_id, owner_team_id, currency_code, pipeline_id, deals, amount_minor)
SELECT stage_id, coalesce(owner_rep_id, ''), coalesce(owner_team_id, ''), coalesce(amount_currency, ''), pipeline_id,
       count(*), coalesce(sum(amount_minor), 0)
FROM deals WHERE status = 'open' AND pipeline_id = $1
GROUP BY 1, 2, 3, 4, 5
"""
# The floor: the board's sums (crm_sales.queries._board_sums: the open stages from the trigger-kept
# deal_stage_totals, the won and lost stages from their last 30 days of closes) and one keyset page
# of the list (crm_sales.queries.list_deals) as plain SQL.
BOARD_SUMS = """
SELECT stage_id, currency_code, sum(deals), sum(amount_minor) FROM deal_stage_totals
WHERE stage_id = ANY($1::text[]) GROUP BY stage_id, currency_code
UNION ALL
SELECT stage_id, currency, count(*), coalesce(sum(value), 0)
FROM (SELECT stage_id, CASE WHEN status = 'won' THEN currency_code ELSE amount_currency END AS currency,
             CASE WHEN status = 'won' THEN total_minor ELSE amount_minor END AS value
      FROM deals WHERE stage_id = ANY($2::text[]) AND closed_at >= now() - interval '30 days') AS closed
GROUP BY stage_id, currency
"""
LIST_PAGE = """
SELECT d.*, s.probability FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id
WHERE d.pipeline_id = $1 AND (d.expected_close_sort, d.id) > ($2::date, $3::text)
ORDER BY d.expected_close_sort, d.id LIMIT 51
"""


def say(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def seed(dsn: str, deals: int, history: int) -> dict[str, Any]:
    """The pipeline, its stages, the deals and their history; seconds per step."""
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.perf_counter()
        async with conn.transaction():
            # A bulk load: no per-row triggers or foreign-key checks (the rows are consistent by
            # construction); the stage totals the trigger would keep are filled once at the end.
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("INSERT INTO pipelines (id, name, product_line) VALUES ($1, 'Bench', 'bench')", PIPELINE)
            await conn.executemany(
                "INSERT INTO pipeline_stages (id, pipeline_id, position, name, probability, outcome, forecast_category)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [(sid, PIPELINE, n, name, p, outcome, cat) for n, (sid, name, p, outcome, cat) in enumerate(STAGES)],
            )
            await conn.execute(SEED_DEALS, deals)
            await conn.execute(FILL_TOTALS, PIPELINE)
            t1 = time.perf_counter()
            await conn.execute(SEED_HISTORY, history, deals)
        t2 = time.perf_counter()
        # What autovacuum keeps in a running system: statistics, and the visibility map index-only
        # scans need (right after a bulk load every page would be fetched from the heap).
        await conn.execute("VACUUM ANALYZE deals, deal_stage_totals, deal_stage_history")
        t3 = time.perf_counter()
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM deals) AS deals, (SELECT count(*) FROM deal_stage_history) AS history"
        )
    finally:
        await conn.close()
    return {
        "deals": counts["deals"],
        "stage_history_rows": counts["history"],
        "deals_s": round(t1 - t0, 2),
        "history_s": round(t2 - t1, 2),
        "vacuum_analyze_s": round(t3 - t2, 2),
    }


def _nodes(plan: dict[str, Any]) -> Iterator[str]:
    yield plan["Node Type"] + (f" on {plan['Index Name']}" if "Index Name" in plan else "")
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def floor(dsn: str, positions: list[tuple[date, str]], clients: int, duration_s: float) -> dict[str, Any]:
    """The board's sums and a keyset page at a random position, straight over asyncpg."""
    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)
    assert pool is not None
    out: dict[str, Any] = {}
    try:
        async with pool.acquire() as conn:
            for name, sql, args in (
                ("board_sums", BOARD_SUMS, SUM_ARGS),
                ("list_page", LIST_PAGE, (PIPELINE, *positions[0])),
            ):
                plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))[0]["Plan"]
                out.setdefault("plans", {})[name] = list(_nodes(plan))

        async def board(_: aiohttp.ClientSession, __: int) -> tuple[bool, Any]:
            return bool(await pool.fetch(BOARD_SUMS, *SUM_ARGS)), None

        async def page(_: aiohttp.ClientSession, __: int) -> tuple[bool, Any]:
            # A position at the list's end gives an empty last page: a page all the same (the
            # gateway answers it 200 too), not an error.
            rows = await pool.fetch(LIST_PAGE, PIPELINE, *random.choice(positions))
            return True, len(rows)

        async with session() as http:
            for name, send in (("board_sums", board), ("list_page", page)):
                out[name] = {"clients": clients, **(await closed_loop(http, send, clients, duration_s)).summary()}
    finally:
        await pool.close()
    return out


async def _get(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> tuple[bool, Any]:
    async with http.get(url, headers=headers) as response:
        await response.read()
        return response.status == 200, None if response.status == 200 else response.status


async def through_gateway(
    stack: Stack, http: aiohttp.ClientSession, tokens: list[str], clients: int, duration_s: float
) -> dict[str, Any]:
    api = f"{stack.gateway_url}/api/v1"
    manager = stack.auth_headers("sales_manager", team_id=TEAM, ttl_seconds=3600)
    board_url = f"{api}/pipelines/{PIPELINE}/board"
    first_page = f"{api}/deals?pipeline_id={PIPELINE}&page_size=50"
    filtered = f"{api}/deals?pipeline_id={PIPELINE}&owner_team_id={TEAM}&stage_id=bench-s3&page_size=50"
    sends = {
        "board_admin": lambda h, _: _get(h, board_url),
        "board_manager": lambda h, _: _get(h, board_url, manager),
        "list_first_page": lambda h, _: _get(h, first_page),
        "list_deep_pages": lambda h, _: _get(h, f"{first_page}&page_token={random.choice(tokens)}"),
        "list_team_and_stage": lambda h, _: _get(h, filtered),
    }
    out: dict[str, Any] = {}
    for name, send in sends.items():
        load = await closed_loop(http, send, clients, duration_s)
        out[name] = {
            "clients": clients,
            **load.summary(),
            "error_samples": [s.payload for s in load.samples if not s.ok][:3],
        }
    return out


async def run(stack: Stack, http: aiohttp.ClientSession, mode: str, clients: int, duration_s: float) -> dict[str, Any]:
    """Seed, then the floor and the gateway figures (``http`` carries an admin token)."""
    deals, history = SIZES[mode]
    dsn = stack.postgres.dsn("sales")
    say(f"deal lists: seeding {deals:,} deals and {history:,} stage-history rows")
    result: dict[str, Any] = {"seed": await seed(dsn, deals, history)}
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT expected_close_sort, id FROM deals WHERE pipeline_id = $1 ORDER BY random() LIMIT 500", PIPELINE
        )
    finally:
        await conn.close()
    positions = [(r["expected_close_sort"], r["id"]) for r in rows]
    tokens = [encode_page_token("expected_close_date", d.isoformat(), i) for d, i in positions]
    say("deal lists: floor (the same SQL over asyncpg)")
    result["floor"] = await floor(dsn, positions, clients, duration_s)
    say("deal lists: through the gateway")
    result.update(await through_gateway(stack, http, tokens, clients, duration_s))
    return result


async def alone(mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="crm-bench-deals-") as tmp:
        stack = Stack(
            Path(tmp),
            Ports.free(),
            extra_env={"CRM_RATE_LIMIT_PER_MINUTE": "60000000", "CRM_RATE_LIMIT_BURST": "1000000"},
        )
        await stack.start()
        try:
            async with session(headers=stack.auth_headers("admin", ttl_seconds=3600)) as http:
                return await run(stack, http, mode, 16, 1 if mode == "tiny" else 4 if mode == "short" else 30)
        finally:
            await stack.stop()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(alone("tiny" if args.tiny else "full" if args.full else "short"))
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return result


if __name__ == "__main__":
    main()
