"""The bus against real PostgreSQL and JetStream: batches commit together, a failing event is
retried alone and dead-lettered, a redelivered event has no second effect."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Column, MetaData, String, Table, func, insert, select

from crm.sales.v1 import events_pb2
from crm_kit.bus import ConsumerSubjectMismatch, EventBus, Subscription
from crm_kit.db import Database, UnitOfWork
from crm_kit.events import Envelope
from crm_kit.settings import ServiceSettings
from crm_kit.tables import MessagingTables
from crm_kit.testing import eventually, publish_event, reset_stream

pytestmark = pytest.mark.integration

metadata = MetaData()
tables = MessagingTables(metadata)
effects = Table("effects", metadata, Column("deal_id", String(64), primary_key=True))
counted: list[str] = []  # what after_commit saw: a metric would count exactly these


async def record_effect(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
    if envelope.message.deal_id == "poison-pill":
        raise RuntimeError("this event can never be handled")
    await uow.conn.execute(insert(effects).values(deal_id=envelope.message.deal_id))
    uow.after_commit(lambda: counted.append(envelope.message.deal_id))


async def test_batch_commits_together_and_isolates_a_failing_event(fresh_database, nats_server) -> None:
    await reset_stream(nats_server)
    settings = ServiceSettings(
        service_name="kittest",
        database_url=await fresh_database("kittest"),
        nats_url=nats_server,
        consumer_backoff_seconds=[0.05],
        consumer_max_deliver=3,
    )
    db = Database(settings.database_url, tables, source="/crm/kittest")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    bus = EventBus(settings, db)
    bus.subscribe(events_pb2.DealClosed, record_effect)
    await bus.connect()
    # Published before the consumer starts, so they arrive in one fetched batch.
    ids = [await publish_event(nats_server, events_pb2.DealClosed(deal_id=f"d{i}")) for i in range(20)]
    await publish_event(nats_server, events_pb2.DealClosed(deal_id="poison-pill"))
    await publish_event(nats_server, events_pb2.DealClosed(deal_id="d3"), event_id=ids[3], **{"Nats-Msg-Id": "again"})
    await bus.start_consumers()
    try:

        async def settled() -> tuple[int, int] | None:
            async with db.engine.connect() as conn:
                done = (await conn.execute(select(func.count()).select_from(effects))).scalar_one()
                dead = (await conn.execute(select(func.count()).select_from(tables.dead_letters))).scalar_one()
            return (done, dead) if dead else None

        assert await eventually(settled, timeout=30) == (20, 1)
        async with db.engine.connect() as conn:
            letter = (await conn.execute(select(tables.dead_letters))).one()
        assert letter.consumer == "kittest-deal-closed" and letter.deliveries == 3
        assert "can never be handled" in letter.error
        # The batch was rolled back and retried event by event: each effect still counted once.
        assert sorted(counted) == sorted(f"d{i}" for i in range(20))
    finally:
        await bus.stop(1)
        await db.dispose()


async def test_consumer_lag_is_exported_and_drains(fresh_database, nats_server) -> None:
    """crm_consumer_pending follows the durable consumer's num_pending: it shows the events a
    stuck handler keeps waiting, and drops to 0 once they are handled."""
    await reset_stream(nats_server)
    settings = ServiceSettings(
        service_name="kitlag",
        database_url=await fresh_database("kitlag"),
        nats_url=nats_server,
        consumer_pending_refresh_seconds=0.05,
    )
    db = Database(settings.database_url, tables, source="/crm/kitlag")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    gate = asyncio.Event()

    async def stuck_until_released(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        await gate.wait()

    bus = EventBus(settings, db)
    bus.subscribe(events_pb2.DealClosed, stuck_until_released)
    await bus.connect()
    for i in range(5):
        await publish_event(nats_server, events_pb2.DealClosed(deal_id=f"lag{i}"))
    await bus.start_consumers()

    def pending() -> float | None:
        return REGISTRY.get_sample_value("crm_consumer_pending", {"consumer": "kitlag-deal-closed"})

    async def lag_is(expected: float) -> bool:
        return pending() == expected

    try:
        # The idle consumer took one event and is stuck on it: the other four wait in the stream.
        await eventually(lambda: lag_is(4), timeout=15)
        gate.set()
        await eventually(lambda: lag_is(0), timeout=15)
    finally:
        gate.set()
        await bus.stop(1)
        await db.dispose()


async def test_a_durable_left_on_another_subject_stops_the_start(fresh_database, nats_server) -> None:
    """An upgrade that moved an event to another producer (DealClosed from leads to sales) must not
    leave a consumer silently reading the old subject: the bus refuses to start until it is gone."""
    await reset_stream(nats_server)
    settings = ServiceSettings(
        service_name="kittest", database_url=await fresh_database("kittest"), nats_url=nats_server
    )
    old = EventBus(settings, None)
    old.subscriptions.append(
        Subscription("kittest-deal-closed", "crm.leads.deal_closed", events_pb2.DealClosed, record_effect, True)
    )
    await old.connect()
    await old.start_consumers()
    await old.stop(1)

    bus = EventBus(settings, None)
    bus.subscribe(events_pb2.DealClosed, record_effect)  # now crm.sales.deal_closed, same durable
    await bus.connect()
    try:
        with pytest.raises(ConsumerSubjectMismatch, match=r"crm\.leads\.deal_closed"):
            await bus.start_consumers()
    finally:
        await bus.stop(1)


async def test_a_concurrent_self_managed_consumer_handles_events_side_by_side_each_once(
    fresh_database, nats_server
) -> None:
    """concurrency=4: four events are in the handler at the same moment (none waits for another's
    remote call), every event is handled once and acked, and a fifth waits for a free place."""
    await reset_stream(nats_server)
    database_url = await fresh_database("kitconc")
    settings = ServiceSettings(service_name="kitconc", database_url=database_url, nats_url=nats_server)
    db = Database(settings.database_url, tables, source="/crm/kitconc")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    gate = asyncio.Event()
    inside: set[str] = set()
    most_inside = 0
    handled: list[str] = []

    async def send(envelope: Envelope[Any]) -> None:
        nonlocal most_inside
        inside.add(envelope.message.deal_id)
        most_inside = max(most_inside, len(inside))
        await gate.wait()
        inside.discard(envelope.message.deal_id)
        handled.append(envelope.message.deal_id)

    bus = EventBus(settings, db)
    bus.subscribe(events_pb2.DealClosed, send, transactional=False, concurrency=4)
    with pytest.raises(ValueError, match="self-managed"):
        bus.subscribe(events_pb2.DealStageChanged, record_effect, concurrency=2)
    await bus.connect()
    for i in range(10):
        await publish_event(nats_server, events_pb2.DealClosed(deal_id=f"c{i}"))
    await bus.start_consumers()
    try:

        async def four_inside() -> bool:
            return len(inside) == 4

        await eventually(four_inside, timeout=15)
        await asyncio.sleep(0.2)  # room for a fifth to (wrongly) start
        assert len(inside) == 4
        gate.set()

        async def all_acked() -> bool:
            info = await bus.js.consumer_info(settings.stream_name, "kitconc-deal-closed")  # type: ignore[union-attr]
            return len(handled) == 10 and info.num_ack_pending == 0 and info.num_pending == 0

        await eventually(all_acked, timeout=15)
        assert sorted(handled) == sorted(f"c{i}" for i in range(10))
        assert most_inside == 4
    finally:
        gate.set()
        await bus.stop(1)
        await db.dispose()
