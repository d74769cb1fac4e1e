"""ReportingService: proto ↔ queries. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

import grpc

from crm.common.v1 import types_pb2
from crm.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from crm_kit.db import Database
from crm_kit.protoconv import from_timestamp
from crm_reporting import domain, queries


def source_row_to_proto(row: domain.SourceRow, cost: dict[str, int] | None = None) -> reporting_pb2.SourceReportRow:
    return reporting_pb2.SourceReportRow(
        cost=[types_pb2.Money(amount_minor=a, currency_code=c) for c, a in sorted((cost or {}).items())],
        source=row.source,
        leads=row.leads,
        won_deals=row.won_deals,
        lost_deals=row.lost_deals,
        revenue=[
            types_pb2.Money(amount_minor=amount, currency_code=currency)
            for currency, amount in row.revenue_by_currency()
        ],
    )


def campaign_row_to_proto(row: domain.CampaignRow) -> reporting_pb2.CampaignReportRow:
    per_lead = row.cost_per_lead_minor()
    return reporting_pb2.CampaignReportRow(
        campaign_id=row.campaign_id,
        source=row.source,
        name=row.name,
        budget=types_pb2.Money(amount_minor=row.budget_minor, currency_code=row.currency_code),
        cost=types_pb2.Money(amount_minor=row.cost_minor, currency_code=row.currency_code),
        leads=row.leads,
        won_deals=row.won_deals,
        lost_deals=row.lost_deals,
        revenue=[types_pb2.Money(amount_minor=a, currency_code=c) for c, a in row.revenue_by_currency()],
        cost_per_lead=(
            types_pb2.Money(amount_minor=per_lead, currency_code=row.currency_code) if per_lead is not None else None
        ),
        return_on_cost=row.return_on_cost(),
    )


class ReportingServicer(reporting_pb2_grpc.ReportingServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def GetSourceReport(
        self, request: reporting_pb2.GetSourceReportRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetSourceReportResponse:
        period = domain.validate_period(
            from_timestamp(request.start_time, request.HasField("start_time")),
            from_timestamp(request.end_time, request.HasField("end_time")),
        )
        async with self.db.unit_of_work() as uow:
            rows = await queries.source_report(uow, period)
            costs = await queries.source_costs(uow)
        return reporting_pb2.GetSourceReportResponse(rows=[source_row_to_proto(r, costs.get(r.source)) for r in rows])

    async def GetCampaignReport(
        self, request: reporting_pb2.GetCampaignReportRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetCampaignReportResponse:
        period = domain.validate_period(
            from_timestamp(request.start_time, request.HasField("start_time")),
            from_timestamp(request.end_time, request.HasField("end_time")),
        )
        async with self.db.unit_of_work() as uow:
            rows = await queries.campaign_report(uow, period, request.source.strip().lower())
        return reporting_pb2.GetCampaignReportResponse(rows=[campaign_row_to_proto(r) for r in rows])
