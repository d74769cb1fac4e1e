"""The application scenarios, all driven through the gateway of a running ``Stack``.

- golden: one client at a time (the figures of the first bench: capture, capture → LeadAssigned
  consumed by reporting, ship → SMS);
- capture: ``POST /api/v1/leads`` closed loop at several concurrencies;
- pipeline: capture open loop at a fixed rate, end to end to reporting and customers, then a
  step-up to the highest rate whose end-to-end p99 stays under the limit;
- fulfilment: close won → order created, then ship at a fixed rate → SMS at the fake provider;
- read: customer timeline and source report under concurrency.

End-to-end times compare the client's wall clock at the (scheduled) send with a timestamp
written by the consuming service's transaction (``now()`` in PostgreSQL) or by the fake
provider: one machine, one clock.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import cpu
import nats
from loadgen import LoadResult, closed_loop, latency_summary, open_loop
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from people import People, Person

from crm.leads.v1 import events_pb2 as lead_events
from crm_devstack.stack import Stack

STREAM = "CRM"
LEAD_ASSIGNED = "crm.leads.lead_assigned"
ORDER_SHIPPED = "crm.orders.order_shipped"
ITEM = {
    "sku": "BENCH-1",
    "description": "bench item",
    "quantity": 1,
    "unit_price": {"amount_minor": 9900, "currency_code": "ILS"},
}


@dataclass
class Context:
    """What every scenario needs: the stack, one HTTP session, database connections, NATS."""

    stack: Stack
    http: aiohttp.ClientSession
    js: Any
    db: dict[str, asyncpg.Connection] = field(default_factory=dict)
    people: People = field(default_factory=People)

    @property
    def api(self) -> str:
        return f"{self.stack.gateway_url}/api/v1"

    def lead_body(self, person: Person | None = None) -> dict[str, Any]:
        """The next lead: a person from the realistic stream (``bench/people.py``: new, returning,
        look-alike), or ``person``."""
        person = person or self.people.next()
        return {
            "full_name": person.full_name,
            "phone_number": person.phone_number,
            "source": person.source,
            "locale": "fa-IR" if person.phone_number.startswith("09") else "he-IL",
            "request_id": str(uuid.uuid4()),
        }

    async def capture(self, http: aiohttp.ClientSession, _: int = 0) -> tuple[bool, Any]:
        """One capture of the next realistic person; payload (lead id, E.164 phone, created) on
        201 (a new lead) or 200 (a returning person: a touch on their lead)."""
        return await self._capture(http, self.lead_body(), {})

    async def capture_new(self, http: aiohttp.ClientSession, _: int = 0) -> tuple[bool, Any]:
        """One capture of a person never seen before (a lead to convert, a LeadAssigned to wait for)."""
        return await self._capture(http, self.lead_body(self.people.next_new()), {})

    async def capture_keyed(self, http: aiohttp.ClientSession, _: int = 0) -> tuple[bool, Any]:
        """One capture with an Idempotency-Key: the shared idempotency store's claim and answer."""
        return await self._capture(http, self.lead_body(), {"Idempotency-Key": str(uuid.uuid4())})

    async def _capture(
        self, http: aiohttp.ClientSession, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[bool, Any]:
        async with http.post(f"{self.api}/leads", json=body, headers=headers) as response:
            if response.status not in (200, 201):
                return False, f"{response.status} {(await response.text())[:200]}"
            lead = await response.json()
            return True, (lead["id"], lead["phone_number"], response.status == 201)


async def connect(stack: Stack, http: aiohttp.ClientSession) -> tuple[Context, Any]:
    nc = await nats.connect(stack.nats_url)
    ctx = Context(stack, http, nc.jetstream())
    for name in ("reporting", "customers", "orders", "notifications"):
        ctx.db[name] = await asyncpg.connect(stack.postgres.dsn(name))
    return ctx, nc


async def close(ctx: Context, nc: Any) -> None:
    for conn in ctx.db.values():
        await conn.close()
    await nc.close()


async def _poll(fetch: Any, wait_s: float = 30.0) -> Any:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        value = await fetch()
        if value:
            return value
        await asyncio.sleep(0.002)
    raise TimeoutError("bench step did not complete")


async def _until_complete(fetch: Any, expected: int, wait_s: float) -> list[Any]:
    """Rows from ``fetch`` once there are ``expected`` of them, or what there is at the timeout."""
    deadline = time.monotonic() + wait_s
    rows: list[Any] = await fetch()
    while len(rows) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        rows = await fetch()
    return rows


# ---------------------------------------------------------------- end-to-end lookups


async def stream_seq(ctx: Context) -> int:
    info = await ctx.js.stream_info(STREAM)
    return int(info.state.last_seq)


async def stream_messages(ctx: Context, subject: str, after_seq: int, expected: int, wait_s: float = 30.0) -> list[Any]:
    """The stream's messages on ``subject`` after ``after_seq`` (up to ``expected``), read by a
    throw-away consumer."""
    durable = f"bench-reader-{uuid.uuid4().hex[:12]}"
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=after_seq + 1,
        ack_policy=AckPolicy.NONE,
        filter_subject=subject,
    )
    psub = await ctx.js.pull_subscribe(subject, durable=durable, stream=STREAM, config=config)
    found: list[Any] = []
    deadline = time.monotonic() + wait_s
    try:
        while len(found) < expected and time.monotonic() < deadline:
            try:
                found += await psub.fetch(512, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
    finally:
        await psub.unsubscribe()
        await ctx.js.delete_consumer(STREAM, durable)
    return found


async def lead_assigned_event_ids(ctx: Context, after_seq: int, expected: int, wait_s: float = 30.0) -> dict[str, str]:
    """lead id → ce-id of its LeadAssigned, read from the stream after ``after_seq``."""
    found: dict[str, str] = {}
    for msg in await stream_messages(ctx, LEAD_ASSIGNED, after_seq, expected, wait_s):
        event = lead_events.LeadAssigned.FromString(msg.data)
        found.setdefault(event.lead_id, (msg.headers or {})["ce-id"])
    return found


def outbox_lags(msgs: list[Any]) -> list[float]:
    """Per event, ms from its ce-time (set when the unit of work recorded it, before the commit) to
    the moment JetStream stored it: the outbox's lag, commit and relay included."""
    lags: list[float] = []
    for msg in msgs:
        recorded = datetime.fromisoformat((msg.headers or {})["ce-time"].replace("Z", "+00:00"))
        lags.append((msg.metadata.timestamp - recorded).total_seconds() * 1000)
    return lags


async def reporting_latencies(ctx: Context, started: dict[str, float], after_seq: int, wait_s: float) -> list[float]:
    """Scheduled send → reporting's transaction that recorded the lead's LeadAssigned (ms)."""
    events = await lead_assigned_event_ids(ctx, after_seq, len(started), wait_s)
    by_event = {eid: started[lead] for lead, eid in events.items() if lead in started}

    async def fetch() -> list[Any]:
        return await ctx.db["reporting"].fetch(
            "SELECT event_id, extract(epoch FROM received_at)::float8 AS at FROM event_log WHERE event_id = ANY($1)",
            list(by_event),
        )

    rows = await _until_complete(fetch, len(by_event), wait_s)
    return [(r["at"] - by_event[r["event_id"]]) * 1000 for r in rows]


async def customer_latencies(ctx: Context, started: dict[str, float], wait_s: float) -> list[float]:
    """Scheduled send → customers linked the lead to a (new) customer (``customer_leads.linked_at``), ms."""

    async def fetch() -> list[Any]:
        return await ctx.db["customers"].fetch(
            "SELECT lead_id, extract(epoch FROM linked_at)::float8 AS at FROM customer_leads WHERE lead_id = ANY($1)",
            list(started),
        )

    rows = await _until_complete(fetch, len(started), wait_s)
    return [(r["at"] - started[r["lead_id"]]) * 1000 for r in rows]


async def database_activity(ctx: Context) -> dict[str, dict[str, int]]:
    """pg_stat_database's counters per service database (one server: read from any connection)."""
    rows = await ctx.db["reporting"].fetch(
        "SELECT datname, xact_commit AS commits, xact_rollback AS rollbacks,"
        " tup_inserted + tup_updated + tup_deleted AS rows_written, tup_returned AS rows_read"
        " FROM pg_stat_database WHERE datname IS NOT NULL AND datname NOT IN ('postgres', 'template0', 'template1')"
        " AND datname NOT LIKE 'bench%'"
    )
    return {r["datname"]: {k: int(r[k]) for k in ("commits", "rollbacks", "rows_written", "rows_read")} for r in rows}


async def backlog(ctx: Context) -> int:
    """Events the services' consumers have not yet acknowledged (pending + in flight)."""
    total = 0
    for info in await ctx.js.consumers_info(STREAM):
        if not info.name.startswith("bench-reader"):
            total += (info.num_pending or 0) + (info.num_ack_pending or 0)
    return total


async def wait_idle(ctx: Context, wait_s: float = 300) -> float:
    """Wait until every consumer caught up (so one scenario's backlog does not load the next); seconds waited."""
    t0 = time.monotonic()
    while True:
        if not await backlog(ctx) or time.monotonic() - t0 >= wait_s:
            break
        await asyncio.sleep(0.05)
    return round(time.monotonic() - t0, 2)


# ---------------------------------------------------------------- scenarios


async def warm_up(ctx: Context, n: int = 20) -> None:
    for _ in range(n):
        ok, detail = await ctx.capture_new(ctx.http)
        if not ok:
            raise RuntimeError(f"warm-up capture failed: {detail}")


async def capture(ctx: Context, concurrencies: list[int], duration_s: float, *, keyed: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    send = ctx.capture_keyed if keyed else ctx.capture
    for clients in concurrencies:
        await wait_idle(ctx)
        cpu_before, db_before = cpu.snapshot(ctx.stack), await database_activity(ctx)
        load = await closed_loop(ctx.http, send, clients, duration_s)
        events_behind = await backlog(ctx)
        catch_up_s = await wait_idle(ctx)
        cpu_after = cpu.snapshot(ctx.stack)
        await asyncio.sleep(1.1)  # backends report their counters at most once a second
        db_after = await database_activity(ctx)
        kinds = Counter("new" if s.payload[2] else "touch" for s in load.ok)
        results[f"c{clients}"] = {
            "clients": clients,
            **load.summary(),
            "error_samples": _errors(load),
            "new_leads": kinds["new"],
            "touches": kinds["touch"],
            # Events the consumers still owed when the load stopped, and how long they took to catch up.
            "consumer_backlog_at_end": events_behind,
            "consumer_catch_up_s": catch_up_s,
            # Every process' CPU from the first request until every consumer caught up, per capture.
            "cpu_per_lead": cpu.per_item(cpu_before, cpu_after, len(load.ok)),
            # Per database, the same window: commits and rows written per capture.
            "database_per_lead": {
                name: {k: round((after[k] - db_before[name][k]) / max(1, len(load.ok)), 2) for k in after}
                for name, after in db_after.items()
                if after["commits"] > db_before[name]["commits"]
            },
        }
    return results


async def pipeline_at(ctx: Context, rate: float, duration_s: float, drain_s: float) -> dict[str, Any]:
    """Open-loop capture at ``rate``; HTTP latency and end to end to reporting and customers."""
    await wait_idle(ctx)
    seq = await stream_seq(ctx)
    load = await open_loop(ctx.http, ctx.capture, rate, duration_s)
    # End to end is measured for new leads (a returning person's touch assigns no one).
    started = {s.payload[0]: s.started_wall for s in load.ok if s.payload[2]}
    reporting = await reporting_latencies(ctx, started, seq, drain_s)
    customers = await customer_latencies(ctx, started, drain_s)
    return {
        "rate_per_s": rate,
        "http": {**load.summary(), "loadgen_max_lag_ms": round(load.max_lag_ms, 2), "error_samples": _errors(load)},
        "e2e_reporting": {**latency_summary(reporting), "lost": len(started) - len(reporting)},
        "e2e_customers": {**latency_summary(customers), "lost": len(started) - len(customers)},
    }


def _sustained(step: dict[str, Any], p99_limit_ms: float) -> bool:
    http, e2e = step["http"], step["e2e_reporting"]
    return (
        http["errors"] == 0
        and e2e["lost"] == 0
        and e2e["n"] > 0
        and e2e["p99_ms"] < p99_limit_ms
        and http["throughput_per_s"] >= 0.95 * step["rate_per_s"]
    )


async def pipeline(
    ctx: Context, rate: float, duration_s: float, steps: list[float], step_s: float, p99_limit_ms: float
) -> dict[str, Any]:
    fixed = await pipeline_at(ctx, rate, duration_s, drain_s=60)
    ladder: list[dict[str, Any]] = []
    best = 0.0
    for step_rate in steps:
        step = await pipeline_at(ctx, step_rate, step_s, drain_s=60)
        step["sustained"] = _sustained(step, p99_limit_ms)
        ladder.append(step)
        if not step["sustained"]:
            break
        best = step_rate
    return {
        "fixed": fixed,
        "max_sustained": {"rate_per_s": best, "p99_limit_ms": p99_limit_ms, "step_s": step_s, "steps": ladder},
    }


async def prepare_orders(ctx: Context, count: int, clients: int = 8) -> dict[str, Any]:
    """Capture, convert and close won ``count`` leads; wait for their orders. Close → order created (ms)."""
    prepared: list[dict[str, Any]] = []
    queue = list(range(count))

    async def one() -> None:
        while queue:
            queue.pop()
            ok, lead = await ctx.capture_new(ctx.http)
            if not ok:
                raise RuntimeError(f"capture failed while preparing orders: {lead}")
            lead_id, phone, _ = lead
            async with ctx.http.post(f"{ctx.api}/leads/{lead_id}/convert", json={}) as response:
                deal_id = (await response.json())["id"]
            closed_at = time.time()
            body = {"outcome": "won", "items": [ITEM]}
            async with ctx.http.post(f"{ctx.api}/deals/{deal_id}/close", json=body) as response:
                if response.status != 200:
                    raise RuntimeError(f"close failed: {response.status} {await response.text()}")
            prepared.append({"lead_id": lead_id, "phone": phone, "deal_id": deal_id, "closed_at": closed_at})

    await asyncio.gather(*(one() for _ in range(clients)))
    deals = {p["deal_id"]: p for p in prepared}

    async def fetch() -> list[Any]:
        return await ctx.db["orders"].fetch(
            "SELECT id, deal_id, extract(epoch FROM created_at)::float8 AS at FROM orders WHERE deal_id = ANY($1)",
            list(deals),
        )

    rows = await _until_complete(fetch, len(deals), 60)
    created: list[float] = []
    for row in rows:
        deals[row["deal_id"]]["order_id"] = row["id"]
        created.append((row["at"] - deals[row["deal_id"]]["closed_at"]) * 1000)
    return {"orders": [p for p in prepared if "order_id" in p], "close_to_order_created": latency_summary(created)}


async def sms_latencies(ctx: Context, started_by_phone: dict[str, float], wait_s: float = 60) -> list[float]:
    """Scheduled ship → the fake provider's ``received_at`` of that customer's SMS (ms)."""

    async def fetch() -> list[Any]:
        async with ctx.http.get(f"{ctx.stack.sms_url}/messages") as response:
            messages = await response.json()
        return [m for m in messages if m["to"] in started_by_phone]

    messages = await _until_complete(fetch, len(started_by_phone), wait_s)
    first: dict[str, float] = {}
    for m in messages:
        first.setdefault(m["to"], datetime.fromisoformat(m["received_at"]).timestamp())
    return [(at - started_by_phone[phone]) * 1000 for phone, at in first.items()]


def _ship_sender(ctx: Context, orders: list[dict[str, Any]]) -> Any:
    eta = (date.today() + timedelta(days=3)).isoformat()

    async def ship(http: aiohttp.ClientSession, i: int) -> tuple[bool, Any]:
        order = orders[i]
        body = {"carrier": "UPS", "tracking_number": f"BENCH{uuid.uuid4().hex[:10]}", "estimated_delivery_date": eta}
        async with http.post(f"{ctx.api}/orders/{order['order_id']}/ship", json=body) as response:
            await response.read()
            return response.status == 200, order["phone"]

    return ship


async def fulfilment(
    ctx: Context, rate: float, duration_s: float, before_load: Callable[[], Awaitable[None]] | None = None
) -> dict[str, Any]:
    """Ship prepared orders open loop at ``rate``; ship → SMS and CPU per ship. ``before_load`` is
    awaited once the orders are ready (the profiler starts there)."""
    count = max(1, round(rate * duration_s))
    await wait_idle(ctx)
    prepared = await prepare_orders(ctx, count)
    orders = prepared["orders"]
    await wait_idle(ctx)
    after_seq = await stream_seq(ctx)
    if before_load is not None:
        await before_load()
    cpu_before = cpu.snapshot(ctx.stack)
    load = await open_loop(ctx.http, _ship_sender(ctx, orders), rate, len(orders) / rate)
    sms = await sms_latencies(ctx, {s.payload: s.started_wall for s in load.ok})
    await wait_idle(ctx)
    cpu_after = cpu.snapshot(ctx.stack)
    shipped_events = await stream_messages(ctx, ORDER_SHIPPED, after_seq, len(load.ok))
    # Where ship → SMS goes: ship → notifications recorded its intent (consumed, contact read).
    started_by_order = {orders[s.index]["order_id"]: s.started_wall for s in load.ok}
    intents = await ctx.db["notifications"].fetch(
        "SELECT order_id, extract(epoch FROM created_at)::float8 AS at FROM messages WHERE order_id = ANY($1)",
        list(started_by_order),
    )
    to_intent = [(r["at"] - started_by_order[r["order_id"]]) * 1000 for r in intents]
    return {
        "rate_per_s": rate,
        "orders": len(orders),
        "close_to_order_created": prepared["close_to_order_created"],
        "ship_http": {**load.summary(), "error_samples": _errors(load)},
        "outbox_lag_order_shipped": latency_summary(outbox_lags(shipped_events)),
        "ship_to_sms": {**latency_summary(sms), "lost": len(load.ok) - len(sms)},
        "ship_to_intent_recorded": latency_summary(to_intent),
        # Every process' CPU from the first ship until every SMS arrived and the consumers caught up.
        "cpu_per_ship": cpu.per_item(cpu_before, cpu_after, len(load.ok)),
    }


async def read(ctx: Context, clients: int, duration_s: float) -> dict[str, Any]:
    await wait_idle(ctx)
    rows = await ctx.db["customers"].fetch("SELECT DISTINCT customer_id FROM timeline LIMIT 2000")
    customer_ids = [r["customer_id"] for r in rows]
    if not customer_ids:
        raise RuntimeError("no customers with a timeline to read (run capture/fulfilment first)")

    async def timeline(http: aiohttp.ClientSession, _: int) -> tuple[bool, Any]:
        async with http.get(f"{ctx.api}/customers/{random.choice(customer_ids)}/timeline") as response:
            await response.read()
            return response.status == 200, None

    async def sources(http: aiohttp.ClientSession, _: int) -> tuple[bool, Any]:
        async with http.get(f"{ctx.api}/reports/sources") as response:
            await response.read()
            return response.status == 200, None

    results: dict[str, Any] = {}
    for name, send in (("timeline", timeline), ("sources", sources)):
        load = await closed_loop(ctx.http, send, clients, duration_s)
        results[name] = {"clients": clients, **load.summary()}
    return results


async def golden(ctx: Context, n_capture: int, n_ship: int) -> dict[str, Any]:
    """One client, one request at a time: the first bench's three figures, measured the same way."""
    await wait_idle(ctx)
    capture_ms: list[float] = []
    consumed_ms: list[float] = []
    for _ in range(n_capture):
        started = time.time()
        t0 = time.perf_counter()
        ok, lead = await ctx.capture_new(ctx.http)
        capture_ms.append((time.perf_counter() - t0) * 1000)
        if not ok:
            raise RuntimeError(f"golden capture failed: {lead}")
        assigned = await ctx.js.get_last_msg(STREAM, LEAD_ASSIGNED)
        event_id = dict(assigned.headers or {})["ce-id"]

        async def received(eid: str = event_id) -> Any:
            return await ctx.db["reporting"].fetchval(
                "SELECT extract(epoch FROM received_at)::float8 FROM event_log WHERE event_id = $1", eid
            )

        consumed_ms.append((await _poll(received) - started) * 1000)
    orders = (await prepare_orders(ctx, n_ship, clients=1))["orders"]
    await wait_idle(ctx)
    ship = _ship_sender(ctx, orders)
    ship_ms: list[float] = []
    for i, order in enumerate(orders):
        started = time.time()
        ok, phone = await ship(ctx.http, i)
        if not ok:
            raise RuntimeError(f"golden ship failed for order {order['order_id']}")
        ship_ms.extend(await sms_latencies(ctx, {phone: started}))
    return {
        "capture_http": latency_summary(capture_ms),
        "capture_to_lead_assigned_consumed": latency_summary(consumed_ms),
        "ship_to_sms_received": latency_summary(ship_ms),
    }


def _errors(load: LoadResult, keep: int = 3) -> list[str]:
    return [str(s.payload) for s in load.samples if not s.ok][:keep]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
