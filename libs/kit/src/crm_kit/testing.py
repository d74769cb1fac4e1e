"""Helpers for a service's integration tests: run the real service in process against real
PostgreSQL and NATS (URLs from the crm_devstack pytest fixtures)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import nats
from google.protobuf.message import Message
from nats.js.errors import NotFoundError

from crm.admin.v1 import admin_pb2_grpc, audit_pb2_grpc
from crm_kit import audit, dead_letters, migrations
from crm_kit.bus import EventBus, provision_streams
from crm_kit.db import Database
from crm_kit.errors import remote_field_violations
from crm_kit.events import ce_headers, new_event_id, subject_for
from crm_kit.grpc_client import channel
from crm_kit.grpc_server import GrpcServer
from crm_kit.service import Service
from crm_kit.settings import ServiceSettings
from crm_kit.tables import MessagingTables

# A call's deadline in an integration test. Production channels default to 5 s; the tests share a
# 2-core CI machine with PostgreSQL, NATS and every other service under test, where a call that
# takes 0.2 s alone has been seen to wait past 5 s. A deadline is not what these tests check (the
# tests of deadlines set their own), so a stall fails them only when it is a hang.
TEST_CALL_TIMEOUT_SECONDS = 30.0


def local_channel(port: int) -> grpc.aio.Channel:
    """A chassis channel to a service under test on 127.0.0.1 (trace, caller and deadline
    interceptors as in production), with the tests' deadline."""
    return channel(f"127.0.0.1:{port}", default_timeout=TEST_CALL_TIMEOUT_SECONDS)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def provision(nats_url: str) -> None:
    """Create the CRM stream and the Idempotency-Key bucket as the provisioner does before the
    services start (a service only checks that its stream exists). `nats_url` carries an identity
    allowed to (the test server's admin)."""
    await provision_streams(ServiceSettings(service_name="test-provisioner", nats_url=nats_url))


async def reset_stream(nats_url: str, stream: str = "CRM") -> None:
    """Delete the stream (and with it every durable consumer) and provision it again, so a test
    starts clean."""
    nc = await nats.connect(nats_url)
    try:
        try:
            await nc.jetstream().delete_stream(stream)
        except NotFoundError:
            pass
    finally:
        await nc.close()
    await provision(nats_url)


async def migrate(migrations_dir: Path, database_url: str) -> None:
    # Alembic's env runs its own event loop: keep it off this one.
    await asyncio.to_thread(migrations.upgrade, migrations_dir, database_url)


@asynccontextmanager
async def migrated_database(
    database_url: str, migrations_dir: Path, tables: MessagingTables, *, service: str
) -> AsyncIterator[Database]:
    """A Database on database_url with the service's migrations applied, disposed afterwards
    (for tests that call a service's commands and handlers without running the service)."""
    await migrate(migrations_dir, database_url)
    database = Database(database_url, tables, source=f"/crm/{service}")
    try:
        yield database
    finally:
        await database.dispose()


@asynccontextmanager
async def running_service(
    settings: ServiceSettings,
    tables: MessagingTables,
    migrations_dir: Path,
    setup: Callable[[Service], Awaitable[None]],
) -> AsyncIterator[Service]:
    """Migrate, start the service (gRPC, relay, consumers) in this loop, stop it afterwards."""
    await migrate(migrations_dir, settings.database_url)
    service = Service(settings, tables)
    started = asyncio.Event()
    task = asyncio.create_task(service.serve(setup, started=started, handle_signals=False))
    waiter = asyncio.create_task(started.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the start-up error
    if waiter not in done:
        task.cancel()
        raise TimeoutError("service did not start within 30 s")
    try:
        yield service
    finally:
        service.request_stop()
        await asyncio.wait_for(task, timeout=30)


@asynccontextmanager
async def admin_server(db: Database, bus: EventBus, *, error_domain: str = "crm.test") -> AsyncIterator[str]:
    """A real gRPC server (the chassis interceptor included) serving only the chassis' admin
    services, DeadLetterService and AuditService, over db and bus on a free port; yields its address."""
    port = free_port()
    server = GrpcServer(port, error_domain, checks=[db.ping])
    server.add(
        admin_pb2_grpc.add_DeadLetterServiceServicer_to_server,
        dead_letters.DeadLetterServicer(db, bus),
        dead_letters.SERVICE_NAME,
    )
    server.add(audit_pb2_grpc.add_AuditServiceServicer_to_server, audit.AuditServicer(db), audit.SERVICE_NAME)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


dead_letter_server = admin_server  # the name the dead-letter tests use


async def publish_event(
    nats_url: str, message: Message, *, event_id: str | None = None, source: str = "/crm/test", **extra: Any
) -> str:
    """Publish an event as a producer's outbox relay would (CloudEvents headers, Nats-Msg-Id)."""
    from datetime import UTC, datetime

    event_id = event_id or new_event_id()
    headers = ce_headers(event_id, message, source, datetime.now(UTC))
    headers.update({k: str(v) for k, v in extra.items()})
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(subject_for(type(message)), message.SerializeToString(), headers=headers)
    finally:
        await nc.close()
    return event_id


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.1) -> Any:  # noqa: ASYNC109
    """Poll check() until it returns a truthy value or raise AssertionError with the last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """Field → description of the violations an INVALID_ARGUMENT names in its google.rpc.BadRequest."""
    return dict(remote_field_violations(error))


def violated_fields(error: grpc.aio.AioRpcError) -> set[str]:
    """The fields an INVALID_ARGUMENT names in its google.rpc.BadRequest details."""
    return set(field_violations(error))
