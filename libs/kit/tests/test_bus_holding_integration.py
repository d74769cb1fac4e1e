"""Events the bus holds instead of redelivering: a handler that says RetryLater, or a database
that is down. Neither counts toward consumer_max_deliver, so neither becomes a dead letter while
the wait is shorter than consumer_retry_later_max_seconds (the chaos suite found both: a killed
consumer's unacked events come back only after AckWait, and PostgreSQL may take longer to come
back than the whole back-off)."""

from __future__ import annotations

from typing import Any

import nats
import pytest
from sqlalchemy import Column, MetaData, String, Table, func, insert, select

from crm.sales.v1 import events_pb2
from crm_kit.bus import EventBus
from crm_kit.db import Database, UnitOfWork
from crm_kit.events import Envelope, RetryLater
from crm_kit.settings import ServiceSettings
from crm_kit.tables import MessagingTables
from crm_kit.testing import eventually, publish_event, reset_stream

pytestmark = pytest.mark.integration

metadata = MetaData()
tables = MessagingTables(metadata)
effects = Table("held_effects", metadata, Column("deal_id", String(64), primary_key=True))


async def started_bus(fresh_database: Any, nats_url: str, handler: Any, **overrides: Any) -> tuple[EventBus, Database]:
    await reset_stream(nats_url)
    settings = ServiceSettings(
        service_name="kithold",
        database_url=await fresh_database("kithold"),
        nats_url=nats_url,
        consumer_backoff_seconds=[0.05],
        consumer_max_deliver=2,
        **overrides,
    )
    db = Database(settings.database_url, tables, source="/crm/kithold")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    bus = EventBus(settings, db)
    bus.subscribe(events_pb2.DealClosed, handler)
    await bus.connect()
    await bus.start_consumers()
    return bus, db


async def count(db: Database, table: Table) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def redelivered(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info("CRM", "kithold-from-sales")
    finally:
        await nc.close()
    return int(info.num_redelivered or 0)


@pytest.mark.parametrize(
    "outage",
    [
        pytest.param(lambda: RetryLater("the lead is not known here yet"), id="retry-later"),
        pytest.param(lambda: ConnectionRefusedError(111, "Connection refused"), id="database-down"),
    ],
)
async def test_a_held_event_outlasts_max_deliver_and_takes_effect_once(fresh_database, nats_server, outage) -> None:
    tries: list[str] = []

    async def not_before_the_sixth_try(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        tries.append(envelope.id)
        if len(tries) < 6:  # three times consumer_max_deliver
            raise outage()
        await uow.conn.execute(insert(effects).values(deal_id=envelope.message.deal_id))

    bus, db = await started_bus(fresh_database, nats_server, not_before_the_sixth_try)
    try:
        await publish_event(nats_server, events_pb2.DealClosed(deal_id="held"))

        async def done() -> bool:
            return await count(db, effects) == 1

        await eventually(done, timeout=30)
        assert len(tries) == 6
        assert await count(db, tables.dead_letters) == 0
        assert await redelivered(nats_server) == 0  # held, never handed back to the server
    finally:
        await bus.stop(1)
        await db.dispose()


async def test_an_event_never_ready_is_dead_lettered_after_the_longest_wait(fresh_database, nats_server) -> None:
    async def never(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        raise RetryLater("the lead never comes")

    bus, db = await started_bus(fresh_database, nats_server, never, consumer_retry_later_max_seconds=0.5)
    try:
        event_id = await publish_event(nats_server, events_pb2.DealClosed(deal_id="orphan"))

        async def letter() -> Any:
            async with db.engine.connect() as conn:
                return (await conn.execute(select(tables.dead_letters))).first()

        row = await eventually(letter, timeout=30)
        assert (row.event_id, row.deliveries) == (event_id, 1)
        assert "not ready after waiting" in row.error and "the lead never comes" in row.error
    finally:
        await bus.stop(1)
        await db.dispose()
