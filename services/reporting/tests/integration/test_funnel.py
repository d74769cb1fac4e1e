"""The funnel and the speed-to-lead curve against real PostgreSQL, from events through the
handlers in any order: a first response kept at its earliest; deals opened (LeadConverted) and the
stages they entered (DealStageChanged) counted as reached up to the furthest, per source, held to
a rep; leads per band of time to first response with their win rate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2 as lead_events
from crm.reporting.v1 import reporting_pb2
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit.db import Database
from crm_kit.protoconv import to_timestamp
from crm_reporting.grpc_api import ReportingServicer, cross_selling, lead_scoring

from .conftest import handled

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ILS_10 = types_pb2.Money(amount_minor=1000, currency_code="ILS")
STAGES = ["s-new", "s-meeting", "s-quote", "s-won"]


async def handle(db: Database, message: Message) -> None:
    await handled(db, message, at=T0)


def servicer(db: Database) -> ReportingServicer:
    return ReportingServicer(
        db,
        lead_scoring(db, refresh_seconds=600, max_leads=1000),
        cross_selling(db, refresh_seconds=600, max_buyers=1000),
    )


async def lead(db: Database, source: str, rep: str, answered_after: timedelta | None) -> str:
    lead_id = f"lead-{uuid.uuid4().hex[:8]}"
    if answered_after is not None:
        # The response arrives before the capture, and a later one after: the earliest stays.
        for after in (answered_after, answered_after + timedelta(hours=5)):
            await handle(
                db,
                lead_events.ActivityLogged(
                    activity_id=uuid.uuid4().hex, lead_id=lead_id, kind="call", first_response=True,
                    occur_time=to_timestamp(T0 + after),
                ),
            )  # fmt: skip
    await handle(db, lead_events.LeadCaptured(lead_id=lead_id, source=source, capture_time=to_timestamp(T0)))
    await handle(
        db, lead_events.LeadAssigned(lead_id=lead_id, rep_id=rep, team_id="north", assign_time=to_timestamp(T0))
    )
    return lead_id


async def deal(db: Database, lead_id: str, rep: str, stages: list[str], *, won: bool | None = None) -> None:
    deal_id = f"deal-{uuid.uuid4().hex[:8]}"
    for i, stage in enumerate(reversed(stages)):  # stage events before the opening: any order
        await handle(
            db,
            sales_events.DealStageChanged(
                deal_id=deal_id, lead_id=lead_id, pipeline_id="default", to_stage_id=stage, owner_rep_id=rep,
                owner_team_id="north", move_time=to_timestamp(T0 + timedelta(days=3 - i)),
            ),
        )  # fmt: skip
    await handle(
        db,
        lead_events.LeadConverted(
            lead_id=lead_id, deal_id=deal_id, owner_rep_id=rep, owner_team_id="north", convert_time=to_timestamp(T0)
        ),
    )
    if won is not None:
        await handle(
            db,
            sales_events.DealClosed(
                deal_id=deal_id, lead_id=lead_id, won=won, total=ILS_10,
                close_time=to_timestamp(T0 + timedelta(days=4)),
            ),
        )  # fmt: skip


async def test_the_funnel_counts_each_deal_up_to_its_furthest_stage_per_source(db: Database) -> None:
    radio = [await lead(db, "radio", "rep-a", None) for _ in range(3)]
    web = await lead(db, "website", "rep-b", None)
    await deal(db, radio[0], "rep-a", [])
    await deal(db, radio[1], "rep-a", ["s-meeting"])
    # Skipped the quote stage on its way to won: it still reached it.
    await deal(db, radio[2], "rep-a", ["s-meeting", "s-won"], won=True)
    await deal(db, web, "rep-b", ["s-meeting", "s-quote", "s-lost"], won=False)
    reply = await servicer(db).GetFunnelReport(
        reporting_pb2.GetFunnelReportRequest(pipeline_id="default", stage_ids=STAGES, dimension="source"), None
    )
    assert [(r.group, list(r.reached)) for r in reply.rows] == [("radio", [3, 2, 1, 1]), ("website", [1, 1, 1, 0])]
    assert list(reply.total.reached) == [4, 3, 2, 1]
    own = await servicer(db).GetFunnelReport(
        reporting_pb2.GetFunnelReportRequest(pipeline_id="default", stage_ids=STAGES, rep_id="rep-b"), None
    )
    assert list(own.total.reached) == [1, 1, 1, 0]
    later = await servicer(db).GetFunnelReport(
        reporting_pb2.GetFunnelReportRequest(
            pipeline_id="default", stage_ids=STAGES, start_time=to_timestamp(T0 + timedelta(days=1))
        ),
        None,
    )
    assert list(later.total.reached) == [0, 0, 0, 0]


async def test_the_speed_to_lead_curve_counts_leads_per_band_with_their_win_rate(db: Database) -> None:
    fast = [await lead(db, "radio", "rep-a", timedelta(minutes=2)) for _ in range(3)]
    slow = [await lead(db, "radio", "rep-b", timedelta(hours=30)) for _ in range(2)]
    await lead(db, "radio", "rep-b", None)
    await deal(db, fast[0], "rep-a", [], won=True)
    await deal(db, fast[1], "rep-a", [], won=True)
    await deal(db, fast[2], "rep-a", [], won=False)
    await deal(db, slow[0], "rep-b", [], won=False)
    reply = await servicer(db).GetSpeedToLeadReport(reporting_pb2.GetSpeedToLeadReportRequest(), None)
    bands = {b.band: b for b in reply.bands}
    assert len(reply.bands) == 6
    assert (bands["under_5_minutes"].leads, bands["under_5_minutes"].won, bands["under_5_minutes"].lost) == (3, 2, 1)
    assert bands["under_5_minutes"].win_rate == pytest.approx(2 / 3)
    assert bands["under_5_minutes"].median_seconds == 120
    assert (bands["over_a_day"].leads, bands["over_a_day"].win_rate) == (2, 0.0)
    assert bands["no_response"].leads == 1 and not bands["no_response"].HasField("win_rate")
    assert bands["5_to_30_minutes"].leads == 0
    own = await servicer(db).GetSpeedToLeadReport(reporting_pb2.GetSpeedToLeadReportRequest(rep_id="rep-a"), None)
    assert sum(b.leads for b in own.bands) == 3
