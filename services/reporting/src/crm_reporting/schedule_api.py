"""Report schedules: the RPCs (ReportBuilderService delegates here) and the delivery round.

A schedule runs its saved report in the reach of whoever made it (kept with it), at the report's
relative range resolved on the delivery day ("last week" of a weekly report is the week before).
The delivery round (`deliver_due`, every `report_schedule_poll_seconds`) takes each due schedule
under a row lock, runs and renders it, and in one transaction publishes ScheduledReportReady
(outbox) and moves the schedule to its next time; notifications sends the e-mails. A report that
no longer holds (a removed field, a reach that cannot read its measure, too many rows) is not
sent: the schedule keeps why (`last_error`) and moves on, visible to its owner.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.json_format import ParseDict

from crm.reporting.v1 import events_pb2
from crm.reporting.v1 import report_builder_pb2 as pb
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import AlreadyExists, DomainError, InvalidArgument, NotFound, require
from crm_kit.protoconv import to_timestamp
from crm_reporting import builder, builder_store, replica, report_mail, schedule_store, schedules
from crm_reporting.definitions import to_query

log = logging.getLogger(__name__)

LOCALES = ("he", "fa", "en")
MAX_LISTED = 200
# Schedules delivered per round at most: the rest are due at the next round (a backlog after an
# outage is spread, and one round never holds the CPU for minutes).
MAX_PER_ROUND = 20
# A delivery that failed for no reason of the report is tried again this much later.
RETRY_AFTER = timedelta(minutes=10)
_PDF = "application/pdf"
_PNG = "image/png"


def schedule_to_proto(row: Any) -> pb.ReportSchedule:
    return pb.ReportSchedule(
        id=row.id,
        saved_report_id=row.saved_report_id,
        report_name=row.report_name,
        owner_id=row.owner_id,
        cadence=row.cadence,
        weekday=row.weekday,
        day_of_month=row.day_of_month,
        hour=row.hour,
        recipients=list(row.recipients),
        locale=row.locale,
        next_run_time=to_timestamp(row.next_run_at),
        last_run_time=to_timestamp(row.last_run_at),
        last_error=row.last_error,
        create_time=to_timestamp(row.created_at),
        reach=pb.ReportReach(rep_id=row.reach_rep_id, team_id=row.reach_team_id),
    )


def _owner(viewer: pb.ReportViewer) -> str | None:
    """Whose schedules a viewer may touch: their own, an admin's any (None)."""
    return None if viewer.admin else viewer.user_id


def _when(row: Any) -> schedules.When:
    return schedules.When(row.cadence, row.weekday, row.day_of_month, row.hour)


async def create(
    db: Database, zone: ZoneInfo, allowed_domains: Sequence[str], request: pb.CreateReportScheduleRequest
) -> pb.ReportSchedule:
    require({"saved_report_id": request.saved_report_id, "viewer.user_id": request.viewer.user_id})
    when = schedules.When(request.cadence, request.weekday, request.day_of_month or 1, request.hour)
    if request.locale not in LOCALES:
        raise InvalidArgument("locale: he, fa or en", field_violations=[("locale", "he, fa or en")])
    recipients = schedules.check(when, request.recipients, allowed_domains)
    v = request.viewer
    now = datetime.now(UTC)
    async with db.unit_of_work() as uow:
        if request.request_id and (found := await schedule_store.by_request(uow, request.request_id)) is not None:
            return _same_owner(found, v.user_id)
        report = await builder_store.get(uow, request.saved_report_id, v.user_id, list(v.roles), v.team_id)
        if report is None:
            raise NotFound(f"saved report {request.saved_report_id} not found")
        if await schedule_store.count_of(uow, v.user_id) >= schedules.MAX_SCHEDULES_PER_OWNER:
            raise InvalidArgument(
                f"at most {schedules.MAX_SCHEDULES_PER_OWNER} schedules each: delete one first",
                field_violations=[("saved_report_id", f"at most {schedules.MAX_SCHEDULES_PER_OWNER} schedules each")],
            )
        values = {
            "id": str(uuid.uuid4()),
            "saved_report_id": report.id,
            "owner_id": v.user_id,
            "reach_rep_id": request.reach.rep_id,
            "reach_team_id": request.reach.team_id,
            "cadence": when.cadence,
            "weekday": when.weekday,
            "day_of_month": when.day_of_month,
            "hour": when.hour,
            "recipients": recipients,
            "locale": request.locale,
            "next_run_at": schedules.next_run(when, now, zone),
            "created_at": now,
            "request_id": request.request_id or None,
        }
        row = await schedule_store.create(uow, values)
        if row is None:  # a concurrent request with this request_id won
            row = await schedule_store.by_request(uow, request.request_id)
    assert row is not None, "the schedule is kept, by this request or the one it raced"
    return _same_owner(row, v.user_id)


def _same_owner(row: Any, user_id: str) -> pb.ReportSchedule:
    if row.owner_id != user_id:
        raise AlreadyExists("request_id was already used for another schedule", reason="REQUEST_ID_IN_USE")
    return schedule_to_proto(row)


async def listed(db: Database, request: pb.ListReportSchedulesRequest) -> list[pb.ReportSchedule]:
    async with db.unit_of_work() as uow:
        rows = await schedule_store.listed(uow, _owner(request.viewer), request.saved_report_id, MAX_LISTED)
    return [schedule_to_proto(r) for r in rows]


async def delete(db: Database, request: pb.DeleteReportScheduleRequest) -> None:
    require({"id": request.id})
    async with db.unit_of_work() as uow:
        if not await schedule_store.delete(uow, request.id, _owner(request.viewer)):
            raise NotFound(f"report schedule {request.id} not found")


async def send_now(db: Database, request: pb.SendReportScheduleNowRequest) -> pb.ReportSchedule:
    require({"id": request.id})
    async with db.unit_of_work() as uow:
        row = await schedule_store.send_now(uow, request.id, _owner(request.viewer), datetime.now(UTC))
    if row is None:
        raise NotFound(f"report schedule {request.id} not found")
    return schedule_to_proto(row)


async def deliver_due(db: Database, zone: ZoneInfo, copy: replica.Replica | None = None) -> int:
    """One delivery round: each due schedule (up to MAX_PER_ROUND) run, rendered and handed to
    notifications, or its failure kept. Returns the reports sent. A delivery that fails for no
    reason of the report (a renderer's crash, a lost connection) is rolled back and tried again
    RETRY_AFTER later, so one broken schedule neither spins every round nor blocks the others."""
    sent = 0
    for _ in range(MAX_PER_ROUND):
        now = datetime.now(UTC)
        taken: str | None = None
        try:
            async with db.unit_of_work() as uow:
                row = await schedule_store.take_due(uow, now)
                if row is None:
                    return sent
                taken = row.id
                sent += await _deliver_one(uow, row, now, zone, copy)
        except Exception as exc:
            if taken is None:
                raise
            log.exception("scheduled report failed; tried again later", extra={"schedule_id": taken})
            async with db.unit_of_work() as uow:
                await schedule_store.delivered(
                    uow, taken, now, now + RETRY_AFTER, f"not sent, tried again shortly: {exc!r}"[:1000]
                )
    return sent


async def _deliver_one(uow: UnitOfWork, row: Any, now: datetime, zone: ZoneInfo, copy: replica.Replica | None) -> int:
    """The schedule sent (1), or why not kept (0); then moved to its next time — from now, so a
    late round does not send twice."""
    definition = ParseDict(row.definition, pb.ReportDefinition(), ignore_unknown_fields=True)
    error = ""
    try:
        query = to_query(definition, builder_store.today(zone), saved=True)
        await _deliver(uow, row, query, zone, copy)
    except DomainError as exc:
        error = exc.message
        log.warning("scheduled report not sent", extra={"schedule_id": row.id, "error": error})
    await schedule_store.delivered(uow, row.id, now, schedules.next_run(_when(row), now, zone), error)
    return 0 if error else 1


async def _deliver(
    uow: UnitOfWork, row: Any, query: builder.Query, zone: ZoneInfo, copy: replica.Replica | None
) -> None:
    reach = builder.Reach(row.reach_rep_id, row.reach_team_id)
    builder.check_reach(query, reach)
    result = builder.add_up(query, await replica.day_rows(copy, uow, query, reach, zone), row.locale)
    mail = await asyncio.to_thread(
        report_mail.render, row.report_name, result, query.start, query.end, row.locale, row.cadence
    )
    if len(mail.pdf) + len(mail.png) > report_mail.MAX_ATTACHMENT_BYTES:
        raise InvalidArgument(
            f"the report's files are {len(mail.pdf) + len(mail.png)} bytes, more than an e-mail here carries",
            field_violations=[("definition", "fewer rows or measures")],
        )
    await uow.record_event(
        events_pb2.ScheduledReportReady(
            schedule_id=row.id,
            saved_report_id=row.saved_report_id,
            recipients=list(row.recipients),
            locale=row.locale,
            subject=mail.subject,
            text=mail.text,
            attachments=[
                events_pb2.Attachment(file_name=f"{mail.file_stem}.pdf", media_type=_PDF, content=mail.pdf),
                events_pb2.Attachment(file_name=f"{mail.file_stem}-chart.png", media_type=_PNG, content=mail.png),
            ],
            start_date=query.start.isoformat(),
            end_date=query.end.isoformat(),
        )
    )
