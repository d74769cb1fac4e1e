"""ReportingService: proto ↔ queries. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

import grpc

from crm.common.v1 import types_pb2
from crm.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from crm_kit.db import Database
from crm_kit.protoconv import from_timestamp
from crm_reporting import domain, queries


def source_row_to_proto(row: domain.SourceRow) -> reporting_pb2.SourceReportRow:
    return reporting_pb2.SourceReportRow(
        source=row.source,
        leads=row.leads,
        won_deals=row.won_deals,
        lost_deals=row.lost_deals,
        revenue=[
            types_pb2.Money(amount_minor=amount, currency_code=currency)
            for currency, amount in row.revenue_by_currency()
        ],
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
        return reporting_pb2.GetSourceReportResponse(rows=[source_row_to_proto(r) for r in rows])
