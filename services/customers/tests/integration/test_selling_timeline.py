"""Selling on the customer's timeline: a deal entering an open stage, a quote sent and accepted
(sales' DealStageChanged, QuoteSent, QuoteAccepted), against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm.common.v1 import types_pb2
from crm.customers.v1 import customers_pb2
from crm.leads.v1 import events_pb2 as leads_events
from crm.sales.v1 import events_pb2 as sales_events
from crm.sales.v1 import pipelines_pb2
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, publish_event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TOTAL = types_pb2.Money(amount_minor=2_950_000, currency_code="ILS")


def moved(lead_id: str, to: str, name: str, outcome: int, at: datetime) -> sales_events.DealStageChanged:
    return sales_events.DealStageChanged(
        deal_id="deal-1",
        lead_id=lead_id,
        pipeline_id="kitchens",
        from_stage_id="kitchens-new",
        to_stage_id=to,
        to_stage_name=name,
        to_stage_outcome=outcome,
        move_time=to_timestamp(at),
    )


async def test_stage_moves_and_quotes_join_the_timeline_once(customers, nats_server) -> None:
    stub, _ = customers
    lead_id = str(uuid.uuid4())
    await publish_event(
        nats_server,
        leads_events.LeadCaptured(
            lead_id=lead_id, full_name="יעל לוי", phone_number="+972521234567", capture_time=to_timestamp(T0)
        ),
    )
    open_move = moved(lead_id, "kitchens-quote", "הצעת מחיר", pipelines_pb2.STAGE_OUTCOME_OPEN, T0 + timedelta(hours=1))
    moved_id = await publish_event(nats_server, open_move)
    # Entering the won stage is the close's own entry (deal_won from DealClosed): none here.
    await publish_event(
        nats_server, moved(lead_id, "kitchens-won", "Won", pipelines_pb2.STAGE_OUTCOME_WON, T0 + timedelta(hours=3))
    )
    quote = {"quote_id": "q-1", "number": "Q-2026-000007", "version": 2, "deal_id": "deal-1", "lead_id": lead_id}
    await publish_event(
        nats_server, sales_events.QuoteSent(**quote, total=TOTAL, send_time=to_timestamp(T0 + timedelta(hours=2)))
    )
    await publish_event(
        nats_server,
        sales_events.QuoteAccepted(**quote, total=TOTAL, accept_time=to_timestamp(T0 + timedelta(hours=3))),
    )
    await publish_event(nats_server, open_move, event_id=moved_id)

    async def entries() -> list[Any] | None:
        found = (await stub.ListCustomers(customers_pb2.ListCustomersRequest(lead_id=lead_id))).customers
        if not found:
            return None
        listed = (await stub.ListTimeline(customers_pb2.ListTimelineRequest(customer_id=found[0].id))).entries
        return list(listed) if len(listed) >= 4 else None

    timeline = await eventually(entries, timeout=30)
    assert [(e.kind, e.summary) for e in timeline] == [
        (customers_pb2.TOUCH_KIND_LEAD_CAPTURED, timeline[0].summary),
        (customers_pb2.TOUCH_KIND_DEAL_STAGE_CHANGED, "Deal moved to הצעת מחיר"),
        (customers_pb2.TOUCH_KIND_QUOTE_SENT, timeline[2].summary),
        (customers_pb2.TOUCH_KIND_QUOTE_ACCEPTED, timeline[3].summary),
    ]
    assert timeline[2].summary.startswith("Quote Q-2026-000007 v2 sent: ")
    assert timeline[3].summary.startswith("Quote Q-2026-000007 v2 accepted: ")
    assert "29,500.00" in timeline[3].summary
