"""The report builder's DuckDB copy against real PostgreSQL: a fact written by a transaction that
commits after a sync began is still copied (the watermark is the snapshot's xmin, not the newest
row seen), pages along a composite key lose and repeat nothing, a report sees what was committed
before it was asked for, the copy answers every measure as PostgreSQL does, and a broken copy is
dropped so PostgreSQL serves until it is loaded again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2 as lead_events
from crm.notifications.v1 import events_pb2 as notification_events
from crm.sales.v1 import events_pb2 as sales_events
from crm.support.v1 import events_pb2 as support_events
from crm_kit.db import Database
from crm_kit.events import Envelope, event_type, subject_for
from crm_kit.protoconv import to_timestamp
from crm_reporting import builder, builder_store, handlers, replica
from crm_reporting.replica import Replica

from .conftest import handled

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Asia/Jerusalem")
DAY = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
async def copy(db: Database) -> AsyncIterator[Replica]:
    made = Replica(db)
    yield made
    made.close()


def query(measures: list[str], dimensions: tuple[str, ...] = (), **filters: list[str]) -> builder.Query:
    return builder.Query(
        measures=tuple(measures),
        dimensions=dimensions,
        filters={k: tuple(v) for k, v in filters.items()},
        start=DAY.date() - timedelta(days=60),
        end=DAY.date() + timedelta(days=60),
        periods=builder.Periods("month", "gregorian", "sunday"),
    )


def captured(lead_id: str, source: str = "radio", at: datetime = DAY) -> lead_events.LeadCaptured:
    return lead_events.LeadCaptured(lead_id=lead_id, source=source, capture_time=to_timestamp(at), city="חיפה")


async def leads_by_source(copy: Replica) -> dict[tuple[str, ...], float]:
    rows = await copy.day_rows(query(["leads"], ("source",)), builder.Reach(), ZONE)
    assert rows is not None
    return {r.keys: r.parts["n"] for r in rows}


async def test_a_fact_committed_after_a_sync_began_is_copied_by_the_next(db: Database, copy: Replica) -> None:
    await copy.refresh()
    # The slow transaction takes its id first and commits last: a watermark at the newest row
    # seen would pass it by.
    async with db.unit_of_work() as slow:
        envelope = Envelope(
            id=uuid.uuid4().hex,
            type=event_type(lead_events.LeadCaptured),
            source="/crm/test",
            time=DAY,
            subject=subject_for(lead_events.LeadCaptured),
            message=captured("slow", "tv"),
        )
        await handlers.BY_EVENT[lead_events.LeadCaptured](slow, envelope)
        await handled(db, captured("fast", "web"))
        await copy.refresh()
        assert await leads_by_source(copy) == {("web",): 1}
    await copy.refresh()
    assert await leads_by_source(copy) == {("tv",): 1, ("web",): 1}


async def test_pages_along_a_composite_key_copy_every_row_once(
    db: Database, copy: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replica, "PAGE_ROWS", 2)
    for deal in range(3):
        for stage in range(3):
            await handled(
                db,
                sales_events.DealStageChanged(
                    deal_id=f"d{deal}",
                    pipeline_id="default",
                    to_stage_id=f"s{stage}",
                    to_stage_name=f"Stage {stage}",
                    owner_rep_id="rep-1",
                    move_time=to_timestamp(DAY),
                ),
            )
    for n in range(5):
        await handled(db, captured(f"lead-{n}"))
    await copy.refresh()
    stages = query(["deals_reached"], ("stage",))
    from_copy = await copy.day_rows(stages, builder.Reach(), ZONE)
    assert from_copy is not None and {r.keys: r.parts["n"] for r in from_copy} == {(f"Stage {s}",): 3 for s in range(3)}
    # A change after the load, paged too: a lead's assignment rewrites its row.
    await handled(
        db,
        lead_events.LeadAssigned(
            lead_id="lead-4",
            rep_id="rep-9",
            team_id="north",
            capture_time=to_timestamp(DAY),
            assign_time=to_timestamp(DAY),
        ),
    )
    by_rep = await copy.day_rows(query(["leads"], ("rep",)), builder.Reach(), ZONE)
    assert by_rep is not None and {r.keys: r.parts["n"] for r in by_rep} == {("",): 4, ("rep-9",): 1}


async def test_the_copy_answers_every_measure_as_postgresql_does(db: Database, copy: Replica) -> None:
    await copy.refresh()  # empty: everything below arrives by catch-up
    for n in range(40):
        at = DAY + timedelta(days=n - 20, hours=n % 7)
        lead_id = f"lead-{n}"
        await handled(db, captured(lead_id, ("radio", "web", "tv")[n % 3], at))
        await handled(
            db,
            lead_events.LeadAssigned(
                lead_id=lead_id,
                rep_id=f"rep-{n % 4}",
                team_id=("north", "south")[n % 2],
                capture_time=to_timestamp(at),
                assign_time=to_timestamp(at + timedelta(minutes=n)),
            ),
        )
        if n % 2:
            await handled(
                db,
                sales_events.DealClosed(
                    deal_id=f"deal-{n}",
                    lead_id=lead_id,
                    won=n % 3 != 0,
                    total=types_pb2.Money(amount_minor=1000 * n, currency_code=("ILS", "USD")[n % 5 == 0]),
                    owner_rep_id=f"rep-{n % 4}",
                    owner_team_id=("north", "south")[n % 2],
                    pipeline_id="retail",
                    source=("radio", "web", "tv")[n % 3],
                    close_time=to_timestamp(at + timedelta(days=3)),
                ),
            )
        if n % 5 == 0:
            await handled(
                db, support_events.TicketOpened(ticket_id=f"t-{n}", customer_id="c-1", occur_time=to_timestamp(at))
            )
            await handled(
                db,
                notification_events.NotificationSent(message_id=f"m-{n}", lead_id=lead_id, send_time=to_timestamp(at)),
            )
    shapes = [
        (
            query(
                ["leads", "speed_to_assign_seconds"],
                (
                    "period",
                    "source",
                ),
            ),
            builder.Reach(),
        ),
        (
            query(
                ["deals_won", "deals_lost", "win_rate", "revenue"],
                (
                    "rep",
                    "pipeline",
                ),
            ),
            builder.Reach(),
        ),
        (query(["revenue", "leads"], ("source",), source=["web", "tv"]), builder.Reach(team_id="north")),
        (query(["leads", "deals_won"], ("period",)), builder.Reach(rep_id="rep-1")),
        (query(["tickets", "messages"], ("period",)), builder.Reach()),
    ]
    for q, reach in shapes:
        from_copy = await copy.day_rows(q, reach, ZONE)
        async with db.unit_of_work() as uow:
            from_postgresql = await builder_store.day_rows(uow, q, reach, ZONE)
        assert from_copy is not None
        expected = builder.add_up(q, from_postgresql, "he")
        assert builder.add_up(q, from_copy, "he") == expected and expected.rows, q


async def test_a_broken_copy_is_dropped_and_postgresql_serves_until_it_is_loaded_again(
    db: Database, copy: Replica
) -> None:
    await handled(db, captured("first"))
    await copy.refresh()
    assert copy.duck is not None
    copy.duck.execute("DROP TABLE lead_facts")  # what a full disk or a corrupt file would do
    await handled(db, captured("second", "web"))
    async with db.unit_of_work() as uow:
        with pytest.raises(Exception):  # noqa: B017 - DuckDB's own error, whatever it is
            await replica.day_rows(copy, uow, query(["leads"], ("source",)), builder.Reach(), ZONE)
    assert not copy.ready
    async with db.unit_of_work() as uow:
        rows = await replica.day_rows(copy, uow, query(["leads"], ("source",)), builder.Reach(), ZONE)
    assert {r.keys: r.parts["n"] for r in rows} == {("radio",): 1, ("web",): 1}
    await copy.refresh()
    assert copy.ready and await leads_by_source(copy) == {("radio",): 1, ("web",): 1}


async def test_a_failed_load_is_not_retried_at_once(
    db: Database, copy: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load reads every fact: one that fails (a full volume) waits before the next."""
    opened = []
    real_open = Replica._open

    def failing_open(self: Replica) -> object:
        opened.append(1)
        if len(opened) == 1:
            raise duckdb.IOException("No space left on device")
        return real_open(self)

    monkeypatch.setattr(Replica, "_open", failing_open)
    with pytest.raises(duckdb.IOException):
        await copy.refresh()
    await copy.refresh()  # within the wait: not tried
    assert (len(opened), copy.ready) == (1, False)
    monkeypatch.setattr(copy, "_retry_at", 0.0)  # the wait is over
    await copy.refresh()
    assert (len(opened), copy.ready) == (2, True)
