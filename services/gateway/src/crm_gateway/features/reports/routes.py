"""/reports: per source and per campaign, from the reporting service (admin, marketing, managers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from crm.reporting.v1 import reporting_pb2
from crm_gateway.convert import IsoDateTime, to_model, to_timestamp
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.reports.schemas import CampaignReport, SourceReport
from crm_gateway.records import read

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
