"""The bus against real PostgreSQL and JetStream: batches commit together, a failing event is
retried alone and dead-lettered, a redelivered event has no second effect."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest
from nats.js.api import DeliverPolicy
from prometheus_client import REGISTRY
from sqlalchemy import Column, MetaData, String, Table, func, insert, select

from crm.sales.v1 import events_pb2
from crm_kit.bus import ConsumerSubjectMismatch, EventBus, consumer_config, consumer_subjects, ensure_consumer
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
        return REGISTRY.get_sample_value("crm_consumer_pending", {"consumer": "kitlag-from-sales"})

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


async def test_a_durable_reading_other_subjects_stops_the_start(fresh_database, nats_server) -> None:
    """A service's durable per producer must read exactly the subjects its code handles: one left
    from a release that consumed others (or not yet provisioned for this one) would skip or
    mis-route events, so the bus refuses to start until the provisioner brings it in line."""
    await reset_stream(nats_server)
    settings = ServiceSettings(
        service_name="kittest", database_url=await fresh_database("kittest"), nats_url=nats_server
    )
    nc = await nats.connect(nats_server)
    try:
        await nc.jetstream().add_consumer(
            "CRM", consumer_config(settings, "kittest-from-sales", ("crm.sales.deal_stage_changed",))
        )
    finally:
        await nc.close()

    bus = EventBus(settings, None)
    bus.subscribe(events_pb2.DealClosed, record_effect)  # crm.sales.deal_closed, same durable
    await bus.connect()
    try:
        with pytest.raises(ConsumerSubjectMismatch, match=r"crm\.sales\.deal_stage_changed"):
            await bus.start_consumers()
    finally:
        await bus.stop(1)


async def test_one_durable_per_producer_hands_each_event_to_its_handler_in_stream_order(
    fresh_database, nats_server
) -> None:
    """Two event types of one producer arrive through one durable, in the order they were
    published, each recorded under its own inbox key (a batch mixes them in one transaction)."""
    await reset_stream(nats_server)
    database_url = await fresh_database("kitgroup")
    settings = ServiceSettings(service_name="kitgroup", database_url=database_url, nats_url=nats_server)
    db = Database(database_url, tables, source="/crm/kitgroup")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    seen: list[tuple[str, str]] = []

    async def closed(uow: UnitOfWork, env: Envelope[Any]) -> None:
        seen.append(("closed", env.message.deal_id))

    async def moved(uow: UnitOfWork, env: Envelope[Any]) -> None:
        seen.append(("moved", env.message.deal_id))

    bus = EventBus(settings, db)
    bus.subscribe(events_pb2.DealClosed, closed)
    bus.subscribe(events_pb2.DealStageChanged, moved)
    assert [(g.durable, g.subjects) for g in bus.groups()] == [
        ("kitgroup-from-sales", ("crm.sales.deal_closed", "crm.sales.deal_stage_changed"))
    ]
    expected = []
    for i in range(20):
        if i % 3:
            await publish_event(nats_server, events_pb2.DealClosed(deal_id=f"d{i}"), event_id=f"e{i}")
            expected.append(("closed", f"d{i}"))
        else:
            await publish_event(nats_server, events_pb2.DealStageChanged(deal_id=f"d{i}"), event_id=f"e{i}")
            expected.append(("moved", f"d{i}"))
    await bus.connect()
    await bus.start_consumers()
    try:

        async def all_seen() -> bool:
            return len(seen) == 20

        await eventually(all_seen, timeout=15)
        assert seen == expected
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(select(tables.inbox.c.consumer, func.count()).group_by(tables.inbox.c.consumer))
            ).all()
        assert dict(rows) == {"kitgroup-deal-closed": 13, "kitgroup-deal-stage-changed": 7}
    finally:
        await bus.stop(1)
        await db.dispose()


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
            info = await bus.js.consumer_info(settings.stream_name, "kitconc-from-sales")  # type: ignore[union-attr]
            return len(handled) == 10 and info.num_ack_pending == 0 and info.num_pending == 0

        await eventually(all_acked, timeout=15)
        assert sorted(handled) == sorted(f"c{i}" for i in range(10))
        assert most_inside == 4
    finally:
        gate.set()
        await bus.stop(1)
        await db.dispose()


async def test_a_new_durable_per_producer_starts_where_the_per_event_durables_it_replaces_got_to(
    nats_server,
) -> None:
    """An upgrade from one durable per event type: the provisioner's new durable starts at the
    oldest event one of the old durables had not acknowledged, so the stream's history is not
    delivered again (what is delivered twice is still applied once: the inbox keys are the same)."""
    await reset_stream(nats_server)
    settings = ServiceSettings(service_name="kitmig", nats_url=nats_server)
    nc = await nats.connect(nats_server)
    try:
        js = nc.jetstream()
        old = {}
        for name, subject in (
            ("kitmig-deal-closed", "crm.sales.deal_closed"),
            ("kitmig-deal-stage-changed", "crm.sales.deal_stage_changed"),
        ):
            old[name] = await js.pull_subscribe(subject, durable=name, stream="CRM")
        for i in range(6):
            await publish_event(nats_server, events_pb2.DealClosed(deal_id=f"c{i}"))  # seq 1..6
        for i in range(3):
            await publish_event(nats_server, events_pb2.DealStageChanged(deal_id=f"m{i}"))  # seq 7..9
        for msg in await old["kitmig-deal-closed"].fetch(6, timeout=2):
            await msg.ack()  # caught up
        moved = await old["kitmig-deal-stage-changed"].fetch(3, timeout=2)
        await moved[0].ack()  # seq 7 acked; 8 and 9 delivered, not acked (in flight when it stopped)
        await nc.flush()

        info = await ensure_consumer(
            js,
            settings,
            "kitmig-from-sales",
            ("crm.sales.deal_closed", "crm.sales.deal_stage_changed"),
            replaced=("kitmig-deal-closed", "kitmig-deal-stage-changed"),
        )
        assert info.config.opt_start_seq == 8
        fresh = await ensure_consumer(js, settings, "kitnew-from-sales", ("crm.sales.deal_closed",), replaced=())
        assert fresh.config.deliver_policy == DeliverPolicy.ALL
        assert consumer_subjects(fresh) == ("crm.sales.deal_closed",)
        # Provisioned again with another table: the filters follow, the start stays.
        again = await ensure_consumer(js, settings, "kitmig-from-sales", ("crm.sales.deal_closed",), update=True)
        assert (consumer_subjects(again), again.config.opt_start_seq) == (("crm.sales.deal_closed",), 8)
    finally:
        await nc.close()


async def test_a_stream_unlike_the_releases_settings_stops_the_start_and_readiness(fresh_database, nats_server) -> None:
    """The stream is the provisioner's: a service only checks it is as its release needs it. Three
    replicas asked of a one-replica stream: no consuming, and the reason kept for readiness; once
    the settings agree, the same check passes and clears it."""
    from crm_kit.bus import StreamMismatch

    await reset_stream(nats_server)
    url = await fresh_database("kittest")
    wrong = ServiceSettings(service_name="kittest", database_url=url, nats_url=nats_server, stream_replicas=3)
    bus = EventBus(wrong, None)
    with pytest.raises(StreamMismatch, match=r"1 replicas, not 3 \(CRM_STREAM_REPLICAS\)"):
        await bus.connect()
    assert "replicas" in bus.stream_problem
    bus.settings = ServiceSettings(service_name="kittest", database_url=url, nats_url=nats_server)
    await bus.ensure_stream()
    assert bus.stream_problem == ""
    await bus.stop(1)
