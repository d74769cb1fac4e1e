"""The chassis' gRPC server: a database outage is UNAVAILABLE (retry later), a bug is INTERNAL."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy import MetaData, text

from crm_kit.db import Database
from crm_kit.grpc_server import GrpcServer
from crm_kit.tables import MessagingTables
from crm_kit.testing import free_port

pytestmark = pytest.mark.integration

SERVICE = "crm.test.v1.Errors"


async def test_a_database_outage_is_unavailable_and_a_bug_is_internal() -> None:
    # Nothing listens on this port: every connection attempt is refused, as when PostgreSQL is down.
    down = Database(f"postgresql+asyncpg://crm@127.0.0.1:{free_port()}/crm", MessagingTables(MetaData()), source="/t")

    async def query(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
        async with down.unit_of_work() as uow:
            await uow.conn.execute(text("SELECT 1"))
        return request

    async def bug(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
        raise RuntimeError("a bug")

    def unary(fn: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=StringValue.FromString, response_serializer=StringValue.SerializeToString
        )

    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[])
    handler = grpc.method_handlers_generic_handler(SERVICE, {"Query": unary(query), "Bug": unary(bug)})
    server.add(lambda h, s: s.add_generic_rpc_handlers((h,)), handler, SERVICE)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            codes = {}
            for name in ("Query", "Bug"):
                call = ch.unary_unary(
                    f"/{SERVICE}/{name}",
                    request_serializer=StringValue.SerializeToString,
                    response_deserializer=StringValue.FromString,
                )
                with pytest.raises(grpc.aio.AioRpcError) as failed:
                    await call(StringValue(value="x"), timeout=10)
                codes[name] = (failed.value.code(), failed.value.details())
    finally:
        await server.stop(0)
        await down.dispose()

    assert codes["Query"] == (grpc.StatusCode.UNAVAILABLE, "database unavailable; retry later")
    assert codes["Bug"] == (grpc.StatusCode.INTERNAL, "internal error")


async def test_a_deadlocked_handler_runs_again_and_both_calls_succeed(fresh_database: Any) -> None:
    db = Database(await fresh_database("kitdeadlock"), MessagingTables(MetaData()), source="/t")
    async with db.unit_of_work() as uow:
        await uow.conn.execute(text("CREATE TABLE pair (id int PRIMARY KEY, n int NOT NULL)"))
        await uow.conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
    attempts: list[str] = []
    both_hold_one = asyncio.Barrier(2)

    def locking(first: int, second: int) -> Any:
        async def handler(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
            attempts.append(request.value)
            async with db.unit_of_work() as uow:
                await uow.conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :id"), {"id": first})
                if len(attempts) <= 2:  # the first two attempts meet: each holds one row, wants the other
                    await both_hold_one.wait()
                await uow.conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :id"), {"id": second})
            return request

        return handler

    def unary(fn: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=StringValue.FromString, response_serializer=StringValue.SerializeToString
        )

    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[])
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"OneThenTwo": unary(locking(1, 2)), "TwoThenOne": unary(locking(2, 1))}
    )
    server.add(lambda h, s: s.add_generic_rpc_handlers((h,)), handler, SERVICE)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:

            def call(name: str) -> Any:
                return ch.unary_unary(
                    f"/{SERVICE}/{name}",
                    request_serializer=StringValue.SerializeToString,
                    response_deserializer=StringValue.FromString,
                )(StringValue(value=name), timeout=20)

            replies = await asyncio.gather(call("OneThenTwo"), call("TwoThenOne"))
        async with db.unit_of_work() as uow:
            counts = dict((await uow.conn.execute(text("SELECT id, n FROM pair"))).all())
    finally:
        await server.stop(0)
        await db.dispose()

    assert sorted(r.value for r in replies) == ["OneThenTwo", "TwoThenOne"]
    # PostgreSQL broke the deadlock by rolling one back; that one ran a second time; each row was
    # updated once per successful call, the rolled-back attempt left nothing.
    assert len(attempts) == 3
    assert counts == {1: 2, 2: 2}


async def test_a_failing_readiness_check_leaves_liveness_serving() -> None:
    """Readiness (service "" and each servicer) follows the checks — a database that stops
    answering, then answers again; liveness stays SERVING throughout: an outage takes a pod out of
    its Service, it never gets it restarted."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from crm_kit.grpc_server import LIVENESS

    database_answers = False

    async def database() -> bool:
        return database_answers

    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[database])
    server.add(lambda h, s: None, None, SERVICE)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)

            async def status(name: str) -> int:
                return int((await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)).status)

            serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
            await asyncio.sleep(0.5)
            assert [await status(n) for n in ("", SERVICE, LIVENESS)] == [not_serving, not_serving, serving]
            database_answers = True
            for _ in range(50):
                if await status("") == serving:
                    break
                await asyncio.sleep(0.1)
            assert [await status(n) for n in ("", SERVICE, LIVENESS)] == [serving, serving, serving]
    finally:
        await server.stop(0)
