"""ReportBuilderService: the report builder and saved reports, proto ↔ crm_reporting.builder and its
store. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.json_format import MessageToDict, ParseDict

from crm.reporting.v1 import report_builder_pb2 as pb
from crm.reporting.v1 import report_builder_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, require
from crm_kit.protoconv import page_size, to_timestamp
from crm_reporting import builder, builder_store, replica, report_labels, schedule_api
from crm_reporting.definitions import to_query

ROLES = frozenset({"admin", "sales_manager", "sales_rep", "orders_clerk", "service_agent", "marketing"})
MAX_SAVED = 200
LOCALES = ("he", "fa", "en")


def result_to_proto(result: builder.Result, query: builder.Query, locale: str) -> pb.ReportResult:
    def row(r: builder.Row) -> pb.ReportRow:
        return pb.ReportRow(
            keys=r.keys,
            labels=r.labels,
            values=[pb.ReportValue(value=v or 0.0, empty=v is None) for v in r.values],
        )

    return pb.ReportResult(
        columns=[
            pb.ReportColumn(
                name=c.name,
                kind=c.kind,
                unit=c.unit,
                currency_code=c.currency,
                label=report_labels.label(c.name, locale, c.currency),
            )
            for c in result.columns
        ],
        rows=[row(r) for r in result.rows],
        total=row(result.total),
        start_date=query.start.isoformat(),
        end_date=query.end.isoformat(),
        total_label=report_labels.label("total", locale),
    )


def saved_to_proto(row: Any) -> pb.SavedReport:
    return pb.SavedReport(
        id=row.id,
        name=row.name,
        definition=ParseDict(row.definition, pb.ReportDefinition(), ignore_unknown_fields=True),
        owner_id=row.owner_id,
        team_id=row.team_id,
        shared_roles=row.shared_roles,
        create_time=to_timestamp(row.created_at),
    )


def _reach(reach: pb.ReportReach) -> builder.Reach:
    return builder.Reach(reach.rep_id, reach.team_id)


def _locale(locale: str) -> str:
    language = locale.split("-", 1)[0].lower()
    return language if language in LOCALES else "en"


class ReportBuilderServicer(report_builder_pb2_grpc.ReportBuilderServiceServicer):
    def __init__(
        self,
        db: Database,
        zone: ZoneInfo,
        report_mail_domains: Sequence[str] = (),
        copy: replica.Replica | None = None,
    ) -> None:
        self.db = db
        self.zone = zone
        # The facts' DuckDB copy the builder reads once it is loaded (None: PostgreSQL only).
        self.copy = copy
        # The company's mail domains: the only ones a scheduled report is sent to (schedules.check).
        self.report_mail_domains = tuple(report_mail_domains)

    async def GetReportCatalog(
        self, request: pb.GetReportCatalogRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReportCatalogResponse:
        return pb.GetReportCatalogResponse(
            measures=[
                pb.CatalogMeasure(
                    name=m.name,
                    unit=m.unit,
                    dimensions=list(builder.FACTS[m.fact].dimensions),
                    owned=bool(builder.FACTS[m.fact].rep_column),
                )
                for m in builder.MEASURES.values()
            ],
            grains=builder.GRAINS,
            calendars=builder.CALENDARS,
            week_starts=list(builder.WEEK_STARTS),
            ranges=builder.RANGES,
        )

    async def _run(self, query: builder.Query, reach: builder.Reach, locale: str) -> pb.ReportResult:
        builder.check_reach(query, reach)
        async with self.db.unit_of_work() as uow:
            rows = await replica.day_rows(self.copy, uow, query, reach, self.zone)
        return result_to_proto(builder.add_up(query, rows, _locale(locale)), query, _locale(locale))

    async def RunReport(self, request: pb.RunReportRequest, context: grpc.aio.ServicerContext) -> pb.RunReportResponse:
        query = to_query(request.definition, builder_store.today(self.zone))
        return pb.RunReportResponse(result=await self._run(query, _reach(request.reach), request.locale))

    async def CreateSavedReport(
        self, request: pb.CreateSavedReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateSavedReportResponse:
        name = " ".join(request.name.split())
        require({"name": name, "viewer.user_id": request.viewer.user_id})
        problems = []
        if len(name) > 200:
            problems.append(("name", "at most 200 characters"))
        unknown = sorted(set(request.shared_roles) - ROLES)
        if unknown or len(request.shared_roles) > len(ROLES):
            problems.append(("shared_roles", "roles among " + ", ".join(sorted(ROLES))))
        if problems:
            raise InvalidArgument(
                "the report cannot be saved: " + ", ".join(p for p, _ in problems), field_violations=problems
            )
        to_query(request.definition, builder_store.today(self.zone))
        values = {
            "id": str(uuid.uuid4()),
            "name": name,
            "owner_id": request.viewer.user_id,
            "team_id": request.team_id,
            "shared_roles": sorted(set(request.shared_roles)),
            "definition": MessageToDict(request.definition, preserving_proto_field_name=True),
            "created_at": datetime.now(UTC),
            "request_id": request.request_id or None,
        }
        async with self.db.unit_of_work() as uow:
            found = await builder_store.by_request(uow, request.request_id) if request.request_id else None
            if found is None:
                found = await builder_store.create(uow, values)
            if found is None:  # a concurrent save with this request_id won
                found = await builder_store.by_request(uow, request.request_id)
        assert found is not None, "a report is saved, by this request or the one it raced"
        if found.owner_id != request.viewer.user_id:
            raise AlreadyExists("request_id was already used for another report", reason="REQUEST_ID_IN_USE")
        return pb.CreateSavedReportResponse(report=saved_to_proto(found))

    async def ListSavedReports(
        self, request: pb.ListSavedReportsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSavedReportsResponse:
        v = request.viewer
        limit = min(page_size(request.page_size) or MAX_SAVED, MAX_SAVED)
        async with self.db.unit_of_work() as uow:
            rows = await builder_store.listed(uow, v.user_id, list(v.roles), v.team_id, limit)
        return pb.ListSavedReportsResponse(reports=[saved_to_proto(r) for r in rows])

    async def _saved(self, report_id: str, viewer: pb.ReportViewer) -> Any:
        require({"id": report_id})
        async with self.db.unit_of_work() as uow:
            found = await builder_store.get(uow, report_id, viewer.user_id, list(viewer.roles), viewer.team_id)
        if found is None:
            raise NotFound(f"saved report {report_id} not found")
        return found

    async def GetSavedReport(
        self, request: pb.GetSavedReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSavedReportResponse:
        return pb.GetSavedReportResponse(report=saved_to_proto(await self._saved(request.id, request.viewer)))

    async def DeleteSavedReport(
        self, request: pb.DeleteSavedReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteSavedReportResponse:
        found = await self._saved(request.id, request.viewer)
        if not request.viewer.admin and found.owner_id != request.viewer.user_id:
            raise PermissionDenied("only its owner or an admin deletes a saved report", reason="NOT_THE_OWNER")
        async with self.db.unit_of_work() as uow:
            await builder_store.delete(uow, request.id, None if request.viewer.admin else request.viewer.user_id)
        return pb.DeleteSavedReportResponse()

    async def RunSavedReport(
        self, request: pb.RunSavedReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.RunSavedReportResponse:
        found = await self._saved(request.id, request.viewer)
        definition = ParseDict(found.definition, pb.ReportDefinition(), ignore_unknown_fields=True)
        try:
            query = to_query(definition, builder_store.today(self.zone), saved=True)
        except InvalidArgument as error:
            raise FailedPrecondition(
                f"the saved report no longer holds: {error.message} (edit or delete it)",
                reason="SAVED_REPORT_OUTDATED",
                field_violations=error.field_violations,
            ) from None
        return pb.RunSavedReportResponse(result=await self._run(query, _reach(request.reach), request.locale))

    async def CreateReportSchedule(
        self, request: pb.CreateReportScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateReportScheduleResponse:
        schedule = await schedule_api.create(self.db, self.zone, self.report_mail_domains, request)
        return pb.CreateReportScheduleResponse(schedule=schedule)

    async def ListReportSchedules(
        self, request: pb.ListReportSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListReportSchedulesResponse:
        return pb.ListReportSchedulesResponse(schedules=await schedule_api.listed(self.db, request))

    async def DeleteReportSchedule(
        self, request: pb.DeleteReportScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteReportScheduleResponse:
        await schedule_api.delete(self.db, request)
        return pb.DeleteReportScheduleResponse()

    async def SendReportScheduleNow(
        self, request: pb.SendReportScheduleNowRequest, context: grpc.aio.ServicerContext
    ) -> pb.SendReportScheduleNowResponse:
        return pb.SendReportScheduleNowResponse(schedule=await schedule_api.send_now(self.db, request))
