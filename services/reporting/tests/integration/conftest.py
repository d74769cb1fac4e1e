"""What reporting's integration tests share: a migrated reporting database, and an event handled
the way the bus hands it over (an envelope around the message, the handler in one unit of work)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.message import Message

from crm_kit.db import Database
from crm_kit.events import Envelope, event_type, subject_for
from crm_kit.testing import migrated_database
from crm_reporting import handlers
from crm_reporting.builder_api import ReportBuilderServicer
from crm_reporting.db import messaging
from crm_reporting.main import MIGRATIONS_DIR
from crm_reporting.replica import Replica


@pytest.fixture
async def db(fresh_database: Any) -> AsyncIterator[Database]:
    url = await fresh_database("reporting")
    async with migrated_database(url, MIGRATIONS_DIR, messaging, service="reporting") as database:
        yield database


async def handled(db: Database, message: Message, *, at: datetime | None = None) -> None:
    """message through its handler, in an envelope of time `at` (default now)."""
    envelope = Envelope(
        id=uuid.uuid4().hex,
        type=event_type(type(message)),
        source="/crm/test",
        time=at or datetime.now(UTC),
        subject=subject_for(type(message)),
        message=message,
    )
    async with db.unit_of_work() as uow:
        await handlers.BY_EVENT[type(message)](uow, envelope)


@pytest.fixture(params=["postgresql", "duckdb"])
async def new_builder(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[ReportBuilderServicer]]]:
    """A report builder reading PostgreSQL, or its DuckDB copy (loaded when the builder is made,
    caught up before each report): every test that builds one runs on both engines."""
    copies: list[Replica] = []

    async def make(db: Database, zone: ZoneInfo, mail_domains: Sequence[str] = ()) -> ReportBuilderServicer:
        copy = None
        if request.param == "duckdb":
            copy = Replica(db)
            copies.append(copy)
            await copy.refresh()
            assert copy.ready
        return ReportBuilderServicer(db, zone, mail_domains, copy)

    yield make
    for copy in copies:
        copy.close()
