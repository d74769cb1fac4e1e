"""/reports/forecast: the weighted pipeline, best case, commit and closed won per currency, grouped by
owner, team, pipeline or month (crm.sales.v1.DealsService.GetForecast; docs/selling.md, "Forecast").
Its own module: the other /reports routes are the reporting service's."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from crm.sales.v1 import deals_pb2
from crm_gateway.convert import IsoDate, enum_value, to_model
from crm_gateway.deps import Caller, Clients, FilterId, api_router
from crm_gateway.features.reports.forecast_schemas import Forecast, ForecastGroupBy
from crm_gateway.platform import authz
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()

Day = Annotated[IsoDate | None, Query(description="YYYY-MM-DD in the company's time zone, included")]


@router.get("/reports/forecast", tags=["reports"], operation_id="getForecast")
async def get_forecast(
    clients: Clients,
    principal: Caller,
    group_by: ForecastGroupBy = "month",
    pipeline_id: FilterId = "",
    owner_rep_id: FilterId = "",
    owner_team_id: FilterId = "",
    period_start: Day = None,
    period_end: Day = None,
) -> Forecast:
    """Open deals by expected close date and won deals by close date in the period (unset: any);
    months and days are the company's calendar (its time zone, CRM_COMPANY_TIME_ZONE of the sales
    service), as in GET /reports/targets. Held to the caller's deals like GET /deals: an admin's
    all, a manager's team's, a rep's own."""
    owner_rep_id, owner_team_id = authz.list_scope(principal, owner_rep_id, owner_team_id, "deals")
    request = deals_pb2.GetForecastRequest(
        group_by=enum_value(deals_pb2.ForecastGroupBy, group_by),
        pipeline_id=pipeline_id,
        owner_rep_id=owner_rep_id,
        owner_team_id=owner_team_id,
        period_start=protoconv.to_date(period_start),
        period_end=protoconv.to_date(period_end),
    )
    return to_model(Forecast, await read(clients.deals.GetForecast, request))
