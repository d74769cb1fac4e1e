"""/reports: per source and per campaign (admin, marketing, managers), and targets vs actual (each
caller's targets), from the reporting service."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from crm.reporting.v1 import reporting_pb2, targets_pb2
from crm_gateway import records
from crm_gateway.convert import IsoDate, IsoDateTime, enum_value, to_model, to_timestamp
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.reports.schemas import (
    AttributionModel,
    AttributionReport,
    CampaignReport,
    CrossSellReport,
    SourceReport,
    TargetReport,
)
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


@router.get("/reports/attribution", tags=["reports"], operation_id="getAttributionReport")
async def attribution_report(
    clients: Clients,
    principal: Caller,
    models: Annotated[list[AttributionModel], Query(min_length=1, max_length=4)],
    dimension: Literal["source", "campaign"] = "source",
    start_time: Period = None,
    end_time: Period = None,
    half_life_days: Annotated[float, Query(ge=0.5, le=365, description="time_decay's half-life")] = 7.0,
) -> AttributionReport:
    """The period's won deals (by close time) credited to sources or campaigns under 1 to 4
    attribution models side by side — first, last, linear, U-shaped 40/40/20, W-shaped, full path,
    time decay, and the data-driven Markov removal effect — each lead's capture and its returns
    being its touches; with each row's cost per credited deal and return on cost. A model that
    cannot answer (too little history for the data-driven one) is listed under `unavailable`."""
    reply = await read(
        clients.reporting.GetAttributionReport,
        reporting_pb2.GetAttributionReportRequest(
            start_time=to_timestamp(start_time),
            end_time=to_timestamp(end_time),
            dimension=dimension,
            models=models,
            half_life_days=half_life_days,
        ),
    )
    return to_model(AttributionReport, reply)


@router.get("/reports/cross-sell", tags=["reports"], operation_id="getCrossSellReport")
async def cross_sell_report(
    clients: Clients,
    principal: Caller,
    start_time: Period = None,
    end_time: Period = None,
    window_days: Annotated[int, Query(ge=1, le=365, description="days after an offer a purchase counts")] = 90,
) -> CrossSellReport:
    """Per offered product, the cross-sell offers made in the period: accepted, declined, and
    followed by the customer's purchase of it within window_days."""
    reply = await read(
        clients.reporting.GetCrossSellReport,
        reporting_pb2.GetCrossSellReportRequest(
            start_time=to_timestamp(start_time), end_time=to_timestamp(end_time), window_days=window_days
        ),
    )
    return to_model(CrossSellReport, reply)


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
