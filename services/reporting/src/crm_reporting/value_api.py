"""Customer value over gRPC (ReportingService.GetCustomerValue, GetCustomerValueReport): proto ↔
crm_reporting.value and its store. The quintile cut points are learned from every buyer and kept
for `refresh_seconds` (the `Retrained` cache, relearned in the background)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from crm.common.v1 import types_pb2
from crm.reporting.v1 import reporting_pb2
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import to_timestamp
from crm_reporting import value, value_store
from crm_reporting.retrained import Retrained
from crm_reporting.scoring import SEGMENTS, UNSEGMENTED

CustomerValuing = Retrained[value.Edges | value.TooFewBuyers]
DEFAULT_TOP, MAX_TOP = 20, 100


async def _found(uow: UnitOfWork) -> value_store.Found:
    return await value_store.edges(uow, datetime.now(UTC))


def customer_valuing(db: Database, *, refresh_seconds: float) -> CustomerValuing:
    return Retrained(
        db,
        refresh_seconds=refresh_seconds,
        load=_found,
        train=lambda f: value.edges(f.buyers, f.recency, f.frequency, f.monetary, f.currency),
        too_little=value.TooFewBuyers,
    )


def _money(amount: int, currency: str) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount, currency_code=currency)


def value_to_proto(customer_id: str, found: value.CustomerValue, currency: str) -> reporting_pb2.CustomerValue:
    return reporting_pb2.CustomerValue(
        customer_id=customer_id,
        status="scored",
        recency=found.rfm.recency,
        frequency=found.rfm.frequency,
        monetary=found.rfm.monetary,
        segment=found.segment,
        recency_days=found.recency_days,
        purchases=found.purchases,
        lifetime_value=_money(found.value_minor, currency),
        yearly_value=_money(found.yearly_value_minor, currency),
        first_purchase_time=to_timestamp(found.first_purchase),
        last_purchase_time=to_timestamp(found.last_purchase),
    )


def _score(e: value.Edges, row: Any, now: datetime) -> value.CustomerValue:
    return value.score(
        e,
        now=now,
        first_purchase=row.first_purchase,
        last_purchase=row.last_purchase,
        purchases=row.purchases,
        value_minor=int(row.value_minor),
    )


async def customer_value(
    db: Database, valuing: CustomerValuing, customer_id: str
) -> reporting_pb2.GetCustomerValueResponse:
    require({"customer_id": customer_id})
    _, edges = await valuing.current()
    async with db.unit_of_work() as uow:
        row = await value_store.one(uow, customer_id)
    if isinstance(edges, value.TooFewBuyers):
        found = reporting_pb2.CustomerValue(customer_id=customer_id, status="too_few_buyers")
        if row.purchases:
            found.purchases = row.purchases
            found.lifetime_value.CopyFrom(_money(int(row.value_minor), edges.currency))
        return reporting_pb2.GetCustomerValueResponse(value=found)
    if not row.purchases:
        return reporting_pb2.GetCustomerValueResponse(
            value=reporting_pb2.CustomerValue(customer_id=customer_id, status="no_purchases"), buyers=edges.buyers
        )
    scored = _score(edges, row, datetime.now(UTC))
    return reporting_pb2.GetCustomerValueResponse(
        value=value_to_proto(customer_id, scored, edges.currency), buyers=edges.buyers
    )


async def value_report(
    db: Database, valuing: CustomerValuing, request: reporting_pb2.GetCustomerValueReportRequest
) -> reporting_pb2.GetCustomerValueReportResponse:
    if not 0 <= request.top <= MAX_TOP:
        raise InvalidArgument("top", field_violations=[("top", f"0 to {MAX_TOP} (0: {DEFAULT_TOP})")])
    _, edges = await valuing.current()
    if isinstance(edges, value.TooFewBuyers):
        return reporting_pb2.GetCustomerValueReportResponse(status="too_few_buyers", buyers=0)
    async with db.unit_of_work() as uow:
        rows = await value_store.in_reach(uow, rep_id=request.rep_id, team_id=request.team_id)
    now = datetime.now(UTC)
    scored = [(row.customer_id, _score(edges, row, now)) for row in rows]
    customers: dict[str, int] = defaultdict(int)
    amounts: dict[str, int] = defaultdict(int)
    for _, found in scored:
        customers[found.segment] += 1
        amounts[found.segment] += found.value_minor
    order = [name for name, _, _ in SEGMENTS] + [UNSEGMENTED]
    scored.sort(key=lambda c: (-c[1].value_minor, c[0]))
    return reporting_pb2.GetCustomerValueReportResponse(
        status="scored",
        buyers=len(scored),
        segments=[
            reporting_pb2.SegmentFigures(
                segment=name, customers=customers[name], value=_money(amounts[name], edges.currency)
            )
            for name in order
            if customers[name]
        ],
        top=[value_to_proto(c, found, edges.currency) for c, found in scored[: request.top or DEFAULT_TOP]],
    )
