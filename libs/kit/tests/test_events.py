from datetime import UTC, datetime

import pytest

from crm.leads.v1 import events_pb2
from crm.orders.v1 import events_pb2 as orders_events
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit.events import PoisonMessage, ce_headers, decode, subject_for

pytestmark = pytest.mark.unit


def test_subject_comes_from_the_proto_package_and_name() -> None:
    assert subject_for(events_pb2.LeadAssigned) == "crm.leads.lead_assigned"
    assert subject_for(orders_events.OrderShipped) == "crm.orders.order_shipped"


def test_round_trip_keeps_id_type_and_body() -> None:
    message = sales_events.DealClosed(deal_id="d1", won=True)
    headers = ce_headers("e1", message, "/crm/sales", datetime(2026, 1, 2, tzinfo=UTC))
    assert headers["Nats-Msg-Id"] == headers["ce-id"] == "e1"
    assert headers["ce-type"] == "crm.sales.v1.DealClosed"
    envelope = decode("crm.sales.deal_closed", headers, message.SerializeToString(), sales_events.DealClosed)
    assert envelope.id == "e1" and envelope.message.deal_id == "d1" and envelope.message.won
    assert envelope.time == datetime(2026, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"ce-id": "x", "ce-type": "crm.sales.v1.DealClosed"}, b"\xff\xff\xff"),
        ({}, b""),
        ({"ce-id": "x", "ce-type": "crm.leads.v1.LeadCaptured"}, b""),
        ({"ce-id": "x", "ce-time": "yesterday"}, b""),
    ],
)
def test_what_can_never_be_handled_is_poison(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(PoisonMessage):
        decode("crm.sales.deal_closed", headers, body, sales_events.DealClosed)
