"""`make bench-support`: the service desk's ticket lists, board and SLA scan at scale (issue 18's measure).

An embedded PostgreSQL (the one `make run` starts) with the support service's schema and its seeded
queues, categories, SLA policy v1 and calendars, grown to each size (default 100k and 500k tickets)
with COPY. The rows are what `commands.open_ticket` and the status changes would have written:
the policy's targets per priority, category and tier (`domain.target_for`), the Israeli calendar,
a history row per status change; 50 agents in the three queues, two service teams, 200k customers.
About 80 % of tickets are resolved or closed (created over the last 180 days) and 20 % are open
(new, open, pending the customer; their age is exponential with a mean of 4 days, since a backlog
is mostly recent). Each open ticket's SLA columns (`sla_check_at`, `at_risk`, `escalations`) are
computed by the service's own `clocks.ticket_clocks` as of an instant OUTAGE_HOURS before the seed,
as if the scan had run until then and stopped.

At each size, through the service's own functions, each call in its own unit of work:

- **lists**: `queries.list_tickets` + `grpc_api.tickets_to_proto` (every listed ticket's SLA clocks)
  for an agent's open queue, a manager's team view, the team's at-risk view, a customer's tickets
  as an agent sees them, and the agent queue's second page (page token); the SQL of the first call
  of each is captured and EXPLAINed (ANALYZE);
- **board**: the service has no per-queue × status count; `scan._gauges` (open and at-risk tickets
  per queue, what the dashboards' backlog shows) is the same shape, and `queries.open_by_member`
  (ListQueues' load per agent, and the SLA scan's reassignment) is measured next to it;
- **clocks**: `clocks.ticket_clocks` alone, µs per call, for open and for resolved tickets;
- **scan**: `scan.scan(db)` end to end with every open ticket due (after an outage), again at once
  (nothing due: the idle pass) and with 1 % due.

Writes `bench/results/support-<date>-<commit>.json` and prints Markdown tables. Figures are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import asyncpg  # noqa: E402
from loadgen import latency_summary, plan_nodes  # noqa: E402
from service_db import header, service_database  # noqa: E402
from sqlalchemy import event  # noqa: E402

from crm_kit.db import Database  # noqa: E402
from crm_kit.protoconv import encode_page_token, page_position  # noqa: E402
from crm_support import clocks, domain, queries, scan  # noqa: E402
from crm_support.db import messaging, tickets  # noqa: E402
from crm_support.grpc_api import tickets_to_proto  # noqa: E402
from crm_support.main import MIGRATIONS_DIR  # noqa: E402
from crm_support.seed import CATEGORIES, SLA_POLICY_V1, shipped_calendars  # noqa: E402
from crm_support.sla.calendar import calendar_from_dict  # noqa: E402
from crm_support.sla.clock import business_seconds  # noqa: E402

AGENTS = [f"agent-{i:02d}" for i in range(50)]
# Queue → (team, members): agents overlap between queues, as on a real desk.
QUEUE_STAFF = {
    "general": ("team-service", AGENTS[0:30]),
    "complaints": ("team-care", AGENTS[20:40]),
    "billing": ("team-care", AGENTS[35:50]),
}
TEAMS = sorted({team for team, _ in QUEUE_STAFF.values()})
CUSTOMERS = 200_000
OPEN = [s.value for s in domain.OPEN_STATUSES]
# The scan is seeded as if it last ran this long before the seed (the "outage" of the all-due case).
OUTAGE_HOURS = 4
PAGE = 50
LIST_KINDS = ("agent_queue", "team_view", "at_risk", "customer", "second_page")
SUBJECTS = ("ההזמנה לא הגיעה", "המוצר הגיע פגום", "سفارش من نرسید", "חיוב כפול בכרטיס", "درخواست بازپرداخت")
_BY_CATEGORY = {c["id"]: c for c in CATEGORIES}


def category_path(category_id: str) -> list[str]:
    path = [category_id]
    while (parent := _BY_CATEGORY[path[-1]]["parent_id"]) is not None:
        path.append(parent)
    return path


@dataclass
class Life:
    """A ticket's status changes (at, status) from its creation, and the instants they imply."""

    history: list[tuple[datetime, str]]
    first_response: datetime | None
    resolved: datetime | None
    closed: datetime | None
    awaiting: datetime | None


def lifecycle(rng: random.Random, created: datetime, status: str, as_of: datetime) -> Life:
    """The way a ticket reached `status`: new, a first answer (open), maybe a wait for the customer
    and back, then resolved and closed; an open ticket's customer may have written again."""
    history = [(created, "new")]
    if status == "new":
        return Life(history, None, None, None, None)
    first_response = created + timedelta(minutes=rng.uniform(5, 600))
    history.append((first_response, "open"))
    resolved = closed = awaiting = None
    if status == "pending_customer" or (status in ("resolved", "closed") and rng.random() < 0.3):
        history.append((first_response + timedelta(hours=rng.uniform(1, 30)), "pending_customer"))
        if status != "pending_customer":
            history.append((history[-1][0] + timedelta(hours=rng.uniform(1, 48)), "open"))
    if status in ("resolved", "closed"):
        resolved = history[-1][0] + timedelta(hours=rng.uniform(1, 72))
        history.append((resolved, "resolved"))
    if status == "closed":
        closed = history[-1][0] + timedelta(days=rng.uniform(1, 7))
        history.append((closed, "closed"))
    if status == "open" and rng.random() < 0.3:
        # The customer wrote again after the first answer: the next-response clock runs.
        awaiting = min(as_of, first_response + timedelta(hours=rng.uniform(1, 48)))
    return Life(history, first_response, resolved, closed, awaiting)


@dataclass
class Desk:
    """The tickets table and its history, grown with COPY; SLA columns from the service's clocks."""

    conn: asyncpg.Connection
    rng: random.Random = field(default_factory=lambda: random.Random(18))
    rows: int = 0
    customers_sample: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.calendar = calendar_from_dict(shipped_calendars()["IL"])
        self.policy = SimpleNamespace(**SLA_POLICY_V1)
        self.targets = [
            domain.Target(
                metric=domain.Metric(t["metric"]),
                priority=domain.Priority(t["priority"]),
                category_id=t["category_id"],
                customer_tier=t["customer_tier"],
                minutes=t["target_minutes"],
            )
            for t in SLA_POLICY_V1["targets"]
        ]
        self._sla_targets: dict[tuple[str, str, str], dict[str, int]] = {}

    def sla_targets(self, priority: str, category_id: str, tier: str) -> dict[str, int]:
        """What open_ticket stores: {metric: seconds} of the most specific target."""
        key = (priority, category_id, tier)
        if key not in self._sla_targets:
            path = category_path(category_id)
            self._sla_targets[key] = {
                m.value: minutes * 60
                for m in domain.Metric
                if (minutes := domain.target_for(self.targets, m, domain.Priority(priority), path, tier)) is not None
            }
        return self._sla_targets[key]

    def _sla_columns(
        self, targets: dict[str, int], life: Life, as_of: datetime
    ) -> tuple[Life, dict[str, int], datetime | None, bool]:
        """An open ticket as the scan last saw it at `as_of` (only what had happened by then), with
        the SLA columns the service would have written: escalations announced, next check, at risk."""
        history = [h for h in life.history if h[0] <= as_of]
        status = history[-1][1]
        awaiting = life.awaiting
        if awaiting is not None and (status != "open" or awaiting < history[-1][0]):
            awaiting = None
        seen = Life(history, None if status == "new" else life.first_response, None, None, awaiting)
        row = SimpleNamespace(
            sla_targets=targets,
            first_response_at=seen.first_response,
            resolved_at=None,
            status=status,
            awaiting_reply_since=awaiting,
            next_responses=[],
        )
        found = clocks.ticket_clocks(row, history, self.calendar, self.policy, as_of)
        escalations = {scan.escalation_key(c, row): c.level for c in found if c.level and c.met_at is None}
        return seen, escalations, clocks.check_at(found), clocks.at_risk(found)

    def _ticket(self, n: int, now: datetime, as_of: datetime) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        rng = self.rng
        ticket_id = str(uuid.UUID(int=(18 << 96) + n))
        category = rng.choice(CATEGORIES)
        queue_id = category["queue_id"]
        assignee = rng.choice(QUEUE_STAFF[queue_id][1])
        customer_id = str(uuid.UUID(int=(1 << 64) + rng.randrange(CUSTOMERS)))
        priority = rng.choices(("low", "normal", "high", "urgent"), (15, 60, 20, 5))[0]
        tier = rng.choices(("standard", "gold", "vip"), (85, 10, 5))[0]
        kind = rng.choice(("complaint", "question", "return", "repair", "billing"))
        channel = rng.choice(("phone", "email", "sms", "web_form", "walk_in"))
        targets = self.sla_targets(priority, category["id"], tier)
        is_open = rng.random() < 0.2
        if is_open:
            # A backlog is mostly recent; it is measured as of `as_of` (the scan's last run).
            created = as_of - timedelta(seconds=min(rng.expovariate(1 / (4 * 86400)), 179 * 86400))
            status = rng.choices(("new", "open", "pending_customer"), (25, 55, 20))[0]
        else:
            created = now - timedelta(seconds=rng.uniform(14 * 86400, 180 * 86400))
            status = rng.choices(("resolved", "closed"), (30, 70))[0]
        life = lifecycle(rng, created, status, as_of)
        escalations: dict[str, int] = {}
        check_at, at_risk = None, False
        if is_open:
            life, escalations, check_at, at_risk = self._sla_columns(targets, life, as_of)
        history, status = life.history, life.history[-1][1]
        first_response, resolved, closed, awaiting = life.first_response, life.resolved, life.closed, life.awaiting
        updated = history[-1][0]
        record = (
            ticket_id,
            customer_id,
            kind,
            channel,
            priority,
            category["id"],
            rng.choice(SUBJECTS),
            status,
            queue_id,
            assignee,
            tier,
            1,
            "IL",
            json.dumps(targets),
            first_response,
            awaiting,
            resolved,
            closed,
            json.dumps(escalations),
            check_at,
            at_risk,
            "bench",
            created,
            updated,
        )
        return record, [(ticket_id, seq, s, at, "", "bench") for seq, (at, s) in enumerate(history, start=1)]

    async def grow_to(self, size: int) -> dict[str, float]:
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        as_of = now - timedelta(hours=OUTAGE_HOURS)
        while self.rows < size:
            batch = min(50_000, size - self.rows)
            records: list[tuple[Any, ...]] = []
            history: list[tuple[Any, ...]] = []
            for i in range(batch):
                record, changes = self._ticket(self.rows + i, now, as_of)
                records.append(record)
                history += changes
                if (self.rows + i) % 97 == 0:
                    self.customers_sample.append(record[1])
            await self.conn.copy_records_to_table(
                "tickets",
                records=records,
                columns=[
                    "id",
                    "customer_id",
                    "kind",
                    "channel",
                    "priority",
                    "category_id",
                    "subject",
                    "status",
                    "queue_id",
                    "assignee_id",
                    "customer_tier",
                    "sla_policy_version",
                    "calendar_code",
                    "sla_targets",
                    "first_response_at",
                    "awaiting_reply_since",
                    "resolved_at",
                    "closed_at",
                    "escalations",
                    "sla_check_at",
                    "at_risk",
                    "created_by",
                    "created_at",
                    "updated_at",
                ],
            )
            await self.conn.copy_records_to_table(
                "ticket_history", records=history, columns=["ticket_id", "seq", "status", "at", "note", "actor"]
            )
            self.rows += batch
        seed_s = time.perf_counter() - t0
        await self.conn.execute("VACUUM ANALYZE tickets")
        await self.conn.execute("VACUUM ANALYZE ticket_history")
        return {"seed_s": round(seed_s, 1), "vacuum_analyze_s": round(time.perf_counter() - t0 - seed_s, 1)}


async def staff_queues(conn: asyncpg.Connection) -> None:
    """Members and teams the administrator would have set (the seed ships queues without people)."""
    for queue_id, (team, members) in QUEUE_STAFF.items():
        await conn.execute("UPDATE queues SET team_id = $1, member_ids = $2 WHERE id = $3", team, members, queue_id)


class StatementLog:
    """The SQL the service sends while listening (SQLAlchemy's asyncpg dialect: $n placeholders)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements: list[tuple[str, Any]] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        self.statements.append((statement, parameters))

    def __enter__(self) -> StatementLog:
        event.listen(self.db.engine.sync_engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.db.engine.sync_engine, "before_cursor_execute", self._record)


async def explain(conn: asyncpg.Connection, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Each SELECT's executed plan: its node types and PostgreSQL's own execution time."""
    plans: list[dict[str, Any]] = []
    for statement, parameters in statements:
        if not statement.lstrip().upper().startswith("SELECT"):
            continue
        raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, *list(parameters or ()))
        found = json.loads(raw)[0]
        plans.append(
            {
                # From FROM on: the select list is the table's every column.
                "sql": " ".join(statement.split()).partition(" FROM ")[2][:240],
                "execution_ms": round(found["Execution Time"], 2),
                "nodes": plan_nodes(found["Plan"]),
            }
        )
    return plans


@dataclass
class ListCall:
    reach: queries.Reach
    statuses: list[str] = field(default_factory=list)
    customer_id: str = ""
    at_risk: bool = False
    after: tuple[Any, ...] | None = None


async def list_once(db: Database, call: ListCall) -> tuple[float, float, int, list[Any] | None]:
    """One ListTickets as the servicer runs it: (query ms, clocks + proto ms, rows, next position)."""
    t0 = time.perf_counter()
    async with db.unit_of_work() as uow:
        rows, next_key = await queries.list_tickets(
            uow,
            call.reach,
            limit=PAGE,
            after=call.after,
            statuses=call.statuses,
            queue_id="",
            assignee_id="",
            customer_id=call.customer_id,
            priority="",
            at_risk=call.at_risk,
        )
        t1 = time.perf_counter()
        await tickets_to_proto(uow, rows)
    t2 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t1) * 1000, len(rows), next_key


async def measure_lists(
    db: Database, conn: asyncpg.Connection, samples: int, customers: list[str]
) -> dict[str, dict[str, Any]]:
    rng = random.Random(samples)
    second_pages: dict[str, tuple[Any, ...] | None] = {}
    for agent in AGENTS:
        *_, next_key = await list_once(db, ListCall(queries.Reach(agent_id=agent), statuses=OPEN))
        # The token the client got, read back the way ListTickets reads it.
        token = encode_page_token(*next_key) if next_key else ""
        second_pages[agent] = page_position(token, datetime.fromisoformat, str)

    def make(kind: str) -> ListCall:
        agent, team = rng.choice(AGENTS), rng.choice(TEAMS)
        if kind == "agent_queue":
            return ListCall(queries.Reach(agent_id=agent), statuses=OPEN)
        if kind == "team_view":
            return ListCall(queries.Reach(team_id=team))
        if kind == "at_risk":
            return ListCall(queries.Reach(team_id=team), at_risk=True)
        if kind == "customer":
            return ListCall(queries.Reach(agent_id=agent), customer_id=rng.choice(customers))
        return ListCall(queries.Reach(agent_id=agent), statuses=OPEN, after=second_pages[agent])

    out: dict[str, dict[str, Any]] = {}
    for kind in LIST_KINDS:
        total: list[float] = []
        query_ms: list[float] = []
        proto_ms: list[float] = []
        listed: list[int] = []
        plans: list[dict[str, Any]] = []
        for i in range(samples):
            call = make(kind)
            if i == 0:
                with StatementLog(db) as log:
                    q, p, n, _ = await list_once(db, call)
                plans = await explain(conn, log.statements)
            else:
                q, p, n, _ = await list_once(db, call)
            total.append(q + p)
            query_ms.append(q)
            proto_ms.append(p)
            listed.append(n)
        out[kind] = {
            **latency_summary(total),
            "query": latency_summary(query_ms),
            "clocks_and_proto": latency_summary(proto_ms),
            "rows_mean": round(sum(listed) / len(listed), 1),
            "empty_pages": sum(1 for n in listed if n == 0),
            "plans": plans,
        }
    return out


async def timed(samples: int, call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    values: list[float] = []
    for _ in range(samples):
        t0 = time.perf_counter()
        await call()
        values.append((time.perf_counter() - t0) * 1000)
    return latency_summary(values)


async def measure_board(db: Database, conn: asyncpg.Connection, samples: int) -> dict[str, Any]:
    async def by_member() -> None:
        async with db.unit_of_work() as uow:
            await queries.open_by_member(uow, "general")

    with StatementLog(db) as log:
        await scan._gauges(db)
    gauges_plans = await explain(conn, log.statements)
    with StatementLog(db) as log:
        await by_member()
    member_plans = await explain(conn, log.statements)
    return {
        "what": "scan._gauges (open and at-risk per queue; the service has no queue x status board query)",
        "gauges": {**await timed(samples, lambda: scan._gauges(db)), "plans": gauges_plans},
        "open_by_member_queue": {**await timed(samples, by_member), "plans": member_plans},
    }


async def measure_clocks(db: Database, conn: asyncpg.Connection, repeat: int) -> dict[str, Any]:
    """`clocks.ticket_clocks` alone over real rows (a thousand open and a thousand resolved)."""
    out: dict[str, Any] = {}
    now = datetime.now(UTC)
    for label, where in (("open", "status = ANY($1::text[])"), ("resolved", "NOT status = ANY($1::text[])")):
        async with db.unit_of_work() as uow:
            ids = [r["id"] for r in await conn.fetch(f"SELECT id FROM tickets WHERE {where} LIMIT 1000", OPEN)]
            rows = list((await uow.conn.execute(tickets.select().where(tickets.c.id.in_(ids)))).all())
            found = await queries.histories(uow, ids)
            cal = await clocks.calendar(uow, "IL")
            policy = await clocks.policy_version(uow, 1)
        calls = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(repeat):
            for r in rows:
                clocks.ticket_clocks(r, found[r.id], cal, policy, now)
                calls += 1
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out[label] = {
            "calls": calls,
            "us_per_call": round(wall / max(calls, 1) * 1e6, 1),
            "cpu_us_per_call": round(cpu / max(calls, 1) * 1e6, 1),
        }
    return out


async def scan_pass(db: Database, conn: asyncpg.Connection) -> dict[str, Any]:
    """One `scan.scan(db)`, with what it wrote: outbox events and reassigned tickets."""
    events_before = await conn.fetchval("SELECT count(*) FROM outbox")
    bumped_before = await conn.fetchval("SELECT coalesce(sum(row_version - 1), 0)::bigint FROM tickets")
    t0, c0 = time.perf_counter(), time.process_time()
    looked, raised = await scan.scan(db)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    events = await conn.fetchval("SELECT count(*) FROM outbox") - events_before
    bumped = await conn.fetchval("SELECT coalesce(sum(row_version - 1), 0)::bigint FROM tickets") - bumped_before
    return {
        "seconds": round(wall, 2),
        "bench_cpu_s": round(cpu, 2),
        "bench_cpu_share": round(cpu / wall, 2) if wall else 0.0,
        "looked_at": looked,
        "tickets_per_s": round(looked / wall) if wall else 0,
        "cpu_ms_per_ticket": round(cpu / looked * 1000, 3) if looked else None,
        "levels_raised": raised,
        "outbox_events": events,
        "reassigned": bumped,
    }


async def measure_scan(db: Database, conn: asyncpg.Connection, as_of: datetime) -> dict[str, Any]:
    open_now = await conn.fetchval("SELECT count(*) FROM tickets WHERE status = ANY($1::text[])", OPEN)
    cal = calendar_from_dict(shipped_calendars()["IL"])
    # Every open ticket due, as if the scan had stopped at the seed's `as_of` (an outage).
    await conn.execute("UPDATE tickets SET sla_check_at = $2 WHERE status = ANY($1::text[])", OPEN, as_of)
    await conn.execute("VACUUM ANALYZE tickets")
    all_due = await scan_pass(db, conn)
    idle = await scan_pass(db, conn)
    # About 1 % of the open tickets due now (their next check has just come).
    due = max(1, open_now // 100)
    await conn.execute(
        """UPDATE tickets SET sla_check_at = now() - interval '1 second'
           WHERE id IN (SELECT id FROM tickets WHERE status = ANY($1::text[]) ORDER BY random() LIMIT $2)""",
        OPEN,
        due,
    )
    one_percent = await scan_pass(db, conn)
    return {
        "open_tickets": open_now,
        "outage_business_s": business_seconds(cal, as_of, datetime.now(UTC)),
        "all_due": all_due,
        "idle": idle,
        "one_percent_due": {**one_percent, "made_due": due},
    }


async def run(sizes: list[int], samples: int, clock_repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with service_database("support", MIGRATIONS_DIR, messaging, source="/bench/support") as (db, conn):
        await staff_queues(conn)
        desk = Desk(conn)
        for size in sizes:
            grow = await desk.grow_to(size)
            as_of = datetime.now(UTC) - timedelta(hours=OUTAGE_HOURS)
            counts = await conn.fetchrow(
                """SELECT count(*) AS tickets, count(*) FILTER (WHERE status = ANY($1::text[])) AS open,
                          count(*) FILTER (WHERE at_risk) AS at_risk,
                          (SELECT count(*) FROM ticket_history) AS history
                   FROM tickets""",
                OPEN,
            )
            results[str(size)] = {
                **grow,
                "tickets": counts["tickets"],
                "open_tickets": counts["open"],
                "at_risk_tickets": counts["at_risk"],
                "history_rows": counts["history"],
                "lists": await measure_lists(db, conn, samples, list(desk.customers_sample)),
                "board": await measure_board(db, conn, max(20, samples // 5)),
                "clocks": await measure_clocks(db, conn, clock_repeat),
                "scan": await measure_scan(db, conn, as_of),
            }
    return {
        **header(),
        "samples_per_list": samples,
        "page_size": PAGE,
        "outage_hours": OUTAGE_HOURS,
        "sizes": results,
    }


def _scans(plans: list[dict[str, Any]]) -> str:
    return ", ".join(dict.fromkeys(n for p in plans for n in p["nodes"] if "Scan" in n))


def table(result: dict[str, Any]) -> str:
    lines = [
        "| tickets | call | p50 ms | p95 ms | p99 ms | query p50 | clocks+proto p50 | rows | plan |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, at in result["sizes"].items():
        for kind, f in at["lists"].items():
            lines.append(
                f"| {int(size):,} | {kind} | {f['p50_ms']} | {f['p95_ms']} | {f['p99_ms']} | {f['query']['p50_ms']} "
                f"| {f['clocks_and_proto']['p50_ms']} | {f['rows_mean']} | {_scans(f['plans'])} |"
            )
        for name in ("gauges", "open_by_member_queue"):
            f = at["board"][name]
            lines.append(
                f"| {int(size):,} | board: {name} | {f['p50_ms']} | {f['p95_ms']} | {f['p99_ms']} |  |  |  "
                f"| {_scans(f['plans'])} |"
            )
    lines += [
        "",
        "| tickets | open | scan | looked at | seconds | tickets/s | levels raised | events | reassigned | CPU share |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, at in result["sizes"].items():
        s = at["scan"]
        for name in ("all_due", "idle", "one_percent_due"):
            f = s[name]
            lines.append(
                f"| {int(size):,} | {s['open_tickets']:,} | {name} | {f['looked_at']:,} | {f['seconds']} "
                f"| {f['tickets_per_s']:,} | {f['levels_raised']:,} | {f['outbox_events']:,} | {f['reassigned']:,} "
                f"| {f['bench_cpu_share']} |"
            )
    lines += ["", "| tickets | ticket_clocks open µs | resolved µs |", "|---|---|---|"]
    for size, at in result["sizes"].items():
        c = at["clocks"]
        lines.append(f"| {int(size):,} | {c['open']['us_per_call']} | {c['resolved']['us_per_call']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100000,500000", help="comma-separated ticket counts")
    parser.add_argument("--samples", type=int, default=200, help="calls per list kind and size")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2k tickets, 20 calls per list")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    sizes, samples, repeat = [int(s) for s in args.sizes.split(",")], args.samples, 5
    if args.quick:
        sizes, samples, repeat = [2_000], 20, 1
    result = asyncio.run(run(sizes, samples, repeat))
    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"support-{datetime.now(UTC):%Y-%m-%d}-{result['commit']}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(table(result))
    print(f"\nwritten to {out}")
    return out


if __name__ == "__main__":
    main()
