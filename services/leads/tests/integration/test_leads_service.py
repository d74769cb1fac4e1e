"""The leads service in process against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import nats
import pytest

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2, leads_pb2, leads_pb2_grpc
from crm_kit.grpc_client import channel
from crm_kit.testing import free_port, reset_stream, running_service
from crm_leads.db import messaging
from crm_leads.main import MIGRATIONS_DIR, LeadsSettings, setup

pytestmark = pytest.mark.integration


@pytest.fixture
async def leads(fresh_database, nats_server) -> AsyncIterator[leads_pb2_grpc.LeadsServiceStub]:
    await reset_stream(nats_server)
    port = free_port()
    settings = LeadsSettings(
        database_url=await fresh_database("leads"), nats_url=nats_server, grpc_port=port, metrics_port=free_port()
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup):
        ch = channel(f"127.0.0.1:{port}")
        yield leads_pb2_grpc.LeadsServiceStub(ch)
        await ch.close()


async def test_capture_routes_by_source_round_robin_and_publishes(leads, nats_server) -> None:
    first = (
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name="דנה כהן", phone_number="050-123-4567", source="radio", locale="he-IL", request_id="r-1"
            )
        )
    ).lead
    second = (
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name="علی رضایی", phone_number="0912 345 6789", source="tv", locale="fa-IR"
            )
        )
    ).lead
    assert first.phone_number == "+972501234567"
    assert second.phone_number == "+989123456789"
    assert first.assignment.rule_id == second.assignment.rule_id == "rule-broadcast"
    assert {first.assignment.rep_id, second.assignment.rep_id} == {"rep-dana", "rep-moshe"}

    again = (
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name="דנה כהן", phone_number="0501234567", source="radio", request_id="r-1"
            )
        )
    ).lead
    assert again.id == first.id

    nc = await nats.connect(nats_server)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe("crm.leads.>", durable="test-reader")
        msgs = await sub.fetch(4, timeout=10)
        kinds = [(m.subject, m.headers["ce-type"]) for m in msgs]
        assert kinds.count(("crm.leads.lead_captured", "crm.leads.v1.LeadCaptured")) == 2
        assert kinds.count(("crm.leads.lead_assigned", "crm.leads.v1.LeadAssigned")) == 2
        captured = events_pb2.LeadCaptured.FromString(msgs[0].data)
        assert captured.lead_id == first.id and msgs[0].headers["Nats-Msg-Id"] == msgs[0].headers["ce-id"]
    finally:
        await nc.close()


async def test_bad_input_is_invalid_argument_naming_the_field(leads) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad_phone:
        await leads.CaptureLead(leads_pb2.CaptureLeadRequest(full_name="x", phone_number="12", source="radio"))
    assert bad_phone.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "phone_number" in bad_phone.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as bad_source:
        await leads.CaptureLead(leads_pb2.CaptureLeadRequest(full_name="x", phone_number="0501234567", source="tiktok"))
    assert bad_source.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "radio" in bad_source.value.details()
    listed = await leads.ListLeads(leads_pb2.ListLeadsRequest())
    assert list(listed.leads) == []  # nothing half-written


async def test_convert_and_close_won_then_closing_again_fails(leads) -> None:
    lead = (
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(full_name="Noa", phone_number="052-7654321", source="website")
        )
    ).lead
    deal = (await leads.ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=lead.id, title="Sofa"))).deal
    assert deal.owner_rep_id == lead.assignment.rep_id
    ils = types_pb2.Money(amount_minor=459900, currency_code="ILS")
    closed = (
        await leads.CloseDeal(
            leads_pb2.CloseDealRequest(
                deal_id=deal.id,
                outcome=leads_pb2.DEAL_OUTCOME_WON,
                items=[
                    types_pb2.LineItem(sku="SOFA", description="ספה", quantity=1, unit_price=ils),
                    types_pb2.LineItem(
                        sku="PILLOW",
                        description="כרית",
                        quantity=2,
                        unit_price=types_pb2.Money(amount_minor=5000, currency_code="ILS"),
                    ),
                ],
            )
        )
    ).deal
    assert closed.status == leads_pb2.DEAL_STATUS_WON
    assert closed.total.amount_minor == 469900 and closed.total.currency_code == "ILS"
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await leads.CloseDeal(leads_pb2.CloseDealRequest(deal_id=deal.id, outcome=leads_pb2.DEAL_OUTCOME_LOST))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_list_leads_pages_with_a_cursor(leads) -> None:
    for i in range(5):
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(full_name=f"Lead {i}", phone_number=f"050-000000{i}", source="press")
        )
    page1 = await leads.ListLeads(leads_pb2.ListLeadsRequest(page_size=3))
    page2 = await leads.ListLeads(leads_pb2.ListLeadsRequest(page_size=3, page_token=page1.next_page_token))
    assert len(page1.leads) == 3 and len(page2.leads) == 2 and page2.next_page_token == ""
    assert {x.full_name for x in [*page1.leads, *page2.leads]} == {f"Lead {i}" for i in range(5)}


async def test_round_robin_stays_even_under_concurrent_captures(leads) -> None:
    import asyncio
    from collections import Counter

    async def one(i: int) -> str:
        request = leads_pb2.CaptureLeadRequest(full_name=f"Lead {i}", phone_number=f"052-{i:07d}", source="radio")
        return (await leads.CaptureLead(request)).lead.assignment.rep_id

    reps = Counter(await asyncio.gather(*(one(i) for i in range(40))))
    assert reps == Counter({"rep-dana": 20, "rep-moshe": 20})
