"""Dead letters over gRPC against real PostgreSQL, JetStream and a grpc.aio server: a failing
event is listed with its error, shown with its payload, replayed once with one effect, and a
second replay or an unknown id is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import nats
import pytest
from sqlalchemy import Column, MetaData, String, Table, func, insert, select

from crm.admin.v1 import admin_pb2, admin_pb2_grpc
from crm.sales.v1 import events_pb2
from crm_kit.bus import EventBus
from crm_kit.db import Database, UnitOfWork
from crm_kit.events import Envelope
from crm_kit.grpc_client import channel
from crm_kit.settings import ServiceSettings
from crm_kit.tables import MessagingTables
from crm_kit.testing import dead_letter_server, eventually, publish_event, reset_stream

pytestmark = pytest.mark.integration

metadata = MetaData()
tables = MessagingTables(metadata)
effects = Table("effects", metadata, Column("deal_id", String(64), primary_key=True))
failing = {"on": True}


async def record_effect(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
    if failing["on"]:
        raise RuntimeError("warehouse system is down")
    await uow.conn.execute(insert(effects).values(deal_id=envelope.message.deal_id))


async def count(db: Database, table: Table) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def failing_consumer(database_url: str, nats_url: str, service: str = "dlqtest") -> tuple[Database, EventBus]:
    """A service whose DealClosed consumer fails until `failing` is switched off: 3 deliveries, then a letter."""
    settings = ServiceSettings(
        service_name=service,
        database_url=database_url,
        nats_url=nats_url,
        consumer_backoff_seconds=[0.05],
        consumer_max_deliver=3,
    )
    db = Database(settings.database_url, tables, source=f"/crm/{service}")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    bus = EventBus(settings, db)
    bus.subscribe(events_pb2.DealClosed, record_effect)
    await bus.connect()
    await bus.start_consumers()
    return db, bus


async def assert_listed(stub: admin_pb2_grpc.DeadLetterServiceStub, event_id: str) -> admin_pb2.DeadLetter:
    """The one open letter, with its consumer, subject, event, deliveries and error; returned."""
    listed = await stub.ListDeadLetters(admin_pb2.ListDeadLettersRequest())
    assert len(listed.dead_letters) == 1 and listed.next_page_token == ""
    letter = listed.dead_letters[0]
    assert letter.consumer == "dlqtest-deal-closed"
    assert letter.subject == "crm.sales.deal_closed"
    assert letter.event_id == event_id
    assert letter.deliveries == 3
    assert "warehouse system is down" in letter.error
    assert letter.HasField("create_time") and not letter.HasField("replay_time")
    other = await stub.ListDeadLetters(admin_pb2.ListDeadLettersRequest(consumer="someone-else"))
    assert list(other.dead_letters) == []
    return letter


async def assert_replayed_once(
    stub: admin_pb2_grpc.DeadLetterServiceStub, db: Database, letter: admin_pb2.DeadLetter
) -> None:
    """Replayed with the consumer healthy again: one effect, no new letter, listed only as replayed."""
    failing["on"] = False
    replayed = (await stub.ReplayDeadLetter(admin_pb2.ReplayDeadLetterRequest(dead_letter_id=letter.id))).dead_letter
    assert replayed.HasField("replay_time")
    assert await eventually(lambda: count(db, effects), timeout=15) == 1
    await asyncio.sleep(1)  # a second effect or a new letter would show up by now
    assert await count(db, effects) == 1
    assert await count(db, tables.dead_letters) == 1

    assert list((await stub.ListDeadLetters(admin_pb2.ListDeadLettersRequest())).dead_letters) == []
    everything = await stub.ListDeadLetters(admin_pb2.ListDeadLettersRequest(include_replayed=True))
    assert [d.id for d in everything.dead_letters] == [letter.id]
    assert everything.dead_letters[0].HasField("replay_time")


async def test_dead_letter_is_listed_shown_and_replayed_once(fresh_database, nats_server) -> None:
    await reset_stream(nats_server)
    failing["on"] = True
    db, bus = await failing_consumer(await fresh_database("dlqtest"), nats_server)
    event = events_pb2.DealClosed(deal_id="deal-42")
    event_id = await publish_event(nats_server, event)
    try:
        assert await eventually(lambda: count(db, tables.dead_letters), timeout=30) == 1
        async with dead_letter_server(db, bus) as address, channel(address) as ch:
            stub = admin_pb2_grpc.DeadLetterServiceStub(ch)
            letter = await assert_listed(stub, event_id)

            shown = (await stub.GetDeadLetter(admin_pb2.GetDeadLetterRequest(dead_letter_id=letter.id))).dead_letter
            assert events_pb2.DealClosed.FromString(shown.payload) == event
            assert shown.headers["ce-id"] == event_id
            assert shown.headers["ce-type"] == "crm.sales.v1.DealClosed"

            await assert_replayed_once(stub, db, letter)

            with pytest.raises(grpc.aio.AioRpcError) as again:
                await stub.ReplayDeadLetter(admin_pb2.ReplayDeadLetterRequest(dead_letter_id=letter.id))
            assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            for call in (
                stub.GetDeadLetter(admin_pb2.GetDeadLetterRequest(dead_letter_id=letter.id + 1000)),
                stub.ReplayDeadLetter(admin_pb2.ReplayDeadLetterRequest(dead_letter_id=letter.id + 1000)),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await call
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await bus.stop(1)
        await db.dispose()


async def test_list_is_newest_first_and_paginates(fresh_database, nats_server) -> None:
    settings = ServiceSettings(
        service_name="dlqpage", database_url=await fresh_database("dlqpage"), nats_url=nats_server
    )
    db = Database(settings.database_url, tables, source="/crm/dlqpage")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            insert(tables.dead_letters),
            [
                {
                    "consumer": "a-x" if i % 2 else "b-x",
                    "subject": "crm.test.thing",
                    "event_id": f"e{i}",
                    "headers": {"ce-id": f"e{i}"},
                    "payload": b"\x00",
                    "error": "boom",
                    "deliveries": 5,
                }
                for i in range(5)
            ],
        )
    bus = EventBus(settings, db)  # never connected: listing needs only the database
    try:
        async with dead_letter_server(db, bus) as address, channel(address) as ch:
            stub = admin_pb2_grpc.DeadLetterServiceStub(ch)
            seen: list[str] = []
            token = ""
            while True:
                page = await stub.ListDeadLetters(admin_pb2.ListDeadLettersRequest(page_size=2, page_token=token))
                seen += [d.event_id for d in page.dead_letters]
                token = page.next_page_token
                if not token:
                    break
            assert seen == ["e4", "e3", "e2", "e1", "e0"]
            only_a = await stub.ListDeadLetters(admin_pb2.ListDeadLettersRequest(consumer="a-x"))
            assert [d.event_id for d in only_a.dead_letters] == ["e3", "e1"]
            with pytest.raises(grpc.aio.AioRpcError) as unavailable:
                await stub.ReplayDeadLetter(admin_pb2.ReplayDeadLetterRequest(dead_letter_id=1))
            assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await db.dispose()


async def test_a_replay_failing_again_is_a_new_letter_even_when_it_outruns_the_commit(
    fresh_database, nats_server, monkeypatch
) -> None:
    """The replay reaches the consumer, fails and is dead-lettered while ReplayDeadLetter has not
    committed yet (its publish ack returns late, as on a loaded machine). The new letter must not
    meet the replayed one still open: that insert would be a conflict, DO NOTHING, and the
    replay lost (CI saw it once)."""
    await reset_stream(nats_server)
    # A poison body is dead-lettered at once, whatever the handler would do.
    db, bus = await failing_consumer(await fresh_database("dlqpoison"), nats_server, "dlqpoison")
    publish = bus.publish_raw

    async def slow_ack(subject: str, payload: bytes, headers: dict[str, str]) -> None:
        await publish(subject, payload, headers)
        # Long enough for the consumer to fetch the replay and try to record it again.
        await asyncio.sleep(1.5)

    monkeypatch.setattr(bus, "publish_raw", slow_ack)
    nc = await nats.connect(nats_server)
    try:
        await nc.jetstream().publish(
            "crm.sales.deal_closed", b"\xff not a protobuf", headers={"Nats-Msg-Id": "poison-1", "ce-id": "poison-1"}
        )
    finally:
        await nc.close()
    try:
        async with dead_letter_server(db, bus) as address, channel(address) as ch:
            stub = admin_pb2_grpc.DeadLetterServiceStub(ch)

            async def open_letters() -> list[admin_pb2.DeadLetter]:
                return list((await stub.ListDeadLetters(admin_pb2.ListDeadLettersRequest())).dead_letters)

            [first] = await eventually(open_letters, timeout=30)
            for _ in range(2):
                await stub.ReplayDeadLetter(admin_pb2.ReplayDeadLetterRequest(dead_letter_id=first.id))

                async def next_letter(after: int = first.id) -> list[admin_pb2.DeadLetter]:
                    return [d for d in await open_letters() if d.id > after]

                [again] = await eventually(next_letter, timeout=30)
                assert again.event_id == "poison-1" and again.payload == b"\xff not a protobuf"
                first = again
            everything = await stub.ListDeadLetters(admin_pb2.ListDeadLettersRequest(include_replayed=True))
            assert len(everything.dead_letters) == 3
            assert [d.HasField("replay_time") for d in everything.dead_letters] == [False, True, True]
    finally:
        await bus.stop(1)
        await db.dispose()
