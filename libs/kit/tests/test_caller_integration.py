"""The caller and the deadline across a real grpc.aio server (the chassis interceptor) and the
chassis channel, against real PostgreSQL: the handler runs as the caller the client acted for, its
audit record names them and AuditService lists it back; the budget caps the call's deadline, also
one hop further; event handlers are audited as the system."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy import MetaData, insert

from crm.admin.v1 import audit_pb2, audit_pb2_grpc
from crm.sales.v1 import events_pb2
from crm_kit import audit, caller
from crm_kit.bus import EventBus
from crm_kit.db import Database, UnitOfWork
from crm_kit.events import Envelope
from crm_kit.grpc_client import channel, deadline_after
from crm_kit.grpc_server import GrpcServer
from crm_kit.settings import ServiceSettings
from crm_kit.tables import MessagingTables
from crm_kit.testing import eventually, free_port, publish_event, reset_stream

pytestmark = pytest.mark.integration

metadata = MetaData()
tables = MessagingTables(metadata)
PROBE = "crm.test.v1.Probe"
# grpc-timeout is sent rounded up to its unit; what the server computes may exceed the budget by that.
WIRE_ROUNDING = 0.01


@dataclass
class Seen:
    who: caller.Caller | None
    time_remaining: float | None  # the server's view of the call's deadline
    budget: float | None  # what the chassis gives outgoing calls from the handler


@dataclass
class Probe:
    """A test service: Change writes an audit record; Relay calls Change through a chassis channel."""

    db: Database
    address: str = ""
    seen: list[Seen] = field(default_factory=list)

    async def change(self, request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
        self.seen.append(Seen(caller.current(), context.time_remaining(), caller.remaining()))
        async with self.db.unit_of_work() as uow:
            uow.audit("test.Change", "thing", request.value, {"name": request.value, "note": "ספה"})
        return request

    async def relay(self, request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
        async with channel(self.address) as ch:  # the channel's own default timeout is 5 s
            return await method(ch, "Change")(request)

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(fn: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=StringValue.FromString, response_serializer=StringValue.SerializeToString
            )

        return grpc.method_handlers_generic_handler(PROBE, {"Change": unary(self.change), "Relay": unary(self.relay)})


def method(ch: grpc.aio.Channel, name: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return ch.unary_unary(
        f"/{PROBE}/{name}",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )


@pytest.fixture
async def probe(fresh_database) -> AsyncIterator[Probe]:
    db = Database(await fresh_database("callertest"), tables, source="/crm/callertest")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[db.ping])
    probe = Probe(db, address=f"127.0.0.1:{port}")
    server.add(lambda handler, s: s.add_generic_rpc_handlers((handler,)), probe.handler(), PROBE)
    server.add(audit_pb2_grpc.add_AuditServiceServicer_to_server, audit.AuditServicer(db), audit.SERVICE_NAME)
    await server.start()
    try:
        yield probe
    finally:
        await server.stop(0)
        await db.dispose()


async def test_the_handler_acts_for_the_caller_and_its_audit_record_names_them(probe) -> None:
    async with channel(probe.address) as ch:
        with caller.acting_as("alice", "req-1"):
            await method(ch, "Change")(StringValue(value="t-1"))
        assert caller.current() is None
        await method(ch, "Change")(StringValue(value="t-2"))  # no caller: an operator's tool, a probe

        assert [s.who for s in probe.seen] == [caller.Caller("alice", "req-1"), caller.Caller("unknown", "")]

        stub = audit_pb2_grpc.AuditServiceStub(ch)
        listed = (await stub.ListAuditRecords(audit_pb2.ListAuditRecordsRequest())).audit_records
        assert [(r.actor, r.request_id, r.record_id) for r in listed] == [
            ("unknown", "", "t-2"),
            ("alice", "req-1", "t-1"),
        ]
        alice = listed[1]
        assert (alice.action, alice.record_type) == ("test.Change", "thing")
        assert json.loads(alice.details_json) == {"name": "t-1", "note": "ספה"}
        assert alice.HasField("create_time") and alice.id > 0

        only_alice = await stub.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(actor="alice"))
        assert [r.record_id for r in only_alice.audit_records] == ["t-1"]


async def test_a_request_id_outside_the_rule_never_reaches_the_audit_log(probe) -> None:
    """Any process may call a service: the chassis checks the request id it receives (not only the
    gateway), so a long or markup-laden one is dropped before the handler and its audit row."""
    async with channel(probe.address) as ch:
        for value in ("req <script>alert(1)</script>", "r" * 5000, 'a"b'):
            metadata = (("x-crm-actor", "alice"), ("x-request-id", value))
            await method(ch, "Change")(StringValue(value="t-bad"), metadata=metadata)
        stub = audit_pb2_grpc.AuditServiceStub(ch)
        listed = (await stub.ListAuditRecords(audit_pb2.ListAuditRecordsRequest())).audit_records

    assert [s.who for s in probe.seen] == [caller.Caller("alice", "")] * 3
    assert [(r.actor, r.request_id) for r in listed] == [("alice", "")] * 3


async def test_audit_list_is_newest_first_paginates_and_filters(probe) -> None:
    same_time = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    async with probe.db.engine.begin() as conn:
        await conn.execute(
            insert(tables.audit_log),
            [
                {
                    "actor": "alice" if i % 2 else "bob",
                    "action": "test.Change",
                    "record_type": "order" if i < 4 else "lead",
                    "record_id": f"r{i % 3}",
                    "request_id": f"req-{i}",
                    "details": {"i": i},
                    # Three records share a time: the id breaks the tie, newest (highest) first.
                    "created_at": same_time if i in (1, 2, 3) else datetime(2026, 11, 1, 11 + i, tzinfo=UTC),
                }
                for i in range(6)
            ],
        )
    async with channel(probe.address) as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)
        seen: list[str] = []
        token = ""
        while True:
            page = await stub.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(page_size=2, page_token=token))
            assert len(page.audit_records) <= 2
            seen += [r.request_id for r in page.audit_records]
            token = page.next_page_token
            if not token:
                break
        assert seen == ["req-5", "req-4", "req-3", "req-2", "req-1", "req-0"]

        orders = await stub.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(record_type="order", record_id="r0"))
        assert [r.request_id for r in orders.audit_records] == ["req-3", "req-0"]
        bobs = await stub.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(actor="bob", record_type="order"))
        assert [r.request_id for r in bobs.audit_records] == ["req-2", "req-0"]

        for bad in (
            audit_pb2.ListAuditRecordsRequest(page_token="not-a-token"),
            audit_pb2.ListAuditRecordsRequest(page_size=-1),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListAuditRecords(bad)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_budget_caps_the_deadline_also_one_hop_further(probe) -> None:
    async with channel(probe.address) as ch:  # default timeout 5 s
        await method(ch, "Change")(StringValue(value="no-budget"))
        free = probe.seen[-1]
        assert free.time_remaining is not None and free.time_remaining > 1  # the channel's default
        assert free.budget is not None and free.budget <= 5 + WIRE_ROUNDING  # restored for outgoing calls

        with deadline_after(0.2):
            await method(ch, "Change")(StringValue(value="budget"))
        capped = probe.seen[-1]
        assert capped.time_remaining is not None and 0 < capped.time_remaining <= 0.2 + WIRE_ROUNDING
        assert capped.budget is not None and 0 < capped.budget <= 0.2 + WIRE_ROUNDING

        # Relay's handler calls Change with its own 5 s default: the restored budget cuts it, and the
        # caller travels along.
        with caller.acting_as("carol", "req-9"), deadline_after(0.5):
            await method(ch, "Relay")(StringValue(value="hop"))
        hop = probe.seen[-1]
        assert hop.who == caller.Caller("carol", "req-9")
        assert hop.time_remaining is not None and 0 < hop.time_remaining <= 0.5 + WIRE_ROUNDING

        calls = len(probe.seen)
        with deadline_after(0), pytest.raises(grpc.aio.AioRpcError) as spent:
            await method(ch, "Change")(StringValue(value="too-late"))
        assert spent.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert len(probe.seen) == calls  # never sent


async def test_event_handlers_are_audited_as_the_system(fresh_database, nats_server) -> None:
    await reset_stream(nats_server)
    settings = ServiceSettings(
        service_name="systemtest", database_url=await fresh_database("systemtest"), nats_url=nats_server
    )
    db = Database(settings.database_url, tables, source="/crm/systemtest")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    seen: dict[str, caller.Caller | None] = {}

    async def handle(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        seen[envelope.id] = caller.current()
        uow.audit("test.OnDealClosed", "deal", envelope.message.deal_id)

    bus = EventBus(settings, db)
    bus.subscribe(events_pb2.DealClosed, handle)
    await bus.connect()
    # Published before the consumer starts (one batch), and one after (alone).
    ids = [await publish_event(nats_server, events_pb2.DealClosed(deal_id=f"d{i}")) for i in range(3)]
    await bus.start_consumers()
    ids.append(await publish_event(nats_server, events_pb2.DealClosed(deal_id="d3")))
    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[])
    server.add(audit_pb2_grpc.add_AuditServiceServicer_to_server, audit.AuditServicer(db), audit.SERVICE_NAME)
    await server.start()
    try:
        async with channel(f"127.0.0.1:{port}") as ch:
            stub = audit_pb2_grpc.AuditServiceStub(ch)

            async def records() -> list[audit_pb2.AuditRecord]:
                listed = (await stub.ListAuditRecords(audit_pb2.ListAuditRecordsRequest())).audit_records
                return list(listed) if len(listed) == 4 else []

            listed = await eventually(records)
        assert {(r.actor, r.request_id, r.record_id) for r in listed} == {
            ("system", event_id, f"d{i}") for i, event_id in enumerate(ids)
        }
        assert seen == {event_id: caller.Caller("system", event_id) for event_id in ids}
    finally:
        await server.stop(0)
        await bus.stop(1)
        await db.dispose()
