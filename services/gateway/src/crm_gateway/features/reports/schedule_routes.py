"""/saved-reports/{id}/schedules and /report-schedules: a saved report e-mailed weekly or monthly
as PDF with a PNG chart (reporting's schedules; notifications sends). A schedule runs in the reach
of whoever makes it, kept with it; it is theirs (an admin sees and removes any), and only to the
company's mail domains."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from crm.reporting.v1 import report_builder_pb2 as pb
from crm_gateway.convert import message_to_dict
from crm_gateway.deps import Caller, Clients, IdempotencyKey, ResourceId, api_router
from crm_gateway.features.reports.builder_routes import reach_of, viewer_of
from crm_gateway.features.reports.builder_schemas import ReportSchedule, ReportScheduleIn, ReportSchedules
from crm_gateway.records import change, read

router = api_router()


def schedule_from_proto(message: pb.ReportSchedule) -> ReportSchedule:
    return ReportSchedule.model_validate(message_to_dict(message))


@router.post(
    "/saved-reports/{report_id}/schedules", status_code=201, tags=["reports"], operation_id="createReportSchedule"
)
async def create_report_schedule(
    report_id: ResourceId,
    body: ReportScheduleIn,
    clients: Clients,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> ReportSchedule:
    """E-mail a saved report the caller can open, weekly or monthly at a local hour, in the caller's
    reach. 404 for a report they cannot open; 422 naming an address outside the company's mail
    domains (or every address when none is configured)."""
    reply = await change(
        "saved report",
        report_id,
        clients.report_builder.CreateReportSchedule,
        pb.CreateReportScheduleRequest(
            saved_report_id=report_id,
            viewer=viewer_of(principal),
            reach=reach_of(principal),
            cadence=body.cadence,
            weekday=body.weekday,
            day_of_month=body.day_of_month,
            hour=body.hour,
            recipients=body.recipients,
            locale=body.locale,
            request_id=body.request_id or (idempotency_key or "").strip(),
        ),
    )
    return schedule_from_proto(reply.schedule)


@router.get("/report-schedules", tags=["reports"], operation_id="listReportSchedules")
async def list_report_schedules(
    clients: Clients,
    principal: Caller,
    saved_report_id: Annotated[str, Query(max_length=64)] = "",
) -> ReportSchedules:
    """The caller's schedules (an admin's: everyone's), newest first; of one saved report when asked."""
    request = pb.ListReportSchedulesRequest(viewer=viewer_of(principal), saved_report_id=saved_report_id)
    reply = await read(clients.report_builder.ListReportSchedules, request)
    return ReportSchedules(schedules=[schedule_from_proto(s) for s in reply.schedules])


@router.delete(
    "/report-schedules/{schedule_id}", status_code=204, tags=["reports"], operation_id="deleteReportSchedule"
)
async def delete_report_schedule(schedule_id: ResourceId, clients: Clients, principal: Caller) -> Response:
    """Its owner's or an admin's; 404 for anyone else."""
    request = pb.DeleteReportScheduleRequest(id=schedule_id, viewer=viewer_of(principal))
    await change("report schedule", schedule_id, clients.report_builder.DeleteReportSchedule, request)
    return Response(status_code=204)


@router.post(
    "/report-schedules/{schedule_id}/send-now",
    status_code=202,
    tags=["reports"],
    operation_id="sendReportScheduleNow",
)
async def send_report_schedule_now(schedule_id: ResourceId, clients: Clients, principal: Caller) -> ReportSchedule:
    """Send it at the next delivery round (seconds), keeping its regular time; 404 for anyone but
    its owner or an admin."""
    request = pb.SendReportScheduleNowRequest(id=schedule_id, viewer=viewer_of(principal))
    reply = await change("report schedule", schedule_id, clients.report_builder.SendReportScheduleNow, request)
    return schedule_from_proto(reply.schedule)
