"""The service runner: one call wires a backend service and runs it until SIGTERM.

`main()` of every service is `run_cli(...)`: `migrate` upgrades its database, `serve` runs
it: metrics endpoint, gRPC server (ready — health "" SERVING — while its own PostgreSQL answers
and the stream is as this release needs it; a NATS outage is no condition: the outbox keeps
events while it is away; "liveness" SERVING while the process serves) with the
service's own servicers plus the chassis's DeadLetterService (`crm_kit.dead_letters`) and
AuditService (`crm_kit.audit`), plaintext or (m)TLS per `ServiceSettings.grpc_tls()`, outbox
relay and durable consumers; on SIGTERM/SIGINT it stops taking work, drains in-flight
handlers, flushes the relay and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import grpc

from crm.admin.v1 import admin_pb2_grpc, audit_pb2_grpc
from crm_kit import audit, dead_letters, grpc_client, metrics, migrations, telemetry
from crm_kit.bus import ConsumersNotProvisioned, EventBus, StreamMismatch, StreamNotProvisioned
from crm_kit.db import Database
from crm_kit.grpc_server import GrpcServer
from crm_kit.logs import setup_logging
from crm_kit.outbox import OutboxRelay
from crm_kit.settings import ServiceSettings
from crm_kit.tables import MessagingTables

log = logging.getLogger(__name__)
PERIODIC_RUNS = metrics.PERIODIC_RUNS


class Service:
    """The parts of a running backend service, handed to its setup function."""

    def __init__(self, settings: ServiceSettings, tables: MessagingTables) -> None:
        self.settings = settings
        self.db = Database(
            settings.database_url, tables, source=f"/crm/{settings.service_name}", pool_size=settings.db_pool_size
        )
        self.bus = EventBus(settings, self.db)
        self.relay = OutboxRelay(
            self.db, self.bus, batch_size=settings.outbox_batch_size, poll_seconds=settings.outbox_poll_seconds
        )
        tls = settings.grpc_tls()
        if settings.environment == "production" and tls is not None and tls.ca_file:
            if not settings.grpc_allowed_client_names:
                # mTLS alone lets every certificate of the CA in, and believe its x-crm-actor.
                raise ValueError("production with mTLS needs CRM_GRPC_ALLOWED_CLIENT_NAMES (the callers' SANs)")
        self.grpc = GrpcServer(
            settings.grpc_port,
            f"crm.{settings.service_name}",
            # Its own database: a NATS outage leaves commands working (their events wait in the
            # outbox) and consumers catch up when it returns. And a stream as this release needs it:
            # a mismatch is a deployment's error (a rollout stops on it), not an outage.
            [self.db.ping, self._stream_as_needed],
            tls=tls,
            host=settings.grpc_host,
            allowed_client_names=settings.grpc_allowed_client_names,
            max_message_bytes=settings.grpc_max_message_bytes,
        )
        # Every service's dead letters are listable and replayable on its own port (crm-admin dlq).
        self.grpc.add(
            admin_pb2_grpc.add_DeadLetterServiceServicer_to_server,
            dead_letters.DeadLetterServicer(self.db, self.bus),
            dead_letters.SERVICE_NAME,
        )
        # And its audit log (crm-admin audit list).
        self.grpc.add(
            audit_pb2_grpc.add_AuditServiceServicer_to_server, audit.AuditServicer(self.db), audit.SERVICE_NAME
        )
        self._cleanups: list[Callable[[], Awaitable[None]]] = []
        self._periodic: list[tuple[str, float, Callable[[], Awaitable[object]], bool]] = []
        self._stopping = asyncio.Event()

    async def _stream_as_needed(self) -> bool:
        return not self.bus.stream_problem

    def channel(self, address: str) -> grpc.aio.Channel:
        """A chassis channel to another service with this service's client timeout and TLS
        settings; closed on shutdown."""
        ch = grpc_client.channel(
            address, default_timeout=self.settings.grpc_client_timeout_seconds, tls=self.settings.grpc_tls()
        )
        self.on_shutdown(ch.close)
        return ch

    def run_periodically(
        self, name: str, interval_seconds: float, job: Callable[[], Awaitable[object]], *, wait_first: bool = False
    ) -> None:
        """Run job every interval_seconds while the service runs (from when it consumes until
        shutdown begins; with wait_first, the first run one interval after the start). A failing
        run is logged and counted, and the next one runs as usual; jobs must be safe with several
        replicas running them at once (e.g. SKIP LOCKED)."""
        self._periodic.append((name, interval_seconds, job, wait_first))

    async def _run_job(
        self, name: str, interval_seconds: float, job: Callable[[], Awaitable[object]], wait_first: bool
    ) -> None:
        if wait_first:
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=interval_seconds)
                return
            except TimeoutError:
                pass
        while not self._stopping.is_set():
            try:
                await job()
                PERIODIC_RUNS.labels(name, "ok").inc()
            except asyncio.CancelledError:
                raise
            except Exception:
                PERIODIC_RUNS.labels(name, "error").inc()
                log.exception("periodic job failed", extra={"job": name})
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=interval_seconds)
            except TimeoutError:
                pass

    def on_shutdown(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run cleanup (close a channel, an HTTP client) after the service stopped taking work."""
        self._cleanups.append(cleanup)

    async def _connect_bus(self, stopping: asyncio.Event) -> None:
        delay = 0.2
        while not stopping.is_set():
            try:
                await self.bus.connect()
                await self.bus.start_consumers()
                return
            except (StreamNotProvisioned, ConsumersNotProvisioned) as exc:
                log.warning("waiting for the provisioner", extra={"error": str(exc), "retry_in_s": delay})
            except StreamMismatch as exc:
                log.error("not ready: the stream is not as this release needs it", extra={"error": str(exc)})
            except Exception as exc:
                log.warning("NATS not reachable yet; retrying", extra={"error": repr(exc), "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)

    def request_stop(self) -> None:
        self._stopping.set()

    async def serve(
        self,
        setup: Callable[[Service], Awaitable[None]],
        *,
        started: asyncio.Event | None = None,
        handle_signals: bool = True,
    ) -> None:
        """Run until SIGTERM/SIGINT (or request_stop); `started` is set once consuming."""
        stopping = self._stopping
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stopping.set)
        await setup(self)
        await self.grpc.start()
        log.info("gRPC listening", extra={"host": self.settings.grpc_host, "port": self.settings.grpc_port})
        await self._connect_bus(stopping)
        relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")
        jobs = [asyncio.create_task(self._run_job(*spec), name=spec[0]) for spec in self._periodic]
        if started is not None:
            started.set()
        await stopping.wait()

        log.info("shutting down: draining")
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await self.grpc.stop(self.settings.shutdown_grace_seconds)
        # Handlers first (they may commit events), then the relay's last flush, then NATS.
        await self.bus.stop_consuming(self.settings.shutdown_grace_seconds)
        await self.relay.stop()
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
        await self.bus.close()
        for cleanup in self._cleanups:
            await cleanup()
        await self.db.dispose()
        log.info("stopped")


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run main on uvloop (measured faster here: bench/README.md), else the default loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def run_cli(
    settings_factory: Callable[[], ServiceSettings],
    tables: MessagingTables,
    migrations_dir: Path,
    setup: Callable[[Service], Awaitable[None]],
    jobs: Mapping[str, Callable[[Any], Coroutine[Any, Any, None]]] | None = None,
) -> None:
    """Entry point of a backend service: `migrate`, `serve` (the default), or one of its one-off
    `jobs` (run with the service's settings, e.g. a data copy during an upgrade)."""
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    settings = settings_factory()
    setup_logging(settings.service_name, settings.log_level, settings.access_log)
    if command == "migrate":
        migrations.upgrade(migrations_dir, settings.database_url)
        log.info("database migrated")
        return
    if jobs and command in jobs:
        run_event_loop(jobs[command](settings))
        return
    if command != "serve":
        raise SystemExit(f"usage: {sys.argv[0]} [{'|'.join(['serve', 'migrate', *(jobs or {})])}]")
    telemetry.setup_tracing(settings.service_name)
    metrics.serve_metrics(settings.metrics_port, host=settings.metrics_host)

    async def serve() -> None:
        # Built inside the loop: grpc.aio objects bind to the loop that creates them.
        await Service(settings, tables).serve(setup)

    run_event_loop(serve())
