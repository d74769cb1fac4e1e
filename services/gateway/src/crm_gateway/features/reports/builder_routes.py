"""/reports/builder and /saved-reports: the report builder (reporting's ReportBuilderService).

Results follow the caller: an admin's and marketing's reports count every fact, a manager's their
team's, a rep's their own (facts without owners — tickets, messages, campaign cost — only for
those who see everything: 403). A saved report is its owner's and is shared with roles (of a
team, or the company); whoever runs it gets their own reach. Files: CSV and XLSX."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import HTTPException, Query, Response

from crm.reporting.v1 import report_builder_pb2 as pb
from crm_gateway.convert import message_to_dict, to_model
from crm_gateway.deps import Caller, Clients, IdempotencyKey, PageSize, ResourceId, api_router
from crm_gateway.features.reports import exports
from crm_gateway.features.reports.builder_schemas import (
    ChartSpec,
    Locale,
    ReportCatalog,
    ReportDefinition,
    ReportDefinitionIn,
    ReportResult,
    SavedReport,
    SavedReportIn,
    SavedReports,
)
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.records import change, read
from crm_kit import protoconv

router = api_router()

FileFormat = Literal["csv", "xlsx"]
LocaleQuery = Annotated[Locale, Query(description="the language of period names and file headers")]
_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FILES = {
    200: {"content": {m.split(";")[0]: {"schema": {"type": "string", "format": "binary"}} for m in _MEDIA.values()}}
}


def reach_of(principal: Principal) -> pb.ReportReach:
    rep_id, team_id = authz.report_reach(principal)
    return pb.ReportReach(rep_id=rep_id, team_id=team_id)


def viewer_of(principal: Principal) -> pb.ReportViewer:
    return pb.ReportViewer(
        user_id=principal.subject,
        roles=sorted(r.value for r in principal.roles),
        team_id=principal.team_id,
        admin=principal.has_role(authz.Role.ADMIN),
    )


def definition_to_proto(body: ReportDefinitionIn) -> pb.ReportDefinition:
    return pb.ReportDefinition(
        measures=body.measures,
        dimensions=body.dimensions,
        grain=body.periods.grain,
        calendar=body.periods.calendar,
        week_start=body.periods.week_start,
        fiscal_year_start_month=body.periods.fiscal_year_start_month,
        filters=[pb.ReportFilter(field=k, values=v) for k, v in body.filters.items()],
        range=body.range,
        start_date=body.start_date.isoformat() if body.start_date else "",
        end_date=body.end_date.isoformat() if body.end_date else "",
    )


def definition_from_proto(message: pb.ReportDefinition) -> ReportDefinition:
    return ReportDefinition.model_validate(
        {
            "measures": list(message.measures),
            "dimensions": list(message.dimensions),
            "periods": {
                "grain": message.grain or "month",
                "calendar": message.calendar or "gregorian",
                "week_start": message.week_start,
                "fiscal_year_start_month": message.fiscal_year_start_month or 1,
            },
            "filters": {f.field: list(f.values) for f in message.filters},
            "range": message.range,
            "start_date": message.start_date or None,
            "end_date": message.end_date or None,
        }
    )


def saved_from_proto(message: pb.SavedReport) -> SavedReport:
    found = message_to_dict(message)
    found["definition"] = definition_from_proto(message.definition)
    return SavedReport.model_validate(found)


def result_from_proto(reply: pb.ReportResult) -> ReportResult:
    def row(r: pb.ReportRow) -> dict[str, object]:
        return {
            "keys": list(r.keys),
            "labels": list(r.labels),
            "values": [None if v.empty else v.value for v in r.values],
        }

    dimensions = [c.name for c in reply.columns if c.kind == "dimension"]
    chart = ChartSpec(
        type=("line" if dimensions[0] == "period" else "bar") if dimensions else "none",
        x=dimensions[0] if dimensions else "",
        series=dimensions[1] if len(dimensions) > 1 else "",
        measure=0,
    )
    return ReportResult.model_validate(
        {
            "columns": [message_to_dict(c) for c in reply.columns],
            "rows": [row(r) for r in reply.rows],
            "total": row(reply.total),
            "start_date": reply.start_date,
            "end_date": reply.end_date,
            "chart": chart,
            "total_label": reply.total_label,
        }
    )


def _file(result: ReportResult, file_format: FileFormat, locale: str, name: str) -> Response:
    body = exports.to_csv(result) if file_format == "csv" else exports.to_xlsx(result, locale, name)
    file_name = f"report-{result.start_date}-{result.end_date}.{file_format}"
    return Response(
        body, media_type=_MEDIA[file_format], headers={"Content-Disposition": f'attachment; filename="{file_name}"'}
    )


@router.get("/reports/builder/catalog", tags=["reports"], operation_id="getReportCatalog")
async def report_catalog(clients: Clients, principal: Caller) -> ReportCatalog:
    """Every measure with its unit and the dimensions it can be broken down by; the grains,
    calendars, week starts and relative ranges."""
    return to_model(ReportCatalog, await read(clients.report_builder.GetReportCatalog, pb.GetReportCatalogRequest()))


async def _run(clients: Clients, principal: Principal, body: ReportDefinitionIn, locale: str) -> ReportResult:
    request = pb.RunReportRequest(definition=definition_to_proto(body), reach=reach_of(principal), locale=locale)
    return result_from_proto((await read(clients.report_builder.RunReport, request)).result)


@router.post("/reports/builder/run", tags=["reports"], operation_id="runReport")
async def run_report(
    body: ReportDefinitionIn, clients: Clients, principal: Caller, locale: LocaleQuery = "en"
) -> ReportResult:
    """The measures by the dimensions, with a total and a chart spec. 422 naming the field for a
    measure that does not fit a dimension or filter, a range too long for the grain (day: 400
    days, week: 5 years, else 10) or more than 5,000 rows."""
    return await _run(clients, principal, body, locale)


@router.post(
    "/reports/builder/export",
    tags=["reports"],
    operation_id="exportReport",
    response_class=Response,
    responses=_FILES,  # type: ignore[arg-type]
)
async def export_report(
    body: ReportDefinitionIn,
    clients: Clients,
    principal: Caller,
    format: Annotated[FileFormat, Query()] = "xlsx",
    locale: LocaleQuery = "en",
) -> Response:
    """The report as CSV or XLSX (right to left for Hebrew and Persian)."""
    return _file(await _run(clients, principal, body, locale), format, locale, "report")


@router.post("/saved-reports", status_code=201, tags=["reports"], operation_id="createSavedReport")
async def create_saved_report(
    body: SavedReportIn, clients: Clients, principal: Caller, idempotency_key: IdempotencyKey = None
) -> SavedReport:
    """Save a definition under a name, for oneself and for the roles in shared_roles (of team_id
    when set: a manager or rep shares within their own team only, else 403)."""
    if body.team_id and not principal.has_role(authz.Role.ADMIN) and body.team_id != principal.team_id:
        raise HTTPException(403, "You share reports within your own team only.")
    reply = await clients.report_builder.CreateSavedReport(
        pb.CreateSavedReportRequest(
            name=body.name,
            definition=definition_to_proto(body.definition),
            team_id=body.team_id,
            shared_roles=body.shared_roles,
            viewer=viewer_of(principal),
            request_id=body.request_id or (idempotency_key or "").strip(),
        )
    )
    return saved_from_proto(reply.report)


@router.get("/saved-reports", tags=["reports"], operation_id="listSavedReports")
async def list_saved_reports(clients: Clients, principal: Caller, page_size: PageSize = 0) -> SavedReports:
    """The caller's saved reports and those shared with their roles, newest first."""
    request = pb.ListSavedReportsRequest(viewer=viewer_of(principal), page_size=protoconv.page_size(page_size))
    reply = await read(clients.report_builder.ListSavedReports, request)
    return SavedReports(reports=[saved_from_proto(r) for r in reply.reports])


@router.get("/saved-reports/{report_id}", tags=["reports"], operation_id="getSavedReport")
async def get_saved_report(report_id: ResourceId, clients: Clients, principal: Caller) -> SavedReport:
    request = pb.GetSavedReportRequest(id=report_id, viewer=viewer_of(principal))
    return saved_from_proto((await read(clients.report_builder.GetSavedReport, request)).report)


@router.delete("/saved-reports/{report_id}", status_code=204, tags=["reports"], operation_id="deleteSavedReport")
async def delete_saved_report(report_id: ResourceId, clients: Clients, principal: Caller) -> Response:
    """Its owner's or an admin's; 403 for a caller it is only shared with."""
    request = pb.DeleteSavedReportRequest(id=report_id, viewer=viewer_of(principal))
    await change("saved report", report_id, clients.report_builder.DeleteSavedReport, request)
    return Response(status_code=204)


async def _run_saved(clients: Clients, principal: Principal, report_id: str, locale: str) -> ReportResult:
    request = pb.RunSavedReportRequest(
        id=report_id, viewer=viewer_of(principal), reach=reach_of(principal), locale=locale
    )
    return result_from_proto((await read(clients.report_builder.RunSavedReport, request)).result)


@router.get("/saved-reports/{report_id}/result", tags=["reports"], operation_id="runSavedReport")
async def run_saved_report(
    report_id: ResourceId, clients: Clients, principal: Caller, locale: LocaleQuery = "en"
) -> ReportResult:
    """The saved report now, in the caller's reach; 409 (SAVED_REPORT_OUTDATED) naming what it
    asks for that the builder no longer has."""
    return await _run_saved(clients, principal, report_id, locale)


@router.get(
    "/saved-reports/{report_id}/export",
    tags=["reports"],
    operation_id="exportSavedReport",
    response_class=Response,
    responses=_FILES,  # type: ignore[arg-type]
)
async def export_saved_report(
    report_id: ResourceId,
    clients: Clients,
    principal: Caller,
    format: Annotated[FileFormat, Query()] = "xlsx",
    locale: LocaleQuery = "en",
) -> Response:
    """The saved report now as CSV or XLSX."""
    saved = await read(
        clients.report_builder.GetSavedReport, pb.GetSavedReportRequest(id=report_id, viewer=viewer_of(principal))
    )
    return _file(await _run_saved(clients, principal, report_id, locale), format, locale, saved.report.name)
