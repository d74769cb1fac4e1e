"""Scheduled reports against real PostgreSQL: a manager schedules a saved report for the company's
addresses only; sent now, the delivery round renders it in the manager's reach (a Persian PDF with
its PNG chart) and publishes ScheduledReportReady through the outbox once, then keeps the regular
time; a report the schedule's reach cannot read is not sent and says why; others cannot see,
send or delete someone's schedule."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm.reporting.v1 import events_pb2
from crm.reporting.v1 import report_builder_pb2 as pb
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, NotFound
from crm_reporting import report_mail, schedule_api
from crm_reporting.builder_api import ReportBuilderServicer
from crm_reporting.db import messaging

from .test_report_builder import deal, lead

pytestmark = pytest.mark.integration

TEHRAN = ZoneInfo("Asia/Tehran")
MANAGER = pb.ReportViewer(user_id="manager-north", roles=["sales_manager"], team_id="north")
NORTH = pb.ReportReach(team_id="north")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pdf_text(pdf: bytes) -> str:
    """The PDF's text in logical order (pdftotext), without whitespace, ZWNJ or directional marks."""
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("pdftotext is missing: apt-get install poppler-utils")
    out = subprocess.run([tool, "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return re.sub(r"[\s\u200c\u200e\u200f\u2066-\u2069\u202a-\u202e]", "", out)


async def ready_events(db: Database) -> list[events_pb2.ScheduledReportReady]:
    async with db.unit_of_work() as uow:
        rows = await uow.conn.execute(
            select(messaging.outbox.c.payload).where(
                messaging.outbox.c.subject == "crm.reporting.scheduled_report_ready"
            )
        )
        return [events_pb2.ScheduledReportReady.FromString(r.payload) for r in rows]


async def saved(servicer: ReportBuilderServicer, measures: list[str], name: str, by: str = "source") -> str:
    reply = await servicer.CreateSavedReport(
        pb.CreateSavedReportRequest(
            name=name,
            definition=pb.ReportDefinition(measures=measures, dimensions=[by], range="last_30_days"),
            viewer=MANAGER,
        ),
        None,  # type: ignore[arg-type]
    )
    return reply.report.id


def schedule_request(report_id: str, **fields: object) -> pb.CreateReportScheduleRequest:
    values: dict[str, object] = {
        "saved_report_id": report_id,
        "viewer": MANAGER,
        "reach": NORTH,
        "cadence": "weekly",
        "weekday": 6,
        "hour": 8,
        "recipients": ["Manager@Shop.example", "ceo@shop.example"],
        "locale": "fa",
    }
    values.update(fields)
    return pb.CreateReportScheduleRequest(**values)  # type: ignore[arg-type]


async def test_a_schedule_sent_now_is_one_persian_pdf_and_chart_in_the_owners_reach(db: Database) -> None:
    now = datetime.now(UTC)
    radio = await lead(db, "radio", now - timedelta(days=2), "rep-1")
    await deal(db, radio, now - timedelta(days=1), "rep-1", 250_000)
    await lead(db, "tv", now - timedelta(days=3), "rep-2")
    servicer = ReportBuilderServicer(db, TEHRAN, ["shop.example"])
    report_id = await saved(servicer, ["leads", "revenue"], "فروش بر حسب منبع")

    schedule = (await servicer.CreateReportSchedule(schedule_request(report_id), None)).schedule  # type: ignore[arg-type]
    assert schedule.recipients == ["manager@shop.example", "ceo@shop.example"]
    regular = schedule.next_run_time.ToDatetime(tzinfo=UTC)
    local = regular.astimezone(TEHRAN)
    assert (local.weekday(), local.hour, local.minute) == (6, 8, 0) and regular > now
    # Not due: a round sends nothing.
    assert await schedule_api.deliver_due(db, TEHRAN) == 0

    await servicer.SendReportScheduleNow(pb.SendReportScheduleNowRequest(id=schedule.id, viewer=MANAGER), None)  # type: ignore[arg-type]
    assert await schedule_api.deliver_due(db, TEHRAN) == 1
    assert await schedule_api.deliver_due(db, TEHRAN) == 0  # once

    [event] = await ready_events(db)
    assert event.schedule_id == schedule.id and list(event.recipients) == list(schedule.recipients)
    assert event.locale == "fa" and "فروش بر حسب منبع" in event.subject and "هر هفته" in event.text
    pdf, png = event.attachments
    assert pdf.media_type == "application/pdf" and pdf.file_name.endswith(".pdf")
    assert png.media_type == "image/png" and png.content.startswith(PNG_SIGNATURE)
    text = pdf_text(pdf.content)
    assert "فروشبرحسبمنبع" in text and "سرنخ‌ها".replace("\u200c", "") in text
    # The manager's reach (team north) holds both leads and the deal: a total of ۲ leads and
    # ۲,۵۰۰ shekels (Persian digits, major units).
    assert "جمع۲" in text and "۲,۵۰۰" in text, text

    [listed] = (await servicer.ListReportSchedules(pb.ListReportSchedulesRequest(viewer=MANAGER), None)).schedules  # type: ignore[arg-type]
    assert listed.last_error == "" and listed.HasField("last_run_time")
    assert listed.next_run_time.ToDatetime(tzinfo=UTC) == regular  # the regular time kept


async def test_bad_schedules_are_refused_naming_the_field(db: Database) -> None:
    servicer = ReportBuilderServicer(db, TEHRAN, ["shop.example"])
    report_id = await saved(servicer, ["leads"], "Leads")
    with pytest.raises(InvalidArgument) as bad:
        await servicer.CreateReportSchedule(
            schedule_request(report_id, cadence="monthly", day_of_month=31, hour=24, recipients=["a@gmail.com", "x"]),
            None,  # type: ignore[arg-type]
        )
    assert {f for f, _ in bad.value.field_violations} == {"day_of_month", "hour", "recipients[0]", "recipients[1]"}
    off = ReportBuilderServicer(db, TEHRAN, [])
    with pytest.raises(InvalidArgument, match="recipients"):
        await off.CreateReportSchedule(schedule_request(report_id), None)  # type: ignore[arg-type]
    stranger = pb.ReportViewer(user_id="rep-9", roles=["sales_rep"], team_id="south")
    with pytest.raises(NotFound):
        await servicer.CreateReportSchedule(schedule_request(report_id, viewer=stranger), None)  # type: ignore[arg-type]


async def test_a_report_the_reach_cannot_read_is_not_sent_and_others_cannot_touch_the_schedule(db: Database) -> None:
    servicer = ReportBuilderServicer(db, TEHRAN, ["shop.example"])
    # Tickets have no owner: a team's reach cannot read them.
    report_id = await saved(servicer, ["tickets"], "Tickets", by="channel")
    schedule = (
        await servicer.CreateReportSchedule(
            schedule_request(report_id, cadence="monthly", day_of_month=1, request_id=str(uuid.uuid4())),
            None,  # type: ignore[arg-type]
        )
    ).schedule
    other = pb.ReportViewer(user_id="manager-south", roles=["sales_manager"], team_id="south")
    for call in (
        servicer.SendReportScheduleNow(pb.SendReportScheduleNowRequest(id=schedule.id, viewer=other), None),  # type: ignore[arg-type]
        servicer.DeleteReportSchedule(pb.DeleteReportScheduleRequest(id=schedule.id, viewer=other), None),  # type: ignore[arg-type]
    ):
        with pytest.raises(NotFound):
            await call
    assert list((await servicer.ListReportSchedules(pb.ListReportSchedulesRequest(viewer=other), None)).schedules) == []  # type: ignore[arg-type]

    await servicer.SendReportScheduleNow(pb.SendReportScheduleNowRequest(id=schedule.id, viewer=MANAGER), None)  # type: ignore[arg-type]
    assert await schedule_api.deliver_due(db, TEHRAN) == 0
    assert await ready_events(db) == []
    [kept] = (await servicer.ListReportSchedules(pb.ListReportSchedulesRequest(viewer=MANAGER), None)).schedules  # type: ignore[arg-type]
    assert "ticket" in kept.last_error.lower() or "owner" in kept.last_error.lower(), kept.last_error
    assert kept.next_run_time.ToDatetime(tzinfo=UTC).astimezone(TEHRAN).day == 1

    admin = pb.ReportViewer(user_id="root", roles=["admin"], admin=True)
    await servicer.DeleteReportSchedule(pb.DeleteReportScheduleRequest(id=schedule.id, viewer=admin), None)  # type: ignore[arg-type]
    assert (
        list((await servicer.ListReportSchedules(pb.ListReportSchedulesRequest(viewer=MANAGER), None)).schedules) == []
    )  # type: ignore[arg-type]


async def test_a_renderer_crash_is_rolled_back_and_tried_again_later_not_every_round(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    servicer = ReportBuilderServicer(db, TEHRAN, ["shop.example"])
    report_id = await saved(servicer, ["leads"], "Leads")
    schedule = (await servicer.CreateReportSchedule(schedule_request(report_id), None)).schedule  # type: ignore[arg-type]
    await servicer.SendReportScheduleNow(pb.SendReportScheduleNowRequest(id=schedule.id, viewer=MANAGER), None)  # type: ignore[arg-type]

    def crash(*args: object) -> None:
        raise RuntimeError("the chart engine died")

    monkeypatch.setattr(report_mail, "render", crash)
    before = datetime.now(UTC)
    assert await schedule_api.deliver_due(db, TEHRAN) == 0
    assert await schedule_api.deliver_due(db, TEHRAN) == 0  # not due again at once
    assert await ready_events(db) == []
    [kept] = (await servicer.ListReportSchedules(pb.ListReportSchedulesRequest(viewer=MANAGER), None)).schedules  # type: ignore[arg-type]
    assert "the chart engine died" in kept.last_error
    retry = kept.next_run_time.ToDatetime(tzinfo=UTC) - before
    assert timedelta(minutes=9) < retry <= schedule_api.RETRY_AFTER + timedelta(seconds=5)
