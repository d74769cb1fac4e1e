"""crm-admin dlq and audit against a real DeadLetterService and AuditService (PostgreSQL, JetStream,
grpc.aio): list, show, replay (audited with the operator), the audit log with its filters, and exit
code 1 for an unknown id or a second replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from sqlalchemy import MetaData, insert, select

from crm.sales.v1 import events_pb2
from crm_admin.cli import main
from crm_kit.bus import EventBus
from crm_kit.db import Database
from crm_kit.settings import ServiceSettings
from crm_kit.tables import MessagingTables
from crm_kit.testing import admin_server, reset_stream

pytestmark = pytest.mark.integration

metadata = MetaData()
tables = MessagingTables(metadata)
PAYLOAD = events_pb2.DealClosed(deal_id="deal-7", lead_id="lead-7").SerializeToString()


@pytest.fixture
async def server(fresh_database, nats_server) -> AsyncIterator[tuple[str, Database, str]]:
    """A DeadLetterService over a database holding one dead letter; yields (address, db, nats url)."""
    await reset_stream(nats_server)
    settings = ServiceSettings(
        service_name="admintest", database_url=await fresh_database("admintest"), nats_url=nats_server
    )
    db = Database(settings.database_url, tables, source="/crm/admintest")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            insert(tables.dead_letters).values(
                consumer="orders-deal-closed",
                subject="crm.sales.deal_closed",
                event_id="evt-7",
                headers={"ce-id": "evt-7", "ce-type": "crm.sales.v1.DealClosed", "Nats-Msg-Id": "evt-7"},
                payload=PAYLOAD,
                error="RuntimeError('warehouse system is down')\nsecond line of the traceback",
                deliveries=5,
            )
        )
    bus = EventBus(settings, db)
    await bus.connect()
    try:
        async with admin_server(db, bus) as address:
            yield address, db, nats_server
    finally:
        await bus.stop(1)
        await db.dispose()


async def cli(*argv: str) -> int:
    # main() runs its own event loop (asyncio.run), as from a shell: keep it off the server's loop.
    return await asyncio.to_thread(main, list(argv))


async def test_list_show_replay(server, capsys) -> None:
    address, db, nats_url = server
    letter_id = 1

    assert await cli("dlq", "list", "--service", "orders", "--address", address) == 0
    out = capsys.readouterr().out
    header, row = out.strip().splitlines()
    assert header.split()[:4] == ["ID", "CONSUMER", "SUBJECT", "EVENT"]
    assert row.split()[:5] == [str(letter_id), "orders-deal-closed", "crm.sales.deal_closed", "evt-7", "5"]
    assert "RuntimeError('warehouse system is down')" in row and "second line" not in row

    assert await cli("dlq", "list", "--service", "orders", "--address", address, "--consumer", "nobody") == 0
    assert capsys.readouterr().out.strip() == "no dead letters in orders"

    assert await cli("dlq", "show", str(letter_id), "--service", "orders", "--address", address) == 0
    out = capsys.readouterr().out
    assert "consumer:   orders-deal-closed" in out
    assert "  ce-type: crm.sales.v1.DealClosed" in out
    assert f"payload: {len(PAYLOAD)} bytes" in out
    assert PAYLOAD[:16].hex(" ") in out
    assert "second line of the traceback" in out
    assert "replayed:   no" in out

    nc = await nats.connect(nats_url)
    try:
        # Under the replaying service's own subjects: its NATS user may not publish crm.sales.*.
        sub = await nc.jetstream().subscribe("crm.admintest.replays.orders-deal-closed", ordered_consumer=True)
        assert await cli("dlq", "replay", str(letter_id), "--service", "orders", "--address", address) == 0
        assert capsys.readouterr().out.strip() == (
            f"replayed dead letter {letter_id} of orders-deal-closed: "
            "event evt-7 (crm.sales.deal_closed) sent to it again"
        )
        msg = await sub.next_msg(timeout=5)
        assert msg.data == PAYLOAD
        assert msg.headers is not None and msg.headers["ce-id"] == "evt-7"
        assert msg.headers["Nats-Msg-Id"] != "evt-7"
    finally:
        await nc.close()
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(tables.dead_letters.c.replayed_at))).scalar_one() is not None

    assert await cli("dlq", "list", "--service", "orders", "--address", address) == 0
    assert capsys.readouterr().out.strip() == "no dead letters in orders"
    assert await cli("dlq", "list", "--service", "orders", "--address", address, "--all") == 0
    assert f"{letter_id} (replayed)" in capsys.readouterr().out

    assert await cli("dlq", "replay", str(letter_id), "--service", "orders", "--address", address) == 1
    err = capsys.readouterr().err
    assert "FAILED_PRECONDITION" in err and "already replayed" in err


async def test_audit_list_shows_who_replayed_a_dead_letter(monkeypatch, server, capsys) -> None:
    address, db, _ = server
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(tables.audit_log).values(
                actor="alice",
                action="orders.ShipOrder",
                record_type="order",
                record_id="order-1",
                request_id="req-1",
                details={"status": "shipped"},
            )
        )
    assert await cli("audit", "list", "--service", "orders", "--address", address, "--actor", "nobody") == 0
    assert capsys.readouterr().out.strip() == "no audit records in orders"

    monkeypatch.setenv("CRM_ADMIN_ACTOR", "operator:dana")
    assert await cli("dlq", "replay", "1", "--service", "orders", "--address", address) == 0
    capsys.readouterr()

    assert await cli("audit", "list", "--service", "orders", "--address", address) == 0
    header, replayed, shipped = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["ID", "TIME", "ACTOR", "ACTION", "RECORD", "REQUEST", "ID", "DETAILS"]
    assert replayed.split()[2:5] == ["operator:dana", "admin.ReplayDeadLetter", "dead_letter/1"]
    assert replayed.split()[5].startswith("crm-admin-")
    assert '"event_id": "evt-7"' in replayed
    assert shipped.split()[2:6] == ["alice", "orders.ShipOrder", "order/order-1", "req-1"]
    assert shipped.endswith('{"status": "shipped"}')

    assert await cli("audit", "list", "--service", "orders", "--address", address, "--record-type", "order") == 0
    assert "admin.ReplayDeadLetter" not in (out := capsys.readouterr().out) and "order/order-1" in out
    assert await cli("audit", "list", "--service", "orders", "--address", address, "--limit", "1") == 0
    out = capsys.readouterr().out
    assert "admin.ReplayDeadLetter" in out and "orders.ShipOrder" not in out and "--limit for more" in out


async def test_unknown_id_exits_1(server, capsys) -> None:
    address, _, _ = server
    assert await cli("dlq", "show", "999", "--service", "orders", "--address", address) == 1
    err = capsys.readouterr().err
    assert "NOT_FOUND" in err and "dead letter 999 not found" in err


async def test_address_defaults_from_settings(monkeypatch, server, capsys) -> None:
    address, _, _ = server
    monkeypatch.setenv("CRM_REPORTING_ADDR", address)
    assert await cli("dlq", "list", "--service", "reporting") == 0
    assert "orders-deal-closed" in capsys.readouterr().out


async def test_unreachable_service_exits_1(capsys) -> None:
    from crm_kit.testing import free_port

    address = f"127.0.0.1:{free_port()}"
    assert await cli("dlq", "list", "--service", "orders", "--address", address) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
