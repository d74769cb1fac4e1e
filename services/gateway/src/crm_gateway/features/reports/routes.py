"""/reports: per source and per campaign (admin, marketing, managers), and targets vs actual (each
caller's targets), from the reporting service."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from crm.reporting.v1 import reporting_pb2, targets_pb2
from crm.sales.v1 import pipelines_pb2
from crm_gateway import records
from crm_gateway.convert import IsoDate, IsoDateTime, enum_value, message_to_dict, to_model, to_timestamp
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.reports.schemas import (
    AttributionModel,
    AttributionReport,
    CampaignReport,
    CrossSellReport,
    CustomerValueReport,
    FunnelReport,
    SourceReport,
    SpeedToLeadReport,
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


@router.get("/reports/speed-to-lead", tags=["reports"], operation_id="getSpeedToLeadReport")
async def speed_to_lead_report(
    clients: Clients, principal: Caller, start_time: Period = None, end_time: Period = None
) -> SpeedToLeadReport:
    """Leads captured in the period per band of time to a rep's first response (under 5 minutes,
    5-30, 30 minutes-2 hours, 2-24 hours, over a day, never) with how many were won and lost and
    the win rate. A rep's own leads, a manager's team's; admins and marketing every lead."""
    rep_id, team_id = authz.report_reach(principal)
    request = reporting_pb2.GetSpeedToLeadReportRequest(
        start_time=to_timestamp(start_time), end_time=to_timestamp(end_time), rep_id=rep_id, team_id=team_id
    )
    return to_model(SpeedToLeadReport, await read(clients.reporting.GetSpeedToLeadReport, request))


@router.get("/reports/customer-value", tags=["reports"], operation_id="getCustomerValueReport")
async def customer_value_report(
    clients: Clients,
    principal: Caller,
    top: Annotated[int, Query(ge=1, le=100, description="the most valuable customers to list")] = 20,
) -> CustomerValueReport:
    """The buyers the caller sees (a rep: of their leads; a manager: the team's; admins and
    marketing: every buyer) per RFM segment — customers and value — and the most valuable first.
    Marketing, who read no customer records, get the segments only (`top` empty)."""
    rep_id, team_id = authz.report_reach(principal)
    request = reporting_pb2.GetCustomerValueReportRequest(rep_id=rep_id, team_id=team_id, top=top)
    found = to_model(CustomerValueReport, await read(clients.reporting.GetCustomerValueReport, request))
    if not authz.reads_customers(principal):
        found.top = []
    return found


@router.get("/reports/funnel", tags=["reports"], operation_id="getFunnelReport")
async def funnel_report(
    clients: Clients,
    principal: Caller,
    pipeline_id: Annotated[str, Query(min_length=1, max_length=100)] = "default",
    dimension: Literal["", "source", "campaign", "rep"] = "",
    start_time: Period = None,
    end_time: Period = None,
) -> FunnelReport:
    """The pipeline's deals opened in the period and how many reached each of its stages, first to
    won (a deal that skipped a stage still passed it), per source, campaign or owner; held to the
    caller like the report builder. An unknown pipeline is 404."""
    rep_id, team_id = authz.report_reach(principal)
    pipeline = (
        await records.get(
            "pipeline",
            pipeline_id,
            clients.pipelines.GetPipeline,
            pipelines_pb2.GetPipelineRequest(pipeline_id=pipeline_id),
        )
    ).pipeline
    stages = [s for s in pipeline.stages if s.outcome != pipelines_pb2.STAGE_OUTCOME_LOST]
    reply = await read(
        clients.reporting.GetFunnelReport,
        reporting_pb2.GetFunnelReportRequest(
            pipeline_id=pipeline.id,
            stage_ids=[s.id for s in stages],
            start_time=to_timestamp(start_time),
            end_time=to_timestamp(end_time),
            dimension=dimension,
            rep_id=rep_id,
            team_id=team_id,
        ),
    )
    return FunnelReport.model_validate(
        {
            "pipeline_id": pipeline.id,
            "stages": [{"id": s.id, "name": s.name} for s in stages],
            "rows": [message_to_dict(r) for r in reply.rows],
            "total": message_to_dict(reply.total),
        }
    )


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
