"""Chaos: thousands of leads through capture → convert → close won → ship while processes die.

The load driver (`load.py`) pushes every lead's whole journey through the gateway at a steady
rate. Meanwhile a seeded schedule SIGKILLs every backend service, the gateway, nats-server and
PostgreSQL at random moments (each once, plus a few extra service kills), restarting each after
a short random pause; services must come back by themselves after NATS or PostgreSQL returns.
Poison messages are injected on subjects that consumers listen to. When the load is done and the
system has drained, each service's database, the stream and the SMS provider must show every
effect exactly once: one order per won deal, one SMS per shipped order, every consumer's read
model holding each event once, empty outboxes, and dead letters only for the injected poison.

Replay a run with ``CRM_CHAOS_SEED=<seed>``; ``CRM_CHAOS_LEADS`` and ``CRM_CHAOS_RATE`` change
the size and the rate of the load (defaults: 2,000 leads at 20 journeys per second).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from nats.js import JetStreamContext

from crm_devstack.stack import (
    BACKEND_SERVICES,
    GATEWAY,
    NATS,
    POSTGRES,
    Stack,
    gateway_reaches_every_backend,
    grpc_serving,
)
from crm_kit.bus import consumer_subjects
from crm_kit.nats_access import CONSUMES, REPLAYS, durable_name

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]


def _sibling(name: str) -> Any:
    """Import tests/chaos/<name>.py (the suite is not a package; pytest runs with importlib mode)."""
    module_name = f"crm_chaos_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


load = _sibling("load")

LEADS = int(os.environ.get("CRM_CHAOS_LEADS", "2000"))
RATE = float(os.environ.get("CRM_CHAOS_RATE", "20"))
STREAM = "CRM"
# Every event a journey produces, once per lead (NotificationFailed: never, every SMS is sent).
EVENTS_PER_LEAD = {
    "crm.leads.lead_captured": "crm.leads.v1.LeadCaptured",
    "crm.leads.lead_assigned": "crm.leads.v1.LeadAssigned",
    "crm.leads.lead_converted": "crm.leads.v1.LeadConverted",
    "crm.sales.deal_closed": "crm.sales.v1.DealClosed",
    # The close moves the deal into its won stage (customers skips it: the close is deal_won).
    "crm.sales.deal_stage_changed": "crm.sales.v1.DealStageChanged",
    "crm.customers.customer_created": "crm.customers.v1.CustomerCreated",
    "crm.orders.order_created": "crm.orders.v1.OrderCreated",
    "crm.orders.order_shipped": "crm.orders.v1.OrderShipped",
    "crm.notifications.notification_sent": "crm.notifications.v1.NotificationSent",
}
TIMELINE_PER_CUSTOMER = Counter({"lead_captured": 1, "deal_won": 1, "order_shipped": 1, "sms_sent": 1})
EXTRA_SERVICE_KILLS = 2
POISONS = 3
DRAIN_TIMEOUT = 300.0


# ---------------------------------------------------------------------- chaos schedule


@dataclass
class ChaosEvent:
    target: str
    planned_at: float  # seconds after the load started
    killed_at: float = 0.0
    pause: float = 0.0
    restarted_in: float = 0.0  # from the restart until it was ready
    all_serving_in: float = 0.0  # from the kill until every service and the gateway were ready again


def plan_kills(rng: random.Random, load_seconds: float) -> list[ChaosEvent]:
    """Each service, the gateway, NATS and PostgreSQL once, plus a few extra service kills, in a
    seeded order, one per slot of the load window at a random moment in the slot's first half."""
    targets = [*BACKEND_SERVICES, GATEWAY, NATS, POSTGRES]
    targets += [rng.choice(BACKEND_SERVICES) for _ in range(EXTRA_SERVICE_KILLS)]
    rng.shuffle(targets)
    start, end = 0.08 * load_seconds, 0.92 * load_seconds
    slot = (end - start) / len(targets)
    events = []
    for i, target in enumerate(targets):
        at = start + i * slot + rng.uniform(0, slot / 2)
        pause = rng.uniform(1.0, 4.0) if target in (NATS, POSTGRES) else rng.uniform(0.2, 3.0)
        events.append(ChaosEvent(target=target, planned_at=round(at, 2), pause=round(pause, 2)))
    return events


async def all_serving(stack: Stack, timeout: float) -> float:  # noqa: ASYNC109
    """Seconds until every backend says SERVING and the gateway is ready; raises on timeout."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            serving = await asyncio.gather(*(grpc_serving(stack.grpc_address(s)) for s in BACKEND_SERVICES))
            gateway = await gateway_reaches_every_backend(http, stack.gateway_url)
            if all(serving) and gateway:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                down = [s for s, ok in zip(BACKEND_SERVICES, serving, strict=True) if not ok]
                raise AssertionError(f"not serving {timeout:.0f} s after the restart: {down}, gateway ready={gateway}")
            await asyncio.sleep(0.25)


def crashed(stack: Stack, seed: int) -> None:
    """Fail if a process the schedule did not kill has exited (a crash, e.g. after NATS or
    PostgreSQL came back): that is a bug to fix, never a process to restart here."""
    exited = stack.exited()
    if exited:
        tails = "\n".join(f"--- {name} (exit {code}):\n{_tail(stack.log_path(name))}" for name, code in exited.items())
        raise AssertionError(f"[seed {seed}] processes exited by themselves: {exited}\n{tails}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


async def run_chaos(stack: Stack, events: list[ChaosEvent], t0: float, seed: int) -> None:
    loop = asyncio.get_running_loop()
    for event in events:
        delay = t0 + event.planned_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        crashed(stack, seed)
        event.killed_at = round(loop.time() - t0, 2)
        print(f"[chaos] {event.killed_at:7.2f}s kill -9 {event.target} (back in {event.pause:.1f}s)", flush=True)
        await stack.kill_process(event.target)
        await asyncio.sleep(event.pause)
        restarting = loop.time()
        await stack.restart_process(event.target)
        event.restarted_in = round(loop.time() - restarting, 2)
        # Services restart nothing themselves: after NATS or PostgreSQL they must recover alone.
        event.all_serving_in = round(event.pause + event.restarted_in + await all_serving(stack, 120), 2)
        crashed(stack, seed)
        print(f"[chaos] {loop.time() - t0:7.2f}s {event.target} back; all serving again", flush=True)


# ---------------------------------------------------------------------- poison messages


@dataclass
class Poison:
    subject: str
    kind: str
    msg_id: str
    payload: bytes
    headers: dict[str, str]
    planned_at: float
    published: bool = False


def plan_poisons(rng: random.Random, seed: int, load_seconds: float) -> list[Poison]:
    """Unparseable bodies and wrongly typed events on subjects consumers listen to."""
    poisons = []
    for i, subject in enumerate(rng.sample(sorted(EVENTS_PER_LEAD), POISONS)):
        msg_id = f"chaos-poison-{seed}-{i}"
        kind = ("garbage body", "wrong ce-type", "no CloudEvents headers")[i % 3]
        # 0xff opens a field with wire type 7, which no protobuf parser accepts.
        payload = b"\xff\xff\xff" + rng.randbytes(rng.randrange(8, 64))
        headers = {"Nats-Msg-Id": msg_id}
        if kind != "no CloudEvents headers":
            ce_type = EVENTS_PER_LEAD[subject] if kind == "garbage body" else "crm.chaos.v1.Nonsense"
            headers |= {"ce-id": msg_id, "ce-type": ce_type, "ce-source": "/chaos", "ce-specversion": "1.0"}
        at = rng.uniform(0.05, 0.9) * load_seconds
        poisons.append(Poison(subject, kind, msg_id, payload, headers, round(at, 2)))
    return poisons


async def inject_poisons(nats_url: str, poisons: list[Poison], t0: float) -> None:
    async def quiet(_: Exception) -> None:
        return None

    loop = asyncio.get_running_loop()
    for poison in sorted(poisons, key=lambda p: p.planned_at):
        delay = t0 + poison.planned_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        deadline = loop.time() + 120
        while not poison.published:  # NATS may be down right now: retry until it takes it
            try:
                nc = await nats.connect(nats_url, connect_timeout=2, allow_reconnect=False, error_cb=quiet)
                try:
                    await nc.jetstream().publish(poison.subject, poison.payload, headers=poison.headers, timeout=5)
                    poison.published = True
                finally:
                    await nc.close()
            except Exception:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(1)
        print(f"[chaos] {loop.time() - t0:7.2f}s poison ({poison.kind}) on {poison.subject}", flush=True)


# ---------------------------------------------------------------------- reading the system


def dsn(stack: Stack, service: str) -> str:
    return stack.database_url(service).replace("postgresql+asyncpg://", "postgresql://", 1)


async def query(stack: Stack, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn(stack, service), timeout=10)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def consumers(js: JetStreamContext) -> dict[str, Any]:
    return {info.name: info for info in await js.consumers_info(STREAM)}


def logical_consumers(infos: Iterable[Any]) -> dict[str, str]:
    """Each event type's consumer (its inbox key) and subject, from the durables on the server:
    one per service and producer, carrying several subjects (replay durables left out)."""
    found = {}
    for info in infos:
        service = info.name.split("-", 1)[0]
        for subject in consumer_subjects(info):
            if f".{REPLAYS}." not in subject:
                found[durable_name(service, subject)] = subject
    return found


async def backlog(stack: Stack, js: JetStreamContext) -> dict[str, Any]:
    """What is still owed: outbox rows per service, undelivered or unacked messages per consumer,
    and a fingerprint of the effects (inbox rows, SMS) that must stop changing."""
    outbox = {s: (await query(stack, s, "select count(*) from outbox"))[0][0] for s in BACKEND_SERVICES}
    owed = {
        name: (info.num_pending or 0) + (info.num_ack_pending or 0)
        for name, info in (await consumers(js)).items()
        if (info.num_pending or 0) + (info.num_ack_pending or 0)
    }
    handled = {s: (await query(stack, s, "select count(*) from inbox"))[0][0] for s in BACKEND_SERVICES}
    async with httpx.AsyncClient(timeout=10) as http:
        sms = len((await http.get(f"{stack.sms_url}/messages")).json())
    return {"outbox": outbox, "owed": owed, "fingerprint": (tuple(handled.values()), sms)}


async def dead_letter_lines(stack: Stack) -> list[str]:
    lines = []
    for service in BACKEND_SERVICES:
        for r in await query(stack, service, "select consumer, subject, event_id, error from dead_letters"):
            lines.append(f"{service}/{r['consumer']} {r['subject']} {r['event_id']}: {r['error'][:200]}")
    return lines


async def wait_for_drain(stack: Stack, js: JetStreamContext, seed: int) -> float:
    started = time.monotonic()
    last: dict[str, Any] = {}
    stable = 0
    while True:
        now = await backlog(stack, js)
        quiet = not any(now["outbox"].values()) and not now["owed"]
        stable = stable + 1 if quiet and now["fingerprint"] == last.get("fingerprint") else 0
        if stable >= 3:
            return time.monotonic() - started
        if time.monotonic() - started > DRAIN_TIMEOUT:
            letters = await dead_letter_lines(stack)
            raise AssertionError(
                f"[seed {seed}] the system did not drain within {DRAIN_TIMEOUT:.0f} s: {now}; "
                f"dead letters: {letters[:20]}"
            )
        last = now
        await asyncio.sleep(1)


# ---------------------------------------------------------------------- the test


@dataclass
class Findings:
    seed: int
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.problems.append(message)

    def equal(self, what: str, actual: Any, expected: Any) -> None:
        if actual == expected:
            return
        if isinstance(actual, set | frozenset | Counter | dict) and isinstance(expected, type(actual)):
            self.problems.append(f"{what}: {_diff(actual, expected)}")
        else:
            self.problems.append(f"{what}: expected {_cut(expected)}, got {_cut(actual)}")


def _cut(value: Any, limit: int = 600) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def _diff(actual: Any, expected: Any) -> str:
    """Missing and unexpected keys (a few of each), and keys whose value differs."""
    if isinstance(actual, set | frozenset):
        actual, expected = dict.fromkeys(actual, True), dict.fromkeys(expected, True)
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    changed = [(k, expected[k], actual[k]) for k in expected if k in actual and actual[k] != expected[k]]
    return (
        f"{len(missing)} missing {_cut(missing[:5])}, {len(extra)} unexpected {_cut(extra[:5])}, "
        f"{len(changed)} differ (key, expected, got) {_cut(changed[:5])}"
    )


def _sample(items: Any, n: int = 5) -> list[Any]:
    return sorted(items)[:n]


async def test_exactly_once_under_chaos(chaos_seed: int, chaos_stack: Any) -> None:
    seed = chaos_seed
    rng = random.Random(seed)
    began = time.monotonic()
    load_seconds = LEADS / RATE
    kills = plan_kills(rng, load_seconds)
    poisons = plan_poisons(rng, seed, load_seconds)
    print(
        f"[chaos] seed {seed}: {LEADS} leads at {RATE:g}/s (~{load_seconds:.0f} s); kills "
        + ", ".join(f"{k.target}@{k.planned_at:.0f}s" for k in kills),
        flush=True,
    )

    async with chaos_stack() as stack:
        started_in = time.monotonic() - began
        driver = load.LoadDriver(stack.gateway_url, stack.auth_headers("admin"), seed=seed, total=LEADS, rate=RATE)
        t0 = asyncio.get_running_loop().time()
        await asyncio.gather(
            driver.run(), run_chaos(stack, kills, t0, seed), inject_poisons(stack.nats_url, poisons, t0)
        )
        load_done = time.monotonic()
        print(f"[chaos] load done in {driver.stats.seconds:.0f} s: {json.dumps(driver.stats.as_dict())}", flush=True)

        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            drained_in = await wait_for_drain(stack, js, seed)
            durables = logical_consumers((await consumers(js)).values())
            stream = await js.stream_info(STREAM, subjects_filter=">")
        finally:
            await nc.close()
        crashed(stack, seed)
        found = await verify(stack, seed, driver, durables, poisons)
        stream_subjects = dict(sorted((stream.state.subjects or {}).items()))

    summary = {
        "seed": seed,
        "leads": LEADS,
        "rate_per_s": RATE,
        "journeys_completed": driver.stats.completed,
        "journeys_given_up": len(driver.given_up),
        "load": driver.stats.as_dict(),
        "kills": [asdict(k) for k in kills],
        "kills_after_the_load": sum(k.killed_at > driver.stats.seconds for k in kills),
        "poisons": [{"subject": p.subject, "kind": p.kind, "at": p.planned_at} for p in poisons],
        "stream_messages": stream.state.messages,
        "stream_by_subject": stream_subjects,
        "deliveries_handled": found["handled"],
        "dead_letters": found["dead_letters"],
        "stack_start_s": round(started_in, 1),
        "drain_s": round(drained_in, 1),
        "load_to_drained_s": round(time.monotonic() - load_done + driver.stats.seconds, 1),
        "total_s": round(time.monotonic() - began, 1),
        "problems": found["findings"].problems,
    }
    print("[chaos] summary " + json.dumps(summary, ensure_ascii=False), flush=True)
    problems = found["findings"].problems
    assert not problems, f"[seed {seed}, replay with CRM_CHAOS_SEED={seed}] " + "\n".join(problems)


async def verify(
    stack: Stack, seed: int, driver: Any, durables: dict[str, str], poisons: list[Poison]
) -> dict[str, Any]:
    """Every effect exactly once, read straight from each service's database and the provider."""
    f = Findings(seed)
    journeys = driver.journeys
    n = len(journeys)
    f.equal("journeys given up", [(j.index, j.failure) for j in driver.given_up][:10], [])
    f.equal("journeys completed", driver.stats.completed, n)
    deal_ids = {j.deal_id for j in journeys if j.deal_id}
    order_ids = {j.order_id for j in journeys if j.order_id}
    await _verify_leads_and_deals(f, stack, journeys, deal_ids)
    await _verify_orders(f, stack, n, deal_ids, order_ids)
    await _verify_sms(f, stack, journeys, order_ids)
    await _verify_customers(f, stack, journeys)
    await _verify_reporting(f, stack, n)
    handled = await _verify_inboxes(f, stack, n, durables)
    dead = await _verify_outboxes_and_dead_letters(f, stack, durables, poisons)
    return {"findings": f, "handled": handled, "dead_letters": dead}


async def _verify_leads_and_deals(f: Findings, stack: Stack, journeys: list[Any], deal_ids: set[str]) -> None:
    """One lead per request id, one won deal per lead."""
    n = len(journeys)
    leads = await query(stack, "leads", "select id, request_id from leads")
    f.equal("leads captured", len(leads), n)
    f.equal("leads by request id", Counter(r["request_id"] for r in leads), Counter(j.request_id for j in journeys))
    deals = await query(stack, "sales", "select id, lead_id, status from deals")
    f.equal("deals", Counter(r["status"] for r in deals), Counter({"won": n}))
    f.equal("deals of the journeys", {r["id"] for r in deals}, deal_ids)


async def _verify_orders(f: Findings, stack: Stack, n: int, deal_ids: set[str], order_ids: set[str]) -> None:
    """Every won deal has exactly one order, and every order shipped."""
    orders = await query(stack, "orders", "select id, deal_id, lead_id, status from orders")
    per_deal = Counter(r["deal_id"] for r in orders)
    f.equal("won deals without an order", _sample(deal_ids - set(per_deal)), [])
    f.equal("deals with more than one order", _sample(d for d, c in per_deal.items() if c > 1), [])
    f.equal("orders of unknown deals", _sample(set(per_deal) - deal_ids), [])
    f.equal("orders by status", Counter(r["status"] for r in orders), Counter({"shipped": n}))
    f.equal("orders the driver shipped", {r["id"] for r in orders}, order_ids)


async def _verify_sms(f: Findings, stack: Stack, journeys: list[Any], order_ids: set[str]) -> None:
    """Notifications and the provider: every shipped order produced exactly one SMS."""
    n = len(journeys)
    messages = await query(stack, "notifications", "select order_id, recipient, status, idempotency_key from messages")
    f.equal("notification messages per order", Counter(Counter(r["order_id"] for r in messages).values()), {1: n})
    f.equal("notification messages by status", Counter(r["status"] for r in messages), Counter({"sent": n}))
    async with httpx.AsyncClient(timeout=30) as http:
        sms = (await http.get(f"{stack.sms_url}/messages")).json()
    per_phone = Counter(m["to"] for m in sms)
    expected_phones = {j.phone_e164 for j in journeys if j.shipped}
    f.equal("SMS per shipped order's phone", Counter(per_phone[p] for p in expected_phones), Counter({1: n}))
    f.equal("SMS to numbers no journey has", _sample(set(per_phone) - expected_phones), [])
    f.equal(
        "SMS idempotency keys",
        sorted(m["idempotency_key"] for m in sms),
        sorted(f"order-shipped:{o}" for o in order_ids),
    )


async def _verify_customers(f: Findings, stack: Stack, journeys: list[Any]) -> None:
    """One customer per lead (unique phones), a timeline of exactly its four touches."""
    n = len(journeys)
    links = await query(stack, "customers", "select lead_id, customer_id from customer_leads")
    f.equal("customers' leads", {r["lead_id"] for r in links}, {j.lead_id for j in journeys if j.lead_id})
    f.equal("customers", (await query(stack, "customers", "select count(*) from customers"))[0][0], n)
    timeline = await query(stack, "customers", "select customer_id, kind, event_id from timeline")
    f.equal("timeline entries per event id", Counter(Counter(r["event_id"] for r in timeline).values()), {1: 4 * n})
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for r in timeline:
        kinds[r["customer_id"]][r["kind"]] += 1
    wrong = {c: dict(k) for c, k in kinds.items() if k != TIMELINE_PER_CUSTOMER}
    f.equal("customers whose timeline is not one of each touch", list(wrong.items())[:5], [])
    f.equal("customers with a timeline", len(kinds), n)


async def _verify_reporting(f: Findings, stack: Stack, n: int) -> None:
    """Each event reporting consumes recorded once, counts equal to what the load did."""
    logged = await query(stack, "reporting", "select event_type, count(*) as n from event_log group by event_type")
    f.equal(
        "reporting event log by type",
        {r["event_type"]: r["n"] for r in logged},
        {t: n for s, t in EVENTS_PER_LEAD.items() if s in CONSUMES["reporting"]},
    )
    facts = (
        await query(
            stack,
            "reporting",
            """select (select count(*) from lead_facts where captured_at is not null and assigned_at is not null),
                      (select count(*) from deal_facts where won),
                      (select count(*) from order_facts where created_at is not null and shipped_at is not null),
                      (select count(*) from notification_facts where status = 'sent')""",
        )
    )[0]
    f.equal("reporting facts (leads, won deals, shipped orders, sent SMS)", tuple(facts), (n, n, n, n))


async def _verify_inboxes(f: Findings, stack: Stack, n: int, durables: dict[str, str]) -> int:
    """Every consumer's inbox: each event of its subject handled exactly once (the primary key
    makes a second row impossible, so the count proves none was skipped). Returns the total."""
    per_subject = {subject: n for subject in EVENTS_PER_LEAD}
    handled: dict[str, int] = {}
    for service in BACKEND_SERVICES:
        for r in await query(stack, service, "select consumer, count(*) as n from inbox group by consumer"):
            handled[r["consumer"]] = r["n"]
    f.equal(
        "events handled per consumer (inbox)",
        {d: handled.get(d, 0) for d in sorted(durables)},
        {d: per_subject.get(s, 0) for d, s in sorted(durables.items())},
    )
    return sum(handled.values())


async def _verify_outboxes_and_dead_letters(
    f: Findings, stack: Stack, durables: dict[str, str], poisons: list[Poison]
) -> int:
    """Outboxes empty; dead letters exactly the injected poison, once per consumer of its subject.
    Returns how many dead letters there are."""
    for service in BACKEND_SERVICES:
        f.equal(f"{service} outbox rows", (await query(stack, service, "select count(*) from outbox"))[0][0], 0)
    expected_dead = Counter(
        (d.split("-", 1)[0], d, p.subject, p.msg_id, p.payload)
        for p in poisons
        for d, s in durables.items()
        if s == p.subject
    )
    dead: Counter[tuple[str, str, str, str, bytes]] = Counter()
    for service in BACKEND_SERVICES:
        for r in await query(stack, service, "select consumer, subject, event_id, payload from dead_letters"):
            dead[(service, r["consumer"], r["subject"], r["event_id"], bytes(r["payload"]))] += 1
    errors = await dead_letter_lines(stack)
    f.check(
        dead == expected_dead,
        f"dead letters other than the injected poison: unexpected {sorted(_short(k) for k in dead - expected_dead)}, "
        f"missing {sorted(_short(k) for k in expected_dead - dead)}; all: {errors[:20]}",
    )
    f.equal("poison published", [p.published for p in poisons], [True] * len(poisons))
    return sum(dead.values())


def _short(key: tuple[str, str, str, str, bytes]) -> str:
    service, consumer, subject, event_id, _payload = key
    return f"{service}/{consumer} {subject} {event_id}"
