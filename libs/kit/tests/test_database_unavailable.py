"""Which errors mean "the database is unavailable" (the bus holds the event) and which do not."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from crm_kit.db import database_unavailable

pytestmark = pytest.mark.unit


def wrapped(orig: BaseException, *, invalidated: bool = False) -> DBAPIError:
    """A SQLAlchemy error as its asyncpg dialect raises it: the adapter's error from the driver's."""
    adapter = Exception(str(orig))
    adapter.__cause__ = orig
    return DBAPIError("select 1", {}, adapter, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),  # a connect while PostgreSQL is down
        asyncpg.CannotConnectNowError("the database system is starting up"),
        wrapped(asyncpg.CannotConnectNowError("the database system is not yet accepting connections")),
        wrapped(asyncpg.AdminShutdownError("terminating connection due to unexpected postmaster exit")),
        wrapped(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")),
        wrapped(Exception("connection is closed"), invalidated=True),
        # ALTER DATABASE … ALLOW_CONNECTIONS false: closed for maintenance (or fenced).
        wrapped(asyncpg.ObjectNotInPrerequisiteStateError('database "crm" is not currently accepting connections')),
    ],
)
def test_outages(exc: BaseException) -> None:
    assert database_unavailable(exc)


def test_not_outages() -> None:
    assert not database_unavailable(ValueError("a handler's own bug"))
    assert not database_unavailable(TimeoutError())
    assert not database_unavailable(
        IntegrityError("insert", {}, Exception("duplicate key"), connection_invalidated=False)
    )
    assert not database_unavailable(wrapped(asyncpg.UniqueViolationError("duplicate key")))
    # The same SQLSTATE class for an error of the work itself, and its lock-timeout subclass.
    assert not database_unavailable(
        wrapped(asyncpg.ObjectNotInPrerequisiteStateError("currval of sequence is not yet defined in this session"))
    )
    assert not database_unavailable(wrapped(asyncpg.LockNotAvailableError("could not obtain lock on row")))
    # Another service (an HTTP provider, say) refusing a connection is not the database.
    provider_down = RuntimeError("provider unreachable")
    provider_down.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert not database_unavailable(provider_down)
