"""/reports: per source and per campaign (admin, marketing, managers), and targets vs actual (each
caller's targets), from the reporting service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from crm.reporting.v1 import reporting_pb2, targets_pb2
from crm_gateway import records
from crm_gateway.convert import IsoDate, IsoDateTime, enum_value, to_model, to_timestamp
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.reports.schemas import CampaignReport, SourceReport, TargetReport
from crm_gateway.features.targets.schemas import PeriodKind, SubjectKind
from crm_gateway.platform import authz
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()

Period = Annotated[IsoDateTime | None, Query(description="ISO 8601; without a zone it is UTC")]


@router.get("/reports/sources", tags=["reports"], operation_id="getSourceReport")
async def source_report(
    clients: Clients, principal: Caller, start_time: Period = None, end_time: Period = None
) -> SourceReport:
    reply = await read(
        clients.reporting.GetSourceReport,
        reporting_pb2.GetSourceReportRequest(start_time=to_timestamp(start_time), end_time=to_timestamp(end_time)),
    )
    return to_model(SourceReport, reply)


@router.get("/reports/campaigns", tags=["reports"], operation_id="getCampaignReport")
async def campaign_report(
    clients: Clients,
    principal: Caller,
    source: Annotated[str, Query(max_length=50)] = "",
    start_time: Period = None,
    end_time: Period = None,
) -> CampaignReport:
    """Per campaign: its cost (the whole campaign), and in the period its leads (by capture time),
    won deals and revenue (by close time), cost per lead and return on cost."""
    reply = await read(
        clients.reporting.GetCampaignReport,
        reporting_pb2.GetCampaignReportRequest(
            start_time=to_timestamp(start_time), end_time=to_timestamp(end_time), source=source
        ),
    )
    return to_model(CampaignReport, reply)


@router.get("/reports/targets", tags=["reports"], operation_id="getTargetReport")
async def target_report(
    clients: Clients,
    principal: Caller,
    period_kind: PeriodKind = "month",
    date: Annotated[IsoDate | None, Query(description="A day of the period; default today (company time zone)")] = None,
    subject_kind: SubjectKind | None = None,
) -> TargetReport:
    """Each target of the period the caller sees (a rep their own; a manager their team's and its
    reps'; marketing every source's): the target, the actual so far, % achieved and the run-rate
    projection to the period's end (actual / elapsed share of the period), with the period's bounds."""
    request = targets_pb2.GetTargetReportRequest(
        scope=await records.target_scope(clients, authz.target_reach(principal)),
        period_kind=enum_value(targets_pb2.PeriodKind, period_kind),
        date=protoconv.to_date(date),
        subject_kind=(
            enum_value(targets_pb2.TargetSubjectKind, subject_kind)
            if subject_kind
            else targets_pb2.TARGET_SUBJECT_KIND_UNSPECIFIED
        ),
    )
    return to_model(TargetReport, await read(clients.targets.GetTargetReport, request))
