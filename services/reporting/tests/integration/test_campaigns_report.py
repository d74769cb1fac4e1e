"""Campaign cost and return in the reporting service (CampaignChanged, LeadCaptured, DealClosed)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2 as lead_events
from crm.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, free_port, local_channel, publish_event, reset_stream, running_service
from crm_reporting.db import messaging
from crm_reporting.main import MIGRATIONS_DIR, ReportingSettings, setup

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def reporting(fresh_database, nats_server) -> AsyncIterator[reporting_pb2_grpc.ReportingServiceStub]:
    await reset_stream(nats_server)
    port = free_port()
    settings = ReportingSettings(
        database_url=await fresh_database("reporting"), nats_url=nats_server, grpc_port=port, metrics_port=free_port()
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup):
        ch = local_channel(port)
        yield reporting_pb2_grpc.ReportingServiceStub(ch)
        await ch.close()


def ils(amount: int) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount, currency_code="ILS")


def changed(campaign_id: str, cost: int, at: datetime, name: str = "רדיו חורף") -> lead_events.CampaignChanged:
    return lead_events.CampaignChanged(
        campaign_id=campaign_id,
        source="radio",
        name=name,
        budget=ils(1_000_000),
        actual_cost=ils(cost),
        update_time=to_timestamp(at),
    )


def captured(lead_id: str, campaign_id: str) -> lead_events.LeadCaptured:
    return lead_events.LeadCaptured(
        lead_id=lead_id, source="radio", campaign="רדיו חורף", campaign_id=campaign_id, capture_time=to_timestamp(T0)
    )


def won(lead_id: str, amount: int) -> sales_events.DealClosed:
    return sales_events.DealClosed(
        deal_id=f"deal-{uuid.uuid4().hex[:8]}",
        lead_id=lead_id,
        won=True,
        total=ils(amount),
        source="radio",
        close_time=to_timestamp(T0 + timedelta(days=2)),
    )


async def test_the_campaign_report_shows_cost_leads_wins_revenue_cost_per_lead_and_return(
    reporting: reporting_pb2_grpc.ReportingServiceStub, nats_server: str
) -> None:
    campaign_id = str(uuid.uuid4())
    leads = [f"lead-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    # The later cost arrives first: the report keeps the latest state by update time.
    await publish_event(nats_server, changed(campaign_id, 900_000, T0 + timedelta(hours=1)))
    await publish_event(nats_server, changed(campaign_id, 100, T0, name="old name"))
    for lead_id in leads:
        await publish_event(nats_server, captured(lead_id, campaign_id))
    await publish_event(nats_server, won(leads[0], 2_700_000))
    await publish_event(nats_server, captured("lead-elsewhere", ""))

    async def report() -> reporting_pb2.CampaignReportRow | None:
        rows = (await reporting.GetCampaignReport(reporting_pb2.GetCampaignReportRequest(source="radio"))).rows
        done = [r for r in rows if r.leads == 3 and r.won_deals == 1]
        return done[0] if done else None

    row = await eventually(report)
    assert (row.campaign_id, row.name) == (campaign_id, "רדיו חורף")
    assert (row.cost.amount_minor, row.cost.currency_code) == (900_000, "ILS")
    assert [(m.currency_code, m.amount_minor) for m in row.revenue] == [("ILS", 2_700_000)]
    assert row.cost_per_lead.amount_minor == 300_000
    assert row.return_on_cost == pytest.approx(3.0)
    # The period counts leads by capture and deals by close; the cost is the whole campaign's.
    capture_day = await reporting.GetCampaignReport(
        reporting_pb2.GetCampaignReportRequest(
            start_time=to_timestamp(T0), end_time=to_timestamp(T0 + timedelta(days=1))
        )
    )
    [only] = capture_day.rows
    assert (only.leads, only.won_deals, only.cost.amount_minor) == (3, 0, 900_000)

    sources = (await reporting.GetSourceReport(reporting_pb2.GetSourceReportRequest())).rows
    radio = next(r for r in sources if r.source == "radio")
    assert [(m.currency_code, m.amount_minor) for m in radio.cost] == [("ILS", 900_000)]
