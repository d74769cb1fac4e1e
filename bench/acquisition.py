"""`make bench-acquisition`: lead capture with routing and the duplicate check, against a big leads table.

Issue #7's benchmark, on the whole CRM started like `make run` (embedded PostgreSQL, NATS, every
service as its own process, on free ports):

1. **Duplicate check cost by table size.** The leads table is grown to each size (default 10k,
   100k, 1M existing leads; realistic Hebrew and Persian names, Israeli phone numbers, e-mails; rows
   written with COPY, keys computed by the service's own normalization). At each size the service's
   real duplicate check (``crm_leads.duplicates.commands.find_duplicate``: the locks and look-ups
   capture sends, as separate statements; capture folds them into its opening and look-up
   statements, ``crm_leads.leads.capture_statements``) runs for a sample of captures — a third an
   exact phone match, a third an e-mail match, a third a new person with a known name — in its own
   transaction, timed one at a time. Every SQL
   statement it sent is EXPLAINed: the report lists the plan's node types, so a sequential scan
   of ``leads`` would show.
2. **Capture at a steady rate** with the table at the load size (default 100k): ``POST
   /api/v1/leads`` open loop at 200 leads/s for 60 s through the gateway (85 % new people, 10 %
   the same person again by phone, 5 % by e-mail). Latency counts from the scheduled send (no
   coordinated omission). A new lead is routed to its rep inside that request, so the 201's
   latency is the assignment latency; 200s (attached to an existing lead) are reported apart.
   Afterwards: how the new leads spread over reps, and how many waited in the fallback queue.

Writes ``bench/results/acquisition-<date>-<commit>.json`` and prints a Markdown table. Figures
are reported, never asserted (``--tiny`` is the smoke test's mode).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from loadgen import closed_loop, commit, latency_summary, open_loop, plan_nodes, session  # noqa: E402
from sqlalchemy import event  # noqa: E402

from crm_devstack.stack import Ports, Stack  # noqa: E402
from crm_kit import names  # noqa: E402
from crm_kit.db import Database  # noqa: E402
from crm_leads.db import messaging  # noqa: E402
from crm_leads.duplicates import commands as duplicate_commands  # noqa: E402
from crm_leads.duplicates import domain as duplicate_domain  # noqa: E402
from crm_leads.duplicates import queries as duplicate_queries  # noqa: E402
from crm_leads.leads import domain  # noqa: E402

FIRST_HE = ("משה", "דנה", "יוסי", "רחל", "אבי", "נועה", "איתי", "מיכל", "דוד", "שרה", "אורי", "תמר", "יעל", "רון")
LAST_HE = ("כהן", "לוי", "מזרחי", "פרץ", "ביטון", "אברהם", "פרידמן", "שפירא", "דהן", "אזולאי", "חדד", "גבאי")
FIRST_FA = ("محمد", "علی", "زهرا", "فاطمه", "رضا", "مریم", "حسین", "سارا", "امید", "نرگس", "مهدی", "لیلا")
LAST_FA = ("محمدی", "حسینی", "کریمی", "رضایی", "احمدی", "موسوی", "جعفری", "صادقی", "رحیمی", "کاظمی")
SOURCES = ("radio", "tv", "website", "press", "exhibition", "referral")


@dataclass(frozen=True)
class Mode:
    name: str
    sizes: tuple[int, ...]
    load_size: int
    rate: float
    load_s: float
    dup_samples: int
    capacity_clients: int
    capacity_s: float


MODES = {
    "tiny": Mode(
        "tiny",
        sizes=(1_000, 3_000),
        load_size=1_000,
        rate=20,
        load_s=2,
        dup_samples=30,
        capacity_clients=4,
        capacity_s=1,
    ),
    "short": Mode(
        "short",
        sizes=(10_000, 100_000, 1_000_000),
        load_size=100_000,
        rate=200,
        load_s=60,
        dup_samples=600,
        capacity_clients=16,
        capacity_s=15,
    ),
}


def say(message: str) -> None:
    print(f"[bench-acquisition {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def person(n: int) -> tuple[str, str, str, str]:
    """The n-th synthetic person: full name, E.164 phone, e-mail, locale (deterministic)."""
    rng = random.Random(n)
    if n % 3 == 0:
        name, locale = f"{rng.choice(FIRST_FA)} {rng.choice(LAST_FA)}", "fa-IR"
    else:
        name, locale = f"{rng.choice(FIRST_HE)} {rng.choice(LAST_HE)}", "he-IL"
    phone = f"+9725{n % 10}{n // 10:07d}"  # unique per n below 10^8
    email = f"p{n}@example.co.il" if n % 2 == 0 else ""
    return name, phone, email, locale


class Seeder:
    """Grows the leads table with COPY, keys from the service's normalization."""

    def __init__(self, conn: asyncpg.Connection, reps: list[tuple[str, str]]) -> None:
        self.conn = conn
        self.reps = reps
        self.rows = 0
        self.columns: list[str] = []  # the leads table's columns, read by start()

    async def start(self) -> None:
        found = await self.conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'leads' ORDER BY ordinal_position"
        )
        self.columns = [r["column_name"] for r in found]
        self.rows = await self.conn.fetchval("SELECT count(*) FROM leads")

    def _row(self, n: int, now: datetime) -> dict[str, Any]:
        name, phone, email, locale = person(n)
        rep_id, team_id = self.reps[n % len(self.reps)]
        created = now - timedelta(minutes=n % 500_000)
        new = domain.NewLead(
            full_name=name,
            phone_number=phone,
            email=email,
            source=SOURCES[n % len(SOURCES)],
            campaign="",
            locale=locale,
            product_line="",
            city="",
            region="",
        )
        row: dict[str, Any] = {
            "id": str(uuid.UUID(int=n + 1)),
            "full_name": name,
            "phone_number": phone,
            "email": email,
            "source": new.source,
            "campaign": "",
            "locale": locale,
            "product_line": "",
            "status": "converted" if n % 5 == 0 else "new",
            "rep_id": rep_id,
            "team_id": team_id,
            "rule_id": "rule-default",
            "assign_reason": "seeded by bench/acquisition.py",
            "assigned_at": created,
            "created_at": created,
            "first_response_at": created + timedelta(minutes=3),
            "name_key": names.name_key(name),
            "missing_fields": list(duplicate_domain.missing_fields(new)),
            "touch_count": 1,
        }
        # The other name keys the duplicate check keeps (name_compact, name_skeleton, …).
        for column in self.columns:
            if column.startswith("name_") and column not in row and hasattr(names, column):
                row[column] = getattr(names, column)(name)
        return row

    async def grow_to(self, size: int) -> float:
        """Insert rows until the table has ``size``; returns the seconds it took (COPY + ANALYZE)."""
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        while self.rows < size:
            batch = min(50_000, size - self.rows)
            start = self.rows + 1_000_000  # away from the ids and phones of the load's new people
            rows = [self._row(start + i, now) for i in range(batch)]
            columns = [c for c in rows[0] if c in self.columns]
            await self.conn.copy_records_to_table(
                "leads", records=[tuple(r[c] for c in columns) for r in rows], columns=columns
            )
            self.rows += batch
        await self.conn.execute("ANALYZE leads")
        return time.perf_counter() - t0


async def duplicate_check_cost(db: Database, conn: asyncpg.Connection, size: int, samples: int) -> dict[str, Any]:
    """Time the service's duplicate check for ``samples`` captures against a table of ``size`` leads."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    rng = random.Random(size)
    timings: dict[str, list[float]] = {"phone": [], "email": [], "new_person": []}
    found: Counter[str] = Counter()
    try:
        for i in range(samples):
            n = 1_000_000 + rng.randrange(size)
            name, phone, email, locale = person(n)
            kind = ("phone", "email", "new_person")[i % 3]
            if kind == "email" and not email:
                n += 1 if n % 2 else 0
                name, phone, email, locale = person(n)
            if kind == "phone":
                new = (name, phone, "")
            elif kind == "email":
                new = (name, "", email)
            else:
                new = (name, f"+97253{rng.randrange(10**7):07d}", "")
            lead = domain.NewLead(
                full_name=new[0],
                phone_number=new[1],
                email=new[2],
                source="radio",
                campaign="",
                locale=locale,
                product_line="",
                city="",
                region="",
            )
            statements.clear()
            t0 = time.perf_counter()
            async with db.unit_of_work() as uow:
                match = await duplicate_commands.find_duplicate(uow, lead)
                # A new person is also looked up by name (possible duplicates for review).
                query = duplicate_queries.name_candidates_query("", names.name_keys(lead.full_name))
                if match is None and query is not None:
                    await uow.conn.execute(query)
            timings[kind].append((time.perf_counter() - t0) * 1000)
            found[f"{kind}:{'match' if match else 'none'}"] += 1
        plans = await _plans(conn, list(statements))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    return {
        "existing_leads": size,
        **{kind: latency_summary(values) for kind, values in timings.items()},
        "all": latency_summary([v for values in timings.values() for v in values]),
        "outcomes": dict(found),
        "plans": plans,
    }


async def _plans(conn: asyncpg.Connection, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """EXPLAIN each statement of the last duplicate check: the plan's node types and relations."""
    plans = []
    for statement, parameters in statements:
        if not statement.lstrip().upper().startswith("SELECT"):
            continue
        sql, args = _to_asyncpg(statement, parameters)
        try:
            plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))[0]["Plan"]
        except Exception as exc:  # a statement this EXPLAIN cannot replay: say so, don't guess
            plans.append({"statement": statement[:200], "error": repr(exc)[:200]})
            continue
        nodes = plan_nodes(plan)
        plans.append({"statement": " ".join(statement.split())[:300], "nodes": nodes})
    return plans


def _to_asyncpg(statement: str, parameters: Any) -> tuple[str, list[Any]]:
    # SQLAlchemy's asyncpg dialect already sends $1-style placeholders with a positional tuple.
    return statement, list(parameters or ())


async def capture_at_rate(stack: Stack, http: aiohttp.ClientSession, mode: Mode, pool: list[int]) -> dict[str, Any]:
    """POST /api/v1/leads open loop: new people, and people already in the table again."""
    api = f"{stack.gateway_url}/api/v1/leads"
    rng = random.Random(7)
    base = 50_000_000 + rng.randrange(10**6) * 10  # new people: phones and ids no seed row has

    def body(i: int) -> dict[str, Any]:
        roll = i % 20
        if roll < 17 or not pool:  # a new person
            name, phone, email, locale = person(base + i)
        elif roll < 19:  # someone already in the table, by phone
            name, phone, _, locale = person(rng.choice(pool))
            email = ""
        else:  # someone already in the table, by e-mail, from another phone
            name, _, email, locale = person(rng.choice([n for n in pool[:200] if n % 2 == 0] or pool))
            phone = person(base + i)[1]
        return {
            "full_name": name,
            "phone_number": phone,
            "email": email,
            "source": SOURCES[i % len(SOURCES)],
            "locale": locale,
            "request_id": str(uuid.uuid4()),
        }

    numbers = itertools.count()  # one sequence over both runs: the open loop's people are new too

    async def send(client: aiohttp.ClientSession, _: int) -> tuple[bool, Any]:
        async with client.post(api, json=body(next(numbers))) as response:
            if response.status not in (200, 201):
                return False, f"{response.status} {(await response.text())[:200]}"
            lead = await response.json()
            return True, (response.status, (lead.get("assignment") or {}).get("rep_id", ""), lead["id"])

    capacity = await closed_loop(http, send, mode.capacity_clients, mode.capacity_s)
    result = await open_loop(http, send, mode.rate, mode.load_s)
    created = [s for s in result.ok if s.payload[0] == 201]
    attached = [s for s in result.ok if s.payload[0] == 200]
    per_rep = Counter(s.payload[1] or "(fallback queue)" for s in created)
    errors = [str(s.payload)[:200] for s in result.samples if not s.ok][:3]
    return {
        "rate_per_s": mode.rate,
        "window_s": mode.load_s,
        **result.summary(),
        "assignment_201": latency_summary([s.latency_ms for s in created]),
        "duplicate_200": latency_summary([s.latency_ms for s in attached]),
        "new_leads_per_rep": dict(sorted(per_rep.items())),
        "capacity_closed_loop": {"clients": mode.capacity_clients, **capacity.summary()},
        "generator_max_lag_ms": round(result.max_lag_ms, 1),
        "first_errors": errors,
    }


async def bench(mode: Mode) -> dict[str, Any]:
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "mode": mode.name,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": asdict(mode),
        "duplicate_check": [],
    }
    with tempfile.TemporaryDirectory(prefix="crm-bench-acq-") as tmp:
        stack = Stack(
            Path(tmp),
            Ports.free(),
            extra_env={"CRM_RATE_LIMIT_PER_MINUTE": "60000000", "CRM_RATE_LIMIT_BURST": "1000000"},
        )
        say("starting the stack")
        await stack.start()
        db = Database(stack.postgres.url("leads"), messaging, source="/crm/bench", pool_size=2)
        conn = await asyncpg.connect(stack.postgres.dsn("leads"))
        try:
            reps = [(r["id"], r["team_id"]) for r in await conn.fetch("SELECT id, team_id FROM reps ORDER BY id")]
            seeder = Seeder(conn, reps)
            await seeder.start()
            sizes = sorted(set(mode.sizes) | {mode.load_size})
            for size in sizes:
                say(f"growing leads to {size:,}")
                seconds = await seeder.grow_to(size)
                say(f"duplicate check at {size:,} existing leads ({mode.dup_samples} samples)")
                cost = await duplicate_check_cost(db, conn, size, mode.dup_samples)
                cost["seed_seconds"] = round(seconds, 1)
                result["duplicate_check"].append(cost)
                if size == mode.load_size:
                    say(f"capture at {mode.rate:g}/s for {mode.load_s:g} s with {size:,} existing leads")
                    pool = [1_000_000 + i for i in range(0, size, max(1, size // 5000))]
                    async with session(headers=stack.auth_headers("admin", ttl_seconds=3600)) as http:
                        result["capture"] = {"existing_leads": size, **await capture_at_rate(stack, http, mode, pool)}
                    seeder.rows = await conn.fetchval("SELECT count(*) FROM leads")
            exited = stack.exited()
            if exited:
                raise RuntimeError(f"stack processes exited during the bench: {exited}")
        finally:
            await conn.close()
            await db.dispose()
            say("stopping the stack")
            await stack.stop()
    checks = result["duplicate_check"]
    if len(checks) >= 2 and checks[0]["all"]["p50_ms"]:
        first, last = checks[0], checks[-1]
        result["growth"] = {
            "rows_factor": round(last["existing_leads"] / first["existing_leads"], 1),
            "p50_factor": round(last["all"]["p50_ms"] / first["all"]["p50_ms"], 2),
            "p99_factor": round(last["all"]["p99_ms"] / max(first["all"]["p99_ms"], 1e-9), 2),
        }
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        "| measurement | existing leads | n | p50 ms | p95 ms | p99 ms | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for check in result["duplicate_check"]:
        nodes = {n for p in check["plans"] for n in p.get("nodes", [])}
        seq = sorted(n for n in nodes if n.startswith("Seq Scan"))
        note = f"plans: {'; '.join(seq)}" if seq else "plans: index scans only" if nodes else "no SQL sent"
        for kind in ("phone", "email", "new_person"):
            s = check[kind]
            lines.append(
                f"| duplicate check: {kind} | {check['existing_leads']:,} | {s['n']} | {s['p50_ms']} | "
                f"{s['p95_ms']} | {s['p99_ms']} | {note} |"
            )
    capture = result.get("capture")
    if capture:
        for label, key in (("capture → routed (201)", "assignment_201"), ("capture → attached (200)", "duplicate_200")):
            s = capture[key]
            load = f"{capture['rate_per_s']:g}/s, {capture['window_s']:g} s"
            lines.append(
                f"| {label} at {load} | {capture['existing_leads']:,} | "
                f"{s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | errors {capture['errors']}, "
                f"achieved {capture['throughput_per_s']}/s |"
            )
    growth = result.get("growth")
    if growth:
        lines.append(
            f"\nDuplicate check: {growth['rows_factor']}× the rows → {growth['p50_factor']}× the p50, "
            f"{growth['p99_factor']}× the p99."
        )
    if capture:
        cap = capture["capacity_closed_loop"]
        lines.append(
            f"Capacity first (closed loop, {cap['clients']} clients): {cap['throughput_per_s']} captures/s, "
            f"p50 {cap['p50_ms']} ms, p99 {cap['p99_ms']} ms, errors {cap['errors']}."
        )
        lines.append(f"New leads per rep: {capture['new_leads_per_rep']}")
    return "\n".join(lines)


def write(result: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"acquisition-{datetime.now(UTC):%Y-%m-%d}-{result['commit']}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    return out


async def amain(mode: Mode, results_dir: Path) -> Path:
    result = await bench(mode)
    out = write(result, results_dir)
    print(table(result))
    print(f"\nwritten to {out}")
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="seconds instead of minutes (the smoke test)")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    mode = MODES["tiny" if args.tiny else "short"]
    try:
        import uvloop
    except ImportError:
        return asyncio.run(amain(mode, args.results_dir))
    return uvloop.run(amain(mode, args.results_dir))


if __name__ == "__main__":
    main()
