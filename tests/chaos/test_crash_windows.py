"""Every crash window, covered on purpose (#4): the whole system as separate processes on real
PostgreSQL and NATS, a real SIGKILL at an exact point of the code (`crm_kit.failpoints`), then a
restart, and exactly-once checked where it lives: the services' own databases, the JetStream
stream and the SMS provider.

Each test starts its own stack and arms a failpoint in the one process under test: Stack's
``extra_env`` reaches every process, so `restart_armed` respawns just that process with
``CRM_FAILPOINTS`` added to the command line and environment ``Stack._command`` gives it.
Nothing sleeps to synchronise: every wait is `eventually` on an observable state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from crm_devstack.stack import BACKEND_SERVICES, Ports, Stack, gateway_reaches_every_backend, grpc_serving
from crm_kit.failpoints import ENV_VAR as FAILPOINTS_ENV
from crm_kit.nats_access import CONSUMES
from crm_kit.testing import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

STREAM = "CRM"
# What a killed consumer held comes back after AckWait: a few seconds here, not the default 30.
STACK_ENV = {"CRM_CONSUMER_ACK_WAIT_SECONDS": "3"}
# The longest any single wait may take on a loaded machine; tests never assert durations.
PATIENCE = 60.0

ITEMS = [
    {
        "sku": "SOFA-3",
        "description": "ספה תלת-מושבית",
        "quantity": 1,
        "unit_price": {"amount_minor": 459900, "currency_code": "ILS"},
    },
    {
        "sku": "PILLOW",
        "description": "כרית נוי",
        "quantity": 2,
        "unit_price": {"amount_minor": 5000, "currency_code": "ILS"},
    },
]


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture
async def system(tmp_path: Path, migrated_snapshots: Path) -> AsyncIterator[Stack]:
    """A stack of its own for each test (state and logs under tmp_path/crm), its databases copied
    from the first one's freshly migrated ones."""
    stack = Stack(tmp_path / "crm", Ports.free(), extra_env=STACK_ENV, migrated_snapshots=migrated_snapshots)
    print(f"stack state and logs: {stack.state_dir}")
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()


# A new connection per request: these tests wait seconds between two calls (a restart), past the
# servers' keep-alive timeout (uvicorn's 5 s), and a connection the server closes just as it is
# reused fails the call with ReadError — a race of the test's client, not of the system.
FRESH = httpx.Limits(max_keepalive_connections=0)


@pytest.fixture
async def api(system: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=system.gateway_url, timeout=30, headers=system.auth_headers(), limits=FRESH
    ) as client:
        yield client


@pytest.fixture
async def sms(system: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.sms_url, timeout=30, limits=FRESH) as client:
        yield client


# ---------------------------------------------------------------------------------- processes


async def stop_gracefully(stack: Stack, name: str) -> None:
    """SIGTERM one service and wait for it (it drains, flushes its relay and acks)."""
    proc = stack.processes.pop(name)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(proc.wait, stack.stop_timeout + 20)


def spawn_armed(stack: Stack, name: str, failpoints: str) -> subprocess.Popen[bytes]:
    """Start `name` with CRM_FAILPOINTS in its environment alone (the stack's extra_env would arm
    every process); `Stack.stop` ends it like the others."""
    return stack.spawn(name, {FAILPOINTS_ENV: failpoints})


async def restart_armed(
    stack: Stack, name: str, failpoints: str, *, wait_ready: bool = True
) -> subprocess.Popen[bytes]:
    """Restart `name` (gracefully) with CRM_FAILPOINTS=failpoints in its environment alone."""
    if name in stack.processes:
        await stop_gracefully(stack, name)
    proc = spawn_armed(stack, name, failpoints)
    if wait_ready:

        async def serving() -> bool:
            assert proc.poll() is None, f"{name} exited with {proc.returncode} before it was ready"
            return await grpc_serving(stack.grpc_address(name))

        await eventually(serving, timeout=PATIENCE, interval=0.2)
        await gateway_ready(stack)
    return proc


async def gateway_ready(stack: Stack) -> None:
    """Wait until the gateway's own channels reach every backend again: a channel that saw its
    backend gone backs off before reconnecting and fails calls meanwhile (UNAVAILABLE → 503)."""
    async with httpx.AsyncClient(timeout=5) as http:

        async def ready() -> bool:
            return await gateway_reaches_every_backend(http, stack.gateway_url)

        await eventually(ready, timeout=PATIENCE, interval=0.2)


async def restart(stack: Stack, name: str) -> None:
    """Restart one part of the stack without failpoints, and wait until the gateway reaches it."""
    await stack.restart_process(name)
    await gateway_ready(stack)


async def killed_at(stack: Stack, name: str, proc: subprocess.Popen[bytes], point: str) -> None:
    """Wait until `proc` died of SIGKILL at failpoint `point`."""

    async def exited() -> bool:
        return proc.poll() is not None

    await eventually(exited, timeout=PATIENCE)
    log = stack.log_path(name).read_text(errors="replace")
    assert proc.returncode == -signal.SIGKILL, f"{name} exited with {proc.returncode}:\n{log[-3000:]}"
    assert f"failpoint {point} hit" in log, log[-3000:]


def still_running(stack: Stack, pids: dict[str, int]) -> None:
    """No crash loop: every process of `pids` is the same process, alive."""
    assert stack.exited() == {}
    assert {name: proc.pid for name, proc in stack.processes.items() if name in pids} == pids


async def health(address: str) -> str:
    """The server's overall gRPC health status name, or UNREACHABLE."""
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
    except (TimeoutError, grpc.aio.AioRpcError, OSError):
        return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def all_services(stack: Stack, status: str) -> Callable[[], Awaitable[dict[str, str] | None]]:
    async def check() -> dict[str, str] | None:
        states = {svc: await health(stack.grpc_address(svc)) for svc in BACKEND_SERVICES}
        return states if set(states.values()) == {status} else None

    return check


# ---------------------------------------------------------------------------------- databases and stream


def dsn(stack: Stack, service: str) -> str:
    return stack.database_url(service).replace("postgresql+asyncpg://", "postgresql://", 1)


async def query(stack: Stack, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn(stack, service), timeout=5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def scalar(stack: Stack, service: str, sql: str, *args: Any) -> Any:
    rows = await query(stack, service, sql, *args)
    return rows[0][0]


@contextlib.asynccontextmanager
async def jetstream(stack: Stack) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(stack.nats_url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def stream_events(stack: Stack) -> list[tuple[str, str]]:
    """(subject, ce-id) of every message in the stream, oldest first."""
    async with jetstream(stack) as js:
        state = (await js.stream_info(STREAM)).state
        events = []
        for seq in range(state.first_seq, state.last_seq + 1):
            msg = await js.get_msg(STREAM, seq)
            events.append((msg.subject or "", (msg.headers or {}).get("ce-id", "")))
        return events


async def consumers(stack: Stack) -> dict[str, ConsumerInfo]:
    async with jetstream(stack) as js:
        return {info.name: info for info in await js.consumers_info(STREAM)}


async def last_seq(stack: Stack) -> int:
    async with jetstream(stack) as js:
        return int((await js.stream_info(STREAM)).state.last_seq)


async def settled(stack: Stack) -> bool:
    """Nothing left to do anywhere: every durable consumer has handled (acked) every message,
    every outbox is empty, and nothing was published meanwhile."""
    before = await last_seq(stack)
    for info in (await consumers(stack)).values():
        if info.num_pending or info.num_ack_pending:
            return False
    for service in BACKEND_SERVICES:
        if await scalar(stack, service, "select count(*) from outbox"):
            return False
    return await last_seq(stack) == before


@dataclass
class Expected:
    leads: int
    won_deals: list[str] = field(default_factory=list)
    shipped_orders: list[str] = field(default_factory=list)


async def assert_exactly_once(stack: Stack, sms: httpx.AsyncClient, expected: Expected) -> None:
    """Once the system settled: every event once in the stream and once in each consumer's
    effects, no dead letters, one order per won deal, one SMS per shipped order."""
    await eventually(lambda: settled(stack), timeout=PATIENCE)
    won, shipped = len(expected.won_deals), len(expected.shipped_orders)

    events = await stream_events(stack)
    copies = Counter(event_id for _, event_id in events)
    assert [event_id for event_id, n in copies.items() if n > 1] == [], "an event is in the stream twice"
    subjects = Counter(subject for subject, _ in events)
    assert {
        s: subjects[s] for s in ("crm.leads.lead_captured", "crm.sales.deal_closed", "crm.orders.order_created")
    } == {
        "crm.leads.lead_captured": expected.leads,
        "crm.sales.deal_closed": won,
        "crm.orders.order_created": won,
    }
    assert subjects["crm.orders.order_shipped"] == subjects["crm.notifications.notification_sent"] == shipped

    for service in BACKEND_SERVICES:
        assert await query(stack, service, "select consumer, event_id, error from dead_letters") == [], service
        assert await scalar(stack, service, "select count(*) from outbox") == 0, service

    orders = await query(stack, "orders", "select deal_id, count(*) as n from orders group by deal_id")
    assert {r["deal_id"]: r["n"] for r in orders} == dict.fromkeys(expected.won_deals, 1)

    timeline = await query(stack, "customers", "select kind, event_id from timeline")
    assert len({r["event_id"] for r in timeline}) == len(timeline)
    assert Counter(r["kind"] for r in timeline) == +Counter(  # (unary + drops the zero counts)
        {"lead_captured": expected.leads, "deal_won": won, "order_shipped": shipped, "sms_sent": shipped}
    )

    # Reporting records every event it consumes, each once, and counts each won deal once.
    recorded = await query(stack, "reporting", "select event_id from event_log")
    consumed = {event_id for subject, event_id in events if subject in CONSUMES["reporting"]}
    assert sorted(r["event_id"] for r in recorded) == sorted(consumed)
    assert await scalar(stack, "reporting", "select count(*) from deal_facts where won") == won
    assert await scalar(stack, "reporting", "select count(*) from order_facts") == won

    keys = [f"order-shipped:{order_id}" for order_id in expected.shipped_orders]
    sent = (await sms.get("/messages")).json()
    assert sorted(m["idempotency_key"] for m in sent) == sorted(keys)
    messages = await query(stack, "notifications", "select idempotency_key, status from messages")
    assert {r["idempotency_key"]: r["status"] for r in messages} == dict.fromkeys(keys, "sent")


# ---------------------------------------------------------------------------------- the API


_lead_numbers = itertools.count(1)


async def capture(api: httpx.AsyncClient) -> dict[str, Any]:
    # Every test has a stack of its own: numbered leads keep phones and request ids apart, no randomness.
    n = next(_lead_numbers)
    body = {
        "full_name": "רונית אברהם",
        "phone_number": f"052-{1_000_000 + n:07d}",
        "source": "radio",
        "locale": "he-IL",
        "request_id": f"chaos-lead-{n}",
    }
    response = await api.post("/api/v1/leads", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def convert(api: httpx.AsyncClient, lead_id: str) -> str:
    response = await api.post(f"/api/v1/leads/{lead_id}/convert", json={"title": "סלון חדש"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def close_won(api: httpx.AsyncClient, deal_id: str) -> httpx.Response:
    return await api.post(f"/api/v1/deals/{deal_id}/close", json={"outcome": "won", "items": ITEMS})


async def the_order(api: httpx.AsyncClient, deal_id: str) -> dict[str, Any]:
    async def orders() -> list[dict[str, Any]]:
        response = await api.get("/api/v1/orders", params={"deal_id": deal_id})
        assert response.status_code == 200, response.text
        return list(response.json()["orders"])

    found: list[dict[str, Any]] = await eventually(orders, timeout=PATIENCE)
    assert len(found) == 1
    return found[0]


async def ship(api: httpx.AsyncClient, order_id: str) -> None:
    eta = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    response = await api.post(
        f"/api/v1/orders/{order_id}/ship",
        json={"carrier": "דואר ישראל", "tracking_number": "RR123456789IL", "estimated_delivery_date": eta},
    )
    assert response.status_code == 200, response.text


async def sms_to(sms: httpx.AsyncClient, phone: str) -> list[dict[str, Any]]:
    return [m for m in (await sms.get("/messages")).json() if m["to"] == phone]


@dataclass
class Flow:
    lead_id: str
    phone: str
    deal_id: str
    order_id: str


async def golden_path(api: httpx.AsyncClient, sms: httpx.AsyncClient) -> Flow:
    """capture → convert → close won → the order appears → ship → exactly one SMS."""
    lead = await capture(api)
    deal_id = await convert(api, lead["id"])
    closed = await close_won(api, deal_id)
    assert closed.status_code == 200, closed.text
    order = await the_order(api, deal_id)
    await ship(api, order["id"])
    messages = await eventually(lambda: sms_to(sms, lead["phone_number"]), timeout=PATIENCE)
    assert len(messages) == 1
    return Flow(lead["id"], lead["phone_number"], deal_id, order["id"])


async def won_order(api: httpx.AsyncClient) -> Flow:
    lead = await capture(api)
    deal_id = await convert(api, lead["id"])
    closed = await close_won(api, deal_id)
    assert closed.status_code == 200, closed.text
    order = await the_order(api, deal_id)
    return Flow(lead["id"], lead["phone_number"], deal_id, order["id"])


# ---------------------------------------------------------------------------------- 1. the relay


async def test_relay_killed_after_publishing_publishes_again_and_jetstream_drops_the_copy(
    system: Stack, api: httpx.AsyncClient, sms: httpx.AsyncClient
) -> None:
    lead = await capture(api)
    deal_id = await convert(api, lead["id"])
    await eventually(lambda: settled(system), timeout=PATIENCE)
    sales = await restart_armed(system, "sales", "outbox.after_publish")

    # The deal is won in sales' transaction; its relay publishes DealClosed and dies before the
    # delete. (The reply races the crash: either way the close is committed, checked below.)
    with contextlib.suppress(httpx.HTTPError):
        await close_won(api, deal_id)
    await killed_at(system, "sales", sales, "outbox.after_publish")

    # The window itself: DealClosed (with the close's DealStageChanged, written in the same
    # transaction) is in the stream AND still in sales' outbox.
    pending = await query(system, "sales", "select event_id, event_type, headers from outbox")
    assert sorted(r["event_type"] for r in pending) == ["crm.sales.v1.DealClosed", "crm.sales.v1.DealStageChanged"]
    [event_id] = [r["event_id"] for r in pending if r["event_type"] == "crm.sales.v1.DealClosed"]
    assert (await stream_events(system)).count(("crm.sales.deal_closed", event_id)) == 1

    await restart(system, "sales")
    # The relay deletes a row only after JetStream acked its publish: the row is gone, so the
    # copy was published ...
    await eventually(lambda: scalar(system, "sales", "select count(*) = 0 from outbox"), timeout=PATIENCE)
    # ... and JetStream dropped it by its Nats-Msg-Id (= the event id): still one message.
    assert (await stream_events(system)).count(("crm.sales.deal_closed", event_id)) == 1
    deal = (await api.get(f"/api/v1/deals/{deal_id}")).json()
    assert deal["status"] == "won"

    await assert_exactly_once(system, sms, Expected(leads=1, won_deals=[deal_id]))
    deal_won = await query(system, "customers", "select count(*) from timeline where event_id = $1", event_id)
    assert deal_won[0][0] == 1


# ---------------------------------------------------------------------------------- 2. a consumer


async def test_consumer_killed_after_commit_before_ack_gets_the_events_again_and_the_inbox_absorbs_them(
    system: Stack, api: httpx.AsyncClient, sms: httpx.AsyncClient
) -> None:
    deals = [await convert(api, (await capture(api))["id"]) for _ in range(3)]
    await eventually(lambda: settled(system), timeout=PATIENCE)

    # Three DealClosed wait for orders while it is down ...
    await stop_gracefully(system, "orders")
    for deal_id in deals:
        closed = await close_won(api, deal_id)
        assert closed.status_code == 200, closed.text

    async def waiting_for_orders() -> bool:
        return (await consumers(system))["orders-from-sales"].num_pending == len(deals)

    await eventually(waiting_for_orders, timeout=PATIENCE)

    # ... then orders starts armed for the second handling: an idle consumer fetches one event
    # (handled and acked), then takes the other two as one batch, commits it and dies unacked.
    orders = await restart_armed(system, "orders", "bus.after_commit_before_ack=2", wait_ready=False)
    await killed_at(system, "orders", orders, "bus.after_commit_before_ack")

    # The window itself: effects committed (orders and inbox rows) for events not acked.
    info = (await consumers(system))["orders-from-sales"]
    committed = await scalar(system, "orders", "select count(*) from orders")
    claimed = await scalar(system, "orders", "select count(*) from inbox where consumer = 'orders-deal-closed'")
    acked = len(deals) - (info.num_pending or 0) - (info.num_ack_pending or 0)
    assert committed == claimed == len(deals)
    assert (acked, info.num_ack_pending) == (1, 2), "the second handling was not the batch of two"

    await restart(system, "orders")
    await eventually(lambda: settled(system), timeout=PATIENCE)
    info = (await consumers(system))["orders-from-sales"]
    # Delivered more often than there are events: the two unacked ones came back, and were acked.
    assert info.delivered is not None and (info.delivered.consumer_seq or 0) >= len(deals) + 2
    await assert_exactly_once(system, sms, Expected(leads=3, won_deals=deals))
    assert await scalar(system, "orders", "select count(*) from inbox where consumer = 'orders-deal-closed'") == 3


async def test_consumer_killed_after_recording_a_dead_letter_records_it_once(system: Stack) -> None:
    """A poison event is recorded as a dead letter, then the consumer dies before terminating it:
    the event comes back, fails again, and the open letter is not written a second time."""
    reporting = await restart_armed(system, "reporting", "bus.after_dead_letter_before_term")
    event_id = f"poison-{datetime.now(UTC).timestamp()}"
    headers = {
        "Nats-Msg-Id": event_id,
        "ce-id": event_id,
        "ce-type": "crm.customers.v1.CustomerCreated",
        "ce-source": "/chaos",
        "ce-specversion": "1.0",
    }
    async with jetstream(system) as js:
        await js.publish("crm.customers.customer_created", b"\xff\xfe not a protobuf", headers=headers)
    await killed_at(system, "reporting", reporting, "bus.after_dead_letter_before_term")
    letters = "select count(*) from dead_letters where event_id = $1"
    assert await scalar(system, "reporting", letters, event_id) == 1

    await restart(system, "reporting")
    await eventually(lambda: settled(system), timeout=PATIENCE)
    # It came back to the restarted consumer (not terminated before the kill), failed again, met
    # the open letter recorded before the kill and was terminated this time, logged as such; that
    # letter is still the only one.
    since_restart = system.log_path("reporting").read_text(errors="replace").rsplit("\n===== ", 1)[-1]
    assert "dead letter already recorded and open" in since_restart
    assert "reporting-customer-created" in since_restart
    assert await scalar(system, "reporting", letters, event_id) == 1


# ---------------------------------------------------------------------------------- 3. the SMS


@pytest.mark.parametrize(
    ("point", "provider_had_it"),
    [("notifications.after_intent", False), ("notifications.after_provider_accepted", True)],
    ids=["before-the-provider-call", "after-the-provider-accepted"],
)
async def test_notifications_killed_around_the_provider_call_sends_exactly_one_sms(
    system: Stack, api: httpx.AsyncClient, sms: httpx.AsyncClient, point: str, provider_had_it: bool
) -> None:
    flow = await won_order(api)
    await eventually(lambda: settled(system), timeout=PATIENCE)
    notifications = await restart_armed(system, "notifications", point)

    await ship(api, flow.order_id)
    await killed_at(system, "notifications", notifications, point)

    # The window itself: the intent is recorded and still pending; the provider has the SMS
    # only when the crash came after it accepted it.
    key = f"order-shipped:{flow.order_id}"
    intent = await query(system, "notifications", "select status, idempotency_key from messages")
    assert [(r["status"], r["idempotency_key"]) for r in intent] == [("pending", key)]
    before = await sms_to(sms, flow.phone)
    assert len(before) == (1 if provider_had_it else 0)

    await restart(system, "notifications")

    async def sent() -> Any:
        rows = await query(system, "notifications", "select status, provider_message_id from messages")
        return rows[0] if rows[0]["status"] == "sent" else None

    row = await eventually(sent, timeout=PATIENCE)
    messages = await sms_to(sms, flow.phone)
    assert len(messages) == 1 and messages[0]["idempotency_key"] == key
    # The retry carried the same Idempotency-Key; the provider answered with its first message.
    assert row["provider_message_id"] == messages[0]["id"]
    if provider_had_it:
        assert messages == before
    await assert_exactly_once(system, sms, Expected(leads=1, won_deals=[flow.deal_id], shipped_orders=[flow.order_id]))


# ---------------------------------------------------------------------------------- 4. NATS


async def test_nats_killed_and_started_again_consumers_resume_and_a_golden_path_completes(
    system: Stack, api: httpx.AsyncClient, sms: httpx.AsyncClient
) -> None:
    before = await golden_path(api, sms)
    await eventually(lambda: settled(system), timeout=PATIENCE)
    pids = {name: proc.pid for name, proc in system.processes.items()}

    await system.kill_process("nats")
    # NATS is no condition of readiness: every service stays SERVING while it is gone (two
    # readiness rounds later too) ...
    await asyncio.sleep(2.5)
    assert await all_services(system, "SERVING")(), "a NATS outage must not make the services unready"
    # ... and a write meanwhile is committed with its events; they wait in the outbox.
    during = await capture(api)
    assert await scalar(system, "leads", "select count(*) from outbox") >= 1

    await restart(system, "nats")
    await eventually(all_services(system, "SERVING"), timeout=PATIENCE)
    # Every pull consumer resumed without a restart of its process: the events from the outage and
    # a whole golden path go through. (No stall like nats.py #504: nats-py re-subscribes the pull
    # inbox on reconnect, and an idle consumer never waits on one pull request for more than its
    # 1 s fetch timeout, so a request the killed server forgot is replaced a second later.)
    after = await golden_path(api, sms)

    still_running(system, pids)
    await assert_exactly_once(
        system,
        sms,
        Expected(leads=3, won_deals=[before.deal_id, after.deal_id], shipped_orders=[before.order_id, after.order_id]),
    )
    assert (
        await scalar(system, "customers", "select count(*) from customer_leads where lead_id = $1", during["id"]) == 1
    )


# ---------------------------------------------------------------------------------- 5. PostgreSQL


async def test_postgres_killed_and_started_again_services_back_off_and_recover_without_restarting(
    system: Stack, api: httpx.AsyncClient, sms: httpx.AsyncClient
) -> None:
    await capture(api)
    await eventually(lambda: settled(system), timeout=PATIENCE)
    pids = {name: proc.pid for name, proc in system.processes.items()}
    log_offsets = {svc: system.log_path(svc).stat().st_size for svc in BACKEND_SERVICES}

    await system.kill_process("postgres")
    # Every service stays up and answers, NOT_SERVING while its database is gone ...
    await eventually(all_services(system, "NOT_SERVING"), timeout=PATIENCE)

    # ... and keeps retrying: each relay has failed a round at least twice, and lives on.
    async def relays_retrying() -> bool:
        for svc in BACKEND_SERVICES:
            with system.log_path(svc).open("rb") as log:
                log.seek(log_offsets[svc])
                if log.read().count(b"outbox relay failed to publish a batch; retrying") < 2:
                    return False
        return True

    await eventually(relays_retrying, timeout=PATIENCE)
    still_running(system, pids)

    await restart(system, "postgres")
    await eventually(all_services(system, "SERVING"), timeout=PATIENCE)
    flow = await golden_path(api, sms)

    still_running(system, pids)
    await assert_exactly_once(system, sms, Expected(leads=2, won_deals=[flow.deal_id], shipped_orders=[flow.order_id]))


# ---------------------------------------------------------------------------------- 4. a promotion

PROMOTION_TAG = "chaos-promotion"
PROMOTION_SIZE = 1200
PROMOTION_TEXT = "פרסומת: {name}, מבצע! {advertiser} {advertiser_contact}. להסרה השיבו הסר"


async def consenting_customers(stack: Stack, count: int) -> set[str]:
    """count customers who consented to SMS advertising, straight into customers' database; their numbers."""
    conn = await asyncpg.connect(stack.postgres.dsn("customers"))
    try:
        await conn.execute(
            "INSERT INTO customers (id, full_name, phone_number, email, locale, marketing_sms_consent, tags) "
            "SELECT 'chaos-' || lpad(i::text, 6, '0'), 'לקוח ' || i, '+97254' || lpad(i::text, 7, '0'), '', "
            "'he-IL', true, ARRAY[$2]::varchar[] FROM generate_series(1, $1) AS i",
            count,
            PROMOTION_TAG,
        )
    finally:
        await conn.close()
    return {f"+97254{i:07d}" for i in range(1, count + 1)}


@pytest.mark.parametrize("point", ["promotions.after_intents", "promotions.after_sends=2"])
async def test_notifications_killed_mid_promotion_sends_each_person_exactly_one_sms(
    system: Stack, sms: httpx.AsyncClient, point: str
) -> None:
    numbers = await consenting_customers(system, PROMOTION_SIZE)
    notifications = await restart_armed(system, "notifications", point)
    marketing = system.auth_headers("marketing")
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30, headers=marketing) as http:
        body = {
            "name": "chaos",
            "channel": "sms",
            "audience": {"tags": [PROMOTION_TAG]},
            "texts": [{"locale": "he-IL", "body": PROMOTION_TEXT}],
        }
        created = await http.post("/api/v1/promotions", json=body)
        assert created.status_code == 201, created.text
        promotion_id = created.json()["id"]
        scheduled = await http.post(f"/api/v1/promotions/{promotion_id}/schedule", json={})
        assert scheduled.status_code == 200, scheduled.text

        await killed_at(system, "notifications", notifications, point.split("=")[0])
        # The window: a batch's intents are saved and pending; the provider has all of it, or none.
        pending = await query(system, "notifications", "select count(*) as n from messages where status = 'pending'")
        assert pending[0]["n"] > 0
        await restart(system, "notifications")

        async def completed() -> bool:
            return (await http.get(f"/api/v1/promotions/{promotion_id}")).json()["status"] == "completed"

        await eventually(completed, timeout=PATIENCE * 2, interval=0.5)

    sent = [m["to"] for m in (await sms.get("/messages")).json() if m["to"] in numbers]
    assert len(sent) == PROMOTION_SIZE and set(sent) == numbers  # no one twice, no one missing
    rows = await query(system, "notifications", "select status, count(*) as n from messages group by status")
    assert {r["status"]: r["n"] for r in rows} == {"sent": PROMOTION_SIZE}
