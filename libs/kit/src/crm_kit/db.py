"""Async SQLAlchemy (asyncpg) and the unit of work: one transaction per command or event.

The unit of work is the only place that commits. Events recorded in it are written to the
outbox in the same transaction, and the relay is woken after the commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from google.protobuf.message import Message
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from crm_kit import caller, telemetry
from crm_kit.events import ce_headers, new_event_id, subject_for
from crm_kit.tables import MessagingTables

# The width of audit_log.actor and audit_log.request_id (crm_kit.tables).
_AUDIT_TEXT_MAX = 200

# The server cannot be reached, is starting up or shutting down, or dropped the connection.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def database_unavailable(exc: BaseException) -> bool:
    """True when exc says the database was unavailable (down, restarting, recovering, connection
    lost), as SQLAlchemy or asyncpg raise it: an outage of the moment, nothing wrong with the
    work attempted. Only a database error (or a bare connection error, as a refused connect
    surfaces) qualifies; an error of another kind caused by a connection error does not."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        cause: BaseException | None = exc.orig
        while cause is not None:  # the driver's error and what it was raised from
            if isinstance(cause, _UNREACHABLE) or _closed_to_connections(cause):
                return True
            cause = cause.__cause__
        return False
    return isinstance(exc, _UNREACHABLE) or _closed_to_connections(exc)


def _closed_to_connections(exc: BaseException) -> bool:
    """The database is closed to new connections (ALLOW_CONNECTIONS false: maintenance, a fenced
    or moved database): SQLSTATE 55000 with PostgreSQL's message for it — the class alone also
    covers errors of the work (currval before nextval, a type in use), which are no outage."""
    return type(exc) is asyncpg.ObjectNotInPrerequisiteStateError and "accepting connections" in str(exc)


_CONFLICTS: tuple[type[BaseException], ...] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


def transaction_conflict(exc: BaseException) -> bool:
    """True when PostgreSQL rolled the transaction back to break a deadlock or a serialization
    conflict: nothing of it was written, and running the same work again is the remedy."""
    cause: BaseException | None = exc.orig if isinstance(exc, DBAPIError) else exc
    while cause is not None:
        if isinstance(cause, _CONFLICTS):
            return True
        cause = cause.__cause__
    return False


class Database:
    def __init__(self, url: str, tables: MessagingTables, *, source: str, pool_size: int = 10) -> None:
        # No pre-ping: it costs a round trip per transaction; a connection broken by a database
        # restart fails its transaction, which the caller retries (gRPC client, redelivery).
        # At most 2 × pool_size connections, all kept once opened: an overflow connection is
        # closed as soon as it is returned, so under load the pool opened and closed connections
        # all the time (a PostgreSQL backend started per burst; issue 16).
        self.engine: AsyncEngine = create_async_engine(url, pool_size=2 * pool_size, max_overflow=0, pool_recycle=1800)
        self.tables = tables
        self.source = source
        self._after_commit_with_events: list[Callable[[], None]] = []

    def on_events_committed(self, callback: Callable[[], None]) -> None:
        """Call callback after each commit that wrote outbox rows (the relay's wake-up)."""
        self._after_commit_with_events.append(callback)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with self.engine.connect() as conn:
            async with conn.begin():
                uow = UnitOfWork(conn, self)
                yield uow
                await uow.flush_events()
            for callback in uow.committed_callbacks:
                callback()
            if uow.recorded_events:
                for callback in self._after_commit_with_events:
                    callback()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("select 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()


def _as_arrays(events: list[dict[str, Any]], audit: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The parameters of `outbox_and_audit_insert`: one array per column (JSON columns as text)."""
    return {
        "event_ids": [e["event_id"] for e in events],
        "subjects": [e["subject"] for e in events],
        "event_types": [e["event_type"] for e in events],
        "payloads": [e["payload"] for e in events],
        "headers": [orjson.dumps(e["headers"]).decode() for e in events],
        "actors": [a["actor"] for a in audit],
        "request_ids": [a["request_id"] for a in audit],
        "actions": [a["action"] for a in audit],
        "record_types": [a["record_type"] for a in audit],
        "record_ids": [a["record_id"] for a in audit],
        "details": [orjson.dumps(a["details"], default=str, option=orjson.OPT_NON_STR_KEYS).decode() for a in audit],
    }


class UnitOfWork:
    """One database transaction. Repositories use `conn`; only the context manager commits."""

    def __init__(self, conn: AsyncConnection, db: Database) -> None:
        self.conn = conn
        self.db = db
        self.recorded_events = 0
        self._pending: list[dict[str, Any]] = []
        self._audit: list[dict[str, Any]] = []
        self.committed_callbacks: list[Callable[[], Any]] = []

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run callback once this transaction committed (e.g. count a business metric): a rolled
        back transaction, or a batch retried event by event, must not count twice."""
        self.committed_callbacks.append(callback)

    async def record_event(self, message: Message, *, time: datetime | None = None) -> str:
        """Add message to the outbox in this transaction (written before commit); returns the event id."""
        event_id = new_event_id()
        headers: dict[str, Any] = ce_headers(event_id, message, self.db.source, time or datetime.now(UTC))
        telemetry.inject_headers(headers)
        self._pending.append(
            {
                "event_id": event_id,
                "subject": subject_for(type(message)),
                "event_type": headers["ce-type"],
                "payload": message.SerializeToString(),
                "headers": headers,
            }
        )
        self.recorded_events += 1
        return event_id

    def audit(self, action: str, record_type: str, record_id: str, details: Mapping[str, Any] | None = None) -> None:
        """Record who changed what in the audit log, in this transaction (written before commit).

        The actor and request id come from the caller context (`crm_kit.caller`): the
        authenticated subject the gateway forwarded, or "system" in an event handler.
        """
        who = caller.current()
        # Both arrive as metadata from another process: cut to the column, never fail the change.
        self._audit.append(
            {
                "actor": (who.actor if who else caller.UNKNOWN_ACTOR)[:_AUDIT_TEXT_MAX],
                "request_id": (who.request_id if who else "")[:_AUDIT_TEXT_MAX],
                "action": action,
                "record_type": record_type,
                "record_id": record_id,
                "details": dict(details or {}),
            }
        )

    async def flush_events(self) -> None:
        """Write the recorded events and audit records, one INSERT each (however many there are).

        Given as a list of parameter sets to one fixed statement (built once per table), not as
        a multi-row .values(): that one would be a new statement, cache key and compilation per
        row count."""
        tables = self.db.tables
        rows, self._pending = self._pending, []
        audit_rows, self._audit = self._audit, []
        if rows and audit_rows:
            # Most commands publish and audit: both in one statement, one round trip fewer.
            await self.conn.execute(tables.outbox_and_audit_insert, _as_arrays(rows, audit_rows))
        elif rows:
            await self.conn.execute(tables.outbox_insert, rows)
        elif audit_rows:
            await self.conn.execute(tables.audit_insert, audit_rows)

    async def claim_inbox(self, consumer: str, event_id: str) -> bool:
        """Record that consumer handles event_id; False if it already did (a redelivery)."""
        result = await self.conn.execute(self.db.tables.inbox_claim, {"consumer": consumer, "event_id": event_id})
        return result.first() is not None

    async def claim_inbox_each(self, claims: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Claim many (consumer, event id) pairs in one statement; returns those not handled before."""
        unique = list(dict.fromkeys(claims))
        result = await self.conn.execute(
            self.db.tables.inbox_claim_each,
            {"consumers": [c for c, _ in unique], "event_ids": [e for _, e in unique]},
        )
        return {(row[0], row[1]) for row in result}
