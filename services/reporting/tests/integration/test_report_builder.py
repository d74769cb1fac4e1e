"""The report builder against real PostgreSQL: facts from events through the handlers, reports by
source × Jalali month and rep × pipeline, a rep's report holding only their own facts, money per
currency, and saved reports — their owner's, shared by role within a team, outdated when they name
what the builder no longer has."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.message import Message
from sqlalchemy import update

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2 as lead_events
from crm.reporting.v1 import report_builder_pb2 as pb
from crm.sales.v1 import events_pb2 as sales_events
from crm.support.v1 import events_pb2 as support_events
from crm_kit.db import Database
from crm_kit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from crm_kit.protoconv import to_timestamp
from crm_reporting.builder_api import ReportBuilderServicer
from crm_reporting.db import saved_reports

from .conftest import handled

pytestmark = pytest.mark.integration

NewBuilder = Callable[..., Awaitable[ReportBuilderServicer]]

TEHRAN = ZoneInfo("Asia/Tehran")
# 1 Farvardin 1405 is 21 March 2026: these are in Esfand 1404 and Farvardin 1405.
ESFAND = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
FARVARDIN = datetime(2026, 3, 25, 9, 0, tzinfo=UTC)
# 23:30 on 20 March UTC is already 21 March (Farvardin) in Tehran.
NEW_YEAR_NIGHT = datetime(2026, 3, 20, 23, 30, tzinfo=UTC)


async def handle(db: Database, message: Message) -> None:
    await handled(db, message, at=ESFAND)


async def lead(db: Database, source: str, at: datetime, rep: str, *, city: str = "תל אביב") -> str:
    lead_id = f"lead-{uuid.uuid4().hex[:8]}"
    await handle(db, lead_events.LeadCaptured(lead_id=lead_id, source=source, capture_time=to_timestamp(at), city=city))
    await handle(
        db,
        lead_events.LeadAssigned(
            lead_id=lead_id, rep_id=rep, team_id="north", capture_time=to_timestamp(at), assign_time=to_timestamp(at)
        ),
    )
    return lead_id


async def deal(
    db: Database, lead_id: str, at: datetime, rep: str, amount: int, *, won: bool = True, cur: str = "ILS"
) -> None:
    await handle(
        db,
        sales_events.DealClosed(
            deal_id=f"deal-{uuid.uuid4().hex[:8]}",
            lead_id=lead_id,
            won=won,
            total=types_pb2.Money(amount_minor=amount, currency_code=cur),
            owner_rep_id=rep,
            owner_team_id="north",
            pipeline_id="retail",
            source="radio",
            close_time=to_timestamp(at),
        ),
    )


def definition(**fields: Any) -> pb.ReportDefinition:
    fields.setdefault("start_date", "2026-03-01")
    fields.setdefault("end_date", "2026-04-30")
    return pb.ReportDefinition(**fields)


def table(reply: pb.RunReportResponse) -> list[tuple[Any, ...]]:
    return [(*r.labels, *(None if v.empty else v.value for v in r.values)) for r in reply.result.rows]


async def test_leads_by_source_and_jalali_month_in_the_company_zone(db: Database, new_builder: NewBuilder) -> None:
    builder = await new_builder(db, TEHRAN)
    await lead(db, "radio", ESFAND, "rep-a")
    await lead(db, "radio", NEW_YEAR_NIGHT, "rep-a")
    await lead(db, "web", FARVARDIN, "rep-b")
    await lead(db, "web", FARVARDIN, "rep-b", city="חיפה")
    reply = await builder.RunReport(
        pb.RunReportRequest(
            definition=definition(
                measures=["leads"], dimensions=["period", "source"], grain="month", calendar="jalali"
            ),
            locale="fa",
        ),
        None,
    )
    assert [c.name for c in reply.result.columns] == ["period", "source", "leads"]
    assert table(reply) == [("اسفند ۱۴۰۴", "radio", 1), ("فروردین ۱۴۰۵", "radio", 1), ("فروردین ۱۴۰۵", "web", 2)]
    assert reply.result.total.values[0].value == 4
    by_city = await builder.RunReport(
        pb.RunReportRequest(
            definition=definition(
                measures=["leads"], dimensions=["city"], filters=[pb.ReportFilter(field="source", values=["web"])]
            )
        ),
        None,
    )
    # Equal counts: by name.
    assert table(by_city) == [("חיפה", 1), ("תל אביב", 1)]


async def test_a_reps_report_holds_only_their_own_deals_and_money_stays_per_currency(
    db: Database, new_builder: NewBuilder
) -> None:
    builder = await new_builder(db, TEHRAN)
    mine = await lead(db, "radio", ESFAND, "rep-a")
    theirs = await lead(db, "radio", ESFAND, "rep-b")
    await deal(db, mine, FARVARDIN, "rep-a", 100_000)
    await deal(db, mine, FARVARDIN, "rep-a", 5_000, cur="USD")
    await deal(db, mine, FARVARDIN, "rep-a", 0, won=False)
    await deal(db, theirs, FARVARDIN, "rep-b", 900_000)
    measures = ["deals_won", "revenue", "win_rate"]
    everyone = await builder.RunReport(
        pb.RunReportRequest(definition=definition(measures=measures, dimensions=["rep", "pipeline"])), None
    )
    assert [(c.name, c.currency_code) for c in everyone.result.columns][2:] == [
        ("deals_won", ""),
        ("revenue", "ILS"),
        ("revenue", "USD"),
        ("win_rate", ""),
    ]
    assert table(everyone) == [("rep-a", "retail", 2, 100_000, 5_000, 2 / 3), ("rep-b", "retail", 1, 900_000, 0, 1.0)]
    own = await builder.RunReport(
        pb.RunReportRequest(
            definition=definition(measures=measures, dimensions=["rep"]), reach=pb.ReportReach(rep_id="rep-a")
        ),
        None,
    )
    assert table(own) == [("rep-a", 2, 100_000, 5_000, 2 / 3)]
    await handle(db, support_events.TicketOpened(ticket_id="t-1", customer_id="c-1", occur_time=to_timestamp(ESFAND)))
    with pytest.raises(PermissionDenied):
        await builder.RunReport(
            pb.RunReportRequest(definition=definition(measures=["tickets"]), reach=pb.ReportReach(team_id="north")),
            None,
        )
    tickets = await builder.RunReport(pb.RunReportRequest(definition=definition(measures=["tickets"])), None)
    assert table(tickets) == [(1,)]


async def test_bad_definitions_name_their_field(db: Database, new_builder: NewBuilder) -> None:
    builder = await new_builder(db, TEHRAN)
    with pytest.raises(InvalidArgument) as error:
        await builder.RunReport(
            pb.RunReportRequest(definition=definition(measures=["tickets"], dimensions=["source"])), None
        )
    assert dict(error.value.field_violations)["dimensions"].startswith("tickets cannot be broken down by source")
    with pytest.raises(InvalidArgument) as error:
        await builder.RunReport(pb.RunReportRequest(definition=definition(measures=["leads"], end_date="30/04")), None)
    assert "end_date" in dict(error.value.field_violations)


async def test_saved_reports_are_their_owners_and_shared_by_role_within_a_team(
    db: Database, new_builder: NewBuilder
) -> None:
    builder = await new_builder(db, TEHRAN)
    owner = pb.ReportViewer(user_id="manager-1", roles=["sales_manager"], team_id="north")
    saved = (
        await builder.CreateSavedReport(
            pb.CreateSavedReportRequest(
                name="  Leads by source, last quarter ",
                definition=pb.ReportDefinition(measures=["leads"], dimensions=["source"], range="last_quarter"),
                team_id="north",
                shared_roles=["sales_rep"],
                viewer=owner,
                request_id="save-1",
            ),
            None,
        )
    ).report
    assert saved.name == "Leads by source, last quarter" and saved.definition.range == "last_quarter"
    again = (
        await builder.CreateSavedReport(
            pb.CreateSavedReportRequest(name="x", definition=saved.definition, viewer=owner, request_id="save-1"), None
        )
    ).report
    assert again.id == saved.id
    rep_north = pb.ReportViewer(user_id="rep-a", roles=["sales_rep"], team_id="north")
    rep_south = pb.ReportViewer(user_id="rep-z", roles=["sales_rep"], team_id="south")
    listed = await builder.ListSavedReports(pb.ListSavedReportsRequest(viewer=rep_north), None)
    assert [r.id for r in listed.reports] == [saved.id]
    assert not (await builder.ListSavedReports(pb.ListSavedReportsRequest(viewer=rep_south), None)).reports
    with pytest.raises(NotFound):
        await builder.GetSavedReport(pb.GetSavedReportRequest(id=saved.id, viewer=rep_south), None)
    ran = await builder.RunSavedReport(
        pb.RunSavedReportRequest(id=saved.id, viewer=rep_north, reach=pb.ReportReach(rep_id="rep-a")), None
    )
    assert ran.result.start_date and ran.result.start_date < ran.result.end_date
    with pytest.raises(PermissionDenied):
        await builder.DeleteSavedReport(pb.DeleteSavedReportRequest(id=saved.id, viewer=rep_north), None)

    # A measure removed since the report was saved: the report says so, and names it.
    async with db.unit_of_work() as uow:
        await uow.conn.execute(
            update(saved_reports)
            .where(saved_reports.c.id == saved.id)
            .values(definition={"measures": ["happiness"], "dimensions": ["source"], "range": "last_quarter"})
        )
    with pytest.raises(FailedPrecondition) as outdated:
        await builder.RunSavedReport(pb.RunSavedReportRequest(id=saved.id, viewer=owner), None)
    assert outdated.value.reason == "SAVED_REPORT_OUTDATED" and "happiness" in outdated.value.message
    await builder.DeleteSavedReport(pb.DeleteSavedReportRequest(id=saved.id, viewer=owner), None)
    with pytest.raises(NotFound):
        await builder.GetSavedReport(pb.GetSavedReportRequest(id=saved.id, viewer=owner), None)


async def test_a_reassigned_lead_is_its_new_owners_whatever_order_the_assignments_arrive_in(
    db: Database, new_builder: NewBuilder
) -> None:
    builder = await new_builder(db, TEHRAN)
    lead_id = await lead(db, "radio", ESFAND, "rep-first")
    other = f"lead-{uuid.uuid4().hex[:8]}"
    # The reassignment arrives before the first assignment: the later one still owns the lead.
    for rep, hours in (("rep-second", 5), ("rep-first", 0)):
        await handle(
            db,
            lead_events.LeadAssigned(
                lead_id=other, rep_id=rep, team_id="north", assign_time=to_timestamp(ESFAND + timedelta(hours=hours))
            ),
        )
    await handle(db, lead_events.LeadCaptured(lead_id=other, source="radio", capture_time=to_timestamp(ESFAND)))
    await handle(
        db,
        lead_events.LeadAssigned(
            lead_id=lead_id, rep_id="rep-second", team_id="north", assign_time=to_timestamp(ESFAND + timedelta(hours=1))
        ),
    )

    async def leads_of(rep: str) -> float:
        reply = await builder.RunReport(
            pb.RunReportRequest(definition=definition(measures=["leads"]), reach=pb.ReportReach(rep_id=rep)), None
        )
        return reply.result.total.values[0].value

    assert (await leads_of("rep-first"), await leads_of("rep-second")) == (0, 2)


async def test_deals_reaching_each_stage_by_rep_named_as_sales_names_the_stage(
    db: Database, new_builder: NewBuilder
) -> None:
    """Rep × stage: each deal's first entry into a stage, by the stage's name; an opening is no
    stage, a second entry into one counts once, and a rep's reach holds their own."""
    moves = [
        ("d1", "rep-1", "default-qualified", "Qualified"),
        ("d1", "rep-1", "default-proposal", "Proposal"),
        ("d1", "rep-1", "default-qualified", "Qualified"),  # back again: still one entry
        ("d2", "rep-1", "default-qualified", "Qualified"),
        ("d3", "rep-2", "default-qualified", "Qualified"),
    ]
    await handle(db, lead_events.LeadConverted(lead_id="l1", deal_id="d1", owner_rep_id="rep-1", pipeline_id="default"))
    for deal_id, rep, stage, name in moves:
        await handle(
            db,
            sales_events.DealStageChanged(
                deal_id=deal_id,
                pipeline_id="default",
                to_stage_id=stage,
                to_stage_name=name,
                owner_rep_id=rep,
                owner_team_id="north",
                move_time=to_timestamp(FARVARDIN),
            ),
        )
    servicer = await new_builder(db, TEHRAN)
    request = pb.RunReportRequest(
        definition=definition(measures=["deals_reached"], dimensions=["rep", "stage"]), locale="fa"
    )
    result = (await servicer.RunReport(request, None)).result  # type: ignore[arg-type]
    rows = {tuple(r.keys): r.values[0].value for r in result.rows}
    assert rows == {("rep-1", "Proposal"): 1, ("rep-1", "Qualified"): 2, ("rep-2", "Qualified"): 1}
    assert [c.label for c in result.columns] == ["نماینده", "مرحله", "معاملات رسیده به مرحله"]
    request.reach.CopyFrom(pb.ReportReach(rep_id="rep-2"))
    own = (await servicer.RunReport(request, None)).result  # type: ignore[arg-type]
    assert [(tuple(r.keys), r.values[0].value) for r in own.rows] == [(("rep-2", "Qualified"), 1)]
