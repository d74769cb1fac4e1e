"""Customer value against real PostgreSQL, from events through the handlers: the quintiles are cut
from every buyer, a customer scores and is named by segment with their lifetime value; the report
counts the buyers of a rep's leads per segment with the most valuable first; below 20 buyers it
says too_few_buyers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message

from crm.common.v1 import types_pb2
from crm.customers.v1 import events_pb2 as customer_events
from crm.leads.v1 import events_pb2 as lead_events
from crm.reporting.v1 import reporting_pb2
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit.db import Database
from crm_kit.protoconv import to_timestamp
from crm_reporting.db import messaging
from crm_reporting.grpc_api import ReportingServicer, cross_selling, lead_scoring

from .conftest import handled

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


async def handle(db: Database, message: Message) -> None:
    await handled(db, message, at=NOW)


async def buyer(db: Database, rep: str, purchases: list[tuple[int, int]]) -> str:
    """A customer of a lead owned by rep, who bought (days ago, amount) each."""
    lead_id, customer_id = f"lead-{uuid.uuid4().hex[:8]}", f"cust-{uuid.uuid4().hex[:8]}"
    first = NOW - timedelta(days=max(d for d, _ in purchases) + 1)
    await handle(db, lead_events.LeadCaptured(lead_id=lead_id, source="radio", capture_time=to_timestamp(first)))
    await handle(
        db, lead_events.LeadAssigned(lead_id=lead_id, rep_id=rep, team_id="north", assign_time=to_timestamp(first))
    )
    await handle(
        db, customer_events.CustomerCreated(customer_id=customer_id, lead_id=lead_id, create_time=to_timestamp(first))
    )
    for days, amount in purchases:
        await handle(
            db,
            sales_events.DealClosed(
                deal_id=f"deal-{uuid.uuid4().hex[:8]}", lead_id=lead_id, won=True,
                total=types_pb2.Money(amount_minor=amount, currency_code="ILS"),
                close_time=to_timestamp(NOW - timedelta(days=days)),
            ),
        )  # fmt: skip
    return customer_id


def servicer(db: Database) -> ReportingServicer:
    return ReportingServicer(
        db, lead_scoring(db, refresh_seconds=600, max_leads=100), cross_selling(db, refresh_seconds=600, max_buyers=100)
    )


async def test_customers_score_against_every_buyer_and_the_report_counts_segments(db: Database) -> None:
    few = await buyer(db, "rep-a", [(5, 10_000)])
    early = await servicer(db).GetCustomerValue(reporting_pb2.GetCustomerValueRequest(customer_id=few), None)
    assert early.value.status == "too_few_buyers" and early.value.lifetime_value.amount_minor == 10_000
    assert early.value.lifetime_value.currency_code == "ILS"

    # 24 ordinary buyers of rep-b; a champion and a big spender gone quiet of rep-a.
    for i in range(24):
        await buyer(db, "rep-b", [(30 + i * 10, 100_000 + i * 1000)])
    champion = await buyer(db, "rep-a", [(2, 900_000), (60, 800_000), (200, 700_000)])
    quiet = await buyer(db, "rep-a", [(500, 900_000), (600, 900_000), (700, 900_000)])
    reporting = servicer(db)
    best = (await reporting.GetCustomerValue(reporting_pb2.GetCustomerValueRequest(customer_id=champion), None)).value
    assert (best.status, best.segment, best.recency, best.frequency, best.monetary) == ("scored", "champions", 5, 5, 5)
    assert best.lifetime_value.amount_minor == 2_400_000 and best.lifetime_value.currency_code == "ILS"
    assert best.purchases == 3 and best.yearly_value.amount_minor > 0
    gone = (await reporting.GetCustomerValue(reporting_pb2.GetCustomerValueRequest(customer_id=quiet), None)).value
    assert (gone.recency, gone.segment) == (1, "cannot_lose")
    never = await reporting.GetCustomerValue(reporting_pb2.GetCustomerValueRequest(customer_id="cust-nobody"), None)
    assert never.value.status == "no_purchases" and never.buyers == 27

    report = await reporting.GetCustomerValueReport(
        reporting_pb2.GetCustomerValueReportRequest(rep_id="rep-a", top=2), None
    )
    assert report.status == "scored" and report.buyers == 3
    assert [c.customer_id for c in report.top] == [quiet, champion]
    assert sum(s.customers for s in report.segments) == 3 and "champions" in {s.segment for s in report.segments}
    everyone = await reporting.GetCustomerValueReport(reporting_pb2.GetCustomerValueReportRequest(), None)
    assert everyone.buyers == 27 and len(everyone.top) == 20


async def test_the_scheduled_scoring_publishes_customer_at_risk_when_a_band_changes(db: Database) -> None:
    from sqlalchemy import select

    from crm.reporting.v1 import events_pb2
    from crm_reporting.retention_api import churn_modelling, scan_risks

    # Silent for 400 days, buying and spending less than before, no contact: high.
    gone_quiet = await buyer(db, "rep-a", [(400, 100_000)])
    await buyer(db, "rep-a", [(5, 100_000)])  # low: kept quietly
    churn = churn_modelling(db, refresh_seconds=3600)
    assert await scan_risks(db, churn) == 1
    assert await scan_risks(db, churn) == 0, "nothing changed: nothing published"

    # The quiet customer buys again: back to low, published with the band before.
    lead_id = await _lead_of(db, gone_quiet)
    await handle(
        db,
        sales_events.DealClosed(
            deal_id="deal-back", lead_id=lead_id, won=True,
            total=types_pb2.Money(amount_minor=5000, currency_code="ILS"), close_time=to_timestamp(NOW),
        ),
    )  # fmt: skip
    assert await scan_risks(db, churn) == 1
    async with db.unit_of_work() as uow:
        rows = (await uow.conn.execute(select(messaging.outbox.c.subject, messaging.outbox.c.payload))).all()
    published = [
        events_pb2.CustomerAtRisk.FromString(r.payload) for r in rows if r.subject == "crm.reporting.customer_at_risk"
    ]
    assert [(e.customer_id, e.previous_band, e.band) for e in published] == [
        (gone_quiet, "", "high"),
        (gone_quiet, "high", "low"),
    ]
    assert {r.signal for r in published[0].reasons} >= {"no_purchase", "no_contact"} and published[0].model == "rules"
    # Another replica's turn within the hour skips the scan, whatever changed.
    await buyer(db, "rep-a", [(500, 100_000)])
    assert await scan_risks(db, churn, every_seconds=3600) == 0


async def _lead_of(db: Database, customer_id: str) -> str:
    from sqlalchemy import select

    from crm_reporting.db import customer_facts

    async with db.unit_of_work() as uow:
        found: str = (
            await uow.conn.execute(select(customer_facts.c.lead_id).where(customer_facts.c.customer_id == customer_id))
        ).scalar_one()
    return found
