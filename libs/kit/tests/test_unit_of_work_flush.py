"""The unit of work writes its events and audit records before commit: both in one statement when
it has both (one round trip fewer for most commands), the events in the order recorded (the relay
publishes by id), the rows exactly as the single-table statements write them. Real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import MetaData, event, select

from crm.sales.v1 import events_pb2
from crm_kit import caller
from crm_kit.db import Database
from crm_kit.tables import MessagingTables

pytestmark = pytest.mark.integration

metadata = MetaData()
tables = MessagingTables(metadata)


@pytest.fixture
async def db(fresh_database: Any) -> AsyncIterator[Database]:
    database = Database(await fresh_database("flushtest"), tables, source="/crm/flushtest")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


def counting(database: Database) -> list[str]:
    """Every statement the engine sends from now on."""
    sent: list[str] = []
    event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    return sent


async def rows(database: Database) -> tuple[list[Any], list[Any]]:
    async with database.unit_of_work() as uow:
        outbox = (await uow.conn.execute(select(tables.outbox).order_by(tables.outbox.c.id))).all()
        audit = (await uow.conn.execute(select(tables.audit_log).order_by(tables.audit_log.c.id))).all()
    return list(outbox), list(audit)


async def test_events_and_audit_go_in_one_statement_in_the_order_recorded(db: Database) -> None:
    sent = counting(db)
    with caller.acting_as("rina", "req-7"):
        async with db.unit_of_work() as uow:
            ids = [await uow.record_event(events_pb2.DealClosed(deal_id=f"d-{n}", won=True)) for n in range(3)]
            uow.audit("sales.CloseDeal", "deal", "d-0", {"won": True, "note": "ספה", 7: "int key"})
            uow.audit("sales.CloseDeal", "deal", "d-1", {})
    writes = [s for s in sent if s.lstrip().upper().startswith(("INSERT", "WITH"))]
    assert len(writes) == 1, writes

    outbox, audit = await rows(db)
    assert [r.event_id for r in outbox] == ids
    assert [events_pb2.DealClosed.FromString(r.payload).deal_id for r in outbox] == ["d-0", "d-1", "d-2"]
    assert {r.subject for r in outbox} == {"crm.sales.deal_closed"}
    assert outbox[0].headers["ce-type"] == "crm.sales.v1.DealClosed" and outbox[0].headers["ce-id"] == ids[0]
    assert [(r.actor, r.request_id, r.action, r.record_id) for r in audit] == [
        ("rina", "req-7", "sales.CloseDeal", "d-0"),
        ("rina", "req-7", "sales.CloseDeal", "d-1"),
    ]
    assert audit[0].details == {"won": True, "note": "ספה", "7": "int key"} and audit[1].details == {}


async def test_events_alone_or_audit_alone_and_a_rollback_write_nothing_more(db: Database) -> None:
    async with db.unit_of_work() as uow:
        await uow.record_event(events_pb2.DealClosed(deal_id="only-event"))
    async with db.unit_of_work() as uow:
        uow.audit("sales.Note", "deal", "only-audit")
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            await uow.record_event(events_pb2.DealClosed(deal_id="rolled-back"))
            uow.audit("sales.Note", "deal", "rolled-back")
            raise RuntimeError("the command failed")
    outbox, audit = await rows(db)
    assert [events_pb2.DealClosed.FromString(r.payload).deal_id for r in outbox] == ["only-event"]
    assert [r.record_id for r in audit] == ["only-audit"]
