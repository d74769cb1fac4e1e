"""Campaign cost and return in the reporting service (CampaignChanged, LeadCaptured, DealClosed)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2 as lead_events
from crm.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import (
    eventually,
    field_violations,
    free_port,
    local_channel,
    publish_event,
    reset_stream,
    running_service,
)
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


async def test_attribution_credits_the_first_and_the_last_touch_and_prices_each_won_deal(
    reporting: reporting_pb2_grpc.ReportingServiceStub, nats_server: str
) -> None:
    """A lead from the radio campaign comes back through a web form campaign and wins 27,000; a
    second radio lead is lost. First touch: the radio campaign earns the deal; last touch: the web
    form. Cost per credited deal and return on cost follow each model."""
    radio, web = str(uuid.uuid4()), str(uuid.uuid4())
    await publish_event(nats_server, changed(radio, 900_000, T0))
    await publish_event(nats_server, changed(web, 300_000, T0, name="טופס אתר"))
    buyer, other = f"lead-{uuid.uuid4().hex[:8]}", f"lead-{uuid.uuid4().hex[:8]}"
    await publish_event(nats_server, captured(buyer, radio))
    await publish_event(nats_server, captured(other, radio))
    await publish_event(
        nats_server,
        lead_events.LeadTouched(
            lead_id=buyer,
            touch_id=f"touch-{uuid.uuid4().hex[:8]}",
            source="web_form",
            campaign_id=web,
            touch_time=to_timestamp(T0 + timedelta(days=1)),
        ),
    )
    await publish_event(nats_server, won(buyer, 2_700_000))
    request = reporting_pb2.GetAttributionReportRequest(
        dimension="campaign",
        models=["first", "last", "markov"],
        start_time=to_timestamp(T0),
        end_time=to_timestamp(T0 + timedelta(days=7)),
    )

    async def report() -> reporting_pb2.GetAttributionReportResponse | None:
        found = await reporting.GetAttributionReport(request)
        touched = [r for r in found.rows if r.key == web and any(c.deals for c in r.credits)]
        return found if found.conversions == 1 and touched else None

    found = await eventually(report)
    assert (found.journeys, found.conversions) == (2, 1)
    rows = {r.key: {c.model: c for c in r.credits} for r in found.rows}
    assert rows[radio]["first"].deals == 1 and rows[radio]["last"].deals == 0
    assert rows[web]["last"].deals == 1 and rows[web]["first"].deals == 0
    assert [(m.currency_code, m.amount_minor) for m in rows[radio]["first"].cost_per_deal] == [("ILS", 900_000)]
    assert rows[radio]["first"].return_on_cost == pytest.approx(3.0) and rows[web]["last"].return_on_cost == 9.0
    assert [u.model for u in found.unavailable] == ["markov"]  # two journeys: too few to fit

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await reporting.GetAttributionReport(
            reporting_pb2.GetAttributionReportRequest(dimension="rep", models=["first", "shapley"])
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(refused.value)) == {"models", "dimension"}
