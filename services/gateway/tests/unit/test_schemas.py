"""Protobuf ↔ JSON conversion: enum words, nulls for unset messages, dates and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from crm.common.v1 import types_pb2
from crm.customers.v1 import customers_pb2
from crm.leads.v1 import leads_pb2
from crm.notifications.v1 import notifications_pb2
from crm.orders.v1 import orders_pb2
from crm.reporting.v1 import reporting_pb2
from crm.sales.v1 import deals_pb2
from crm_gateway.convert import to_model, to_timestamp
from crm_gateway.features.customers.schemas import TimelineEntry
from crm_gateway.features.deals.schemas import CloseDealIn, Deal
from crm_gateway.features.leads.schemas import Lead
from crm_gateway.features.messages.schemas import NotificationMessage
from crm_gateway.features.orders.schemas import Order
from crm_gateway.features.reports.schemas import SourceReport
from crm_gateway.features.routing_rules.schemas import RoutingRuleIn

pytestmark = pytest.mark.unit


def test_unset_messages_are_null_and_enums_are_words() -> None:
    order = to_model(Order, orders_pb2.Order(id="o-1", status=orders_pb2.ORDER_STATUS_PENDING))

    assert order.model_dump(mode="json") == {
        "id": "o-1",
        "deal_id": "",
        "lead_id": "",
        "status": "pending",
        "lines": [],
        "total": None,
        "shipment": None,
        "create_time": None,
    }


@pytest.mark.parametrize(
    ("model", "message", "word"),
    [
        (Lead, leads_pb2.Lead(status=leads_pb2.LEAD_STATUS_CONVERTED), "converted"),
        (Deal, deals_pb2.Deal(status=deals_pb2.DEAL_STATUS_LOST), "lost"),
        (Order, orders_pb2.Order(status=orders_pb2.ORDER_STATUS_SHIPPED), "shipped"),
        (
            NotificationMessage,
            notifications_pb2.Message(status=notifications_pb2.MESSAGE_STATUS_SUPPRESSED),
            "suppressed",
        ),
        (Lead, leads_pb2.Lead(), "unspecified"),
    ],
)
def test_status_words(model, message, word: str) -> None:
    assert to_model(model, message).status == word


def test_timeline_kind_and_time() -> None:
    entry = customers_pb2.TimelineEntry(
        kind=customers_pb2.TOUCH_KIND_LEAD_CAPTURED,
        occur_time=Timestamp(seconds=1_700_000_000, nanos=500_000_000),
    )

    dumped = to_model(TimelineEntry, entry).model_dump(mode="json")

    assert dumped["kind"] == "lead_captured"
    assert dumped["occur_time"] == "2023-11-14T22:13:20.500000Z"


def test_report_rows_keep_revenue_per_currency() -> None:
    reply = reporting_pb2.GetSourceReportResponse(
        rows=[
            reporting_pb2.SourceReportRow(
                source="radio",
                leads=10,
                won_deals=3,
                lost_deals=2,
                revenue=[
                    types_pb2.Money(amount_minor=100, currency_code="ILS"),
                    types_pb2.Money(amount_minor=7, currency_code="USD"),
                ],
                tickets=4,
            )
        ]
    )

    assert to_model(SourceReport, reply).model_dump() == {
        "rows": [
            {
                "source": "radio",
                "leads": 10,
                "won_deals": 3,
                "lost_deals": 2,
                "revenue": [
                    {"amount_minor": 100, "currency_code": "ILS"},
                    {"amount_minor": 7, "currency_code": "USD"},
                ],
                "cost": [],
                "tickets": 4,
                "complaints": 0,
            }
        ]
    }


def test_query_datetimes_without_zone_are_utc() -> None:
    naive = to_timestamp(datetime(2025, 1, 1, 12, 0))
    aware = to_timestamp(datetime(2025, 1, 1, 12, 0, tzinfo=UTC))

    assert naive == aware
    assert to_timestamp(None) is None


def test_close_deal_lost_request() -> None:
    body = CloseDealIn(outcome="lost", lost_reason="  too expensive ")

    request = body.to_proto("deal-1")

    assert request.outcome == deals_pb2.DEAL_OUTCOME_LOST
    assert request.lost_reason == "too expensive"
    assert list(request.items) == []


def test_timeline_kinds_are_the_contracts_touch_kinds() -> None:
    from typing import get_args

    from crm.customers.v1 import customers_pb2

    contract = {name.removeprefix("TOUCH_KIND_").lower() for name in customers_pb2.TouchKind.keys()}
    assert set(get_args(TimelineEntry.model_fields["kind"].annotation)) == contract


@pytest.mark.parametrize("value", [True, False])
def test_true_or_false_is_not_a_number_in_a_body(value: bool) -> None:
    with pytest.raises(ValidationError) as refused:
        RoutingRuleIn.model_validate({"id": "r1", "name": "radio", "priority": value, "strategy": "round_robin"})
    assert [e["loc"] for e in refused.value.errors()] == [("priority",)]
    item = {"sku": "A", "quantity": True, "unit_price": {"amount_minor": 1, "currency_code": "ILS"}}
    with pytest.raises(ValidationError):
        CloseDealIn.model_validate({"outcome": "won", "items": [item]})
    zero = RoutingRuleIn.model_validate({"id": "r1", "name": "radio", "priority": 0, "strategy": "round_robin"})
    assert zero.priority == 0


def test_a_consent_export_cell_is_never_a_formula() -> None:
    from crm_gateway.features.consent_records.routes import csv_cell

    assert [csv_cell(v) for v in ("=HYPERLINK(1)", "+972501234567", "-1", "@SUM", "דנה", None, 5)] == [
        "'=HYPERLINK(1)",
        "'+972501234567",
        "'-1",
        "'@SUM",
        "דנה",
        "",
        "5",
    ]


def test_a_number_or_a_word_is_not_true_or_false() -> None:
    from pydantic import ValidationError

    from crm_gateway.features.support.schemas import UpdateSlaPolicyIn

    body = {"targets": [{"metric": "resolution", "priority": "low", "target_minutes": 60}], "based_on_version": 1}
    for not_a_boolean in (0, 1, "no", "true"):
        with pytest.raises(ValidationError, match="must be true or false"):
            UpdateSlaPolicyIn.model_validate({**body, "reassign_on_breach": not_a_boolean})
    assert UpdateSlaPolicyIn.model_validate({**body, "reassign_on_breach": False}).reassign_on_breach is False


@pytest.mark.parametrize("not_a_time", [0, 1_700_000_000, 1.5, "0", "yesterday"])
def test_a_number_is_not_a_time_in_a_body(not_a_time: object) -> None:
    """pydantic would read 0 as 1970-01-01: a purchase window "before 1970" matches nobody, silently."""
    from crm_gateway.features.promotions.schemas import AudienceIn

    with pytest.raises(ValidationError, match="ISO 8601") as refused:
        AudienceIn.model_validate({"purchased_before": not_a_time})
    assert [e["loc"] for e in refused.value.errors()] == [("purchased_before",)]
    window = AudienceIn.model_validate({"purchased_after": "2026-01-01T00:00:00Z", "purchased_before": None})
    assert window.purchased_after == datetime(2026, 1, 1, tzinfo=UTC)
    assert window.purchased_before is None


@pytest.mark.parametrize("prefix", ["", "last_"])
def test_a_purchase_window_that_ends_before_it_starts_is_refused_on_its_end(prefix: str) -> None:
    from crm_gateway.features.promotions.schemas import AudienceIn

    after, before = f"{prefix}purchased_after", f"{prefix}purchased_before"
    with pytest.raises(ValidationError, match=f"must be after {after}") as refused:
        # An offset and none: the one without is UTC, so 02:00+02:00 is 00:00 UTC, not after it.
        AudienceIn.model_validate({after: "2026-06-01T00:00:00", before: "2026-06-01T02:00:00+02:00"})
    assert [e["loc"] for e in refused.value.errors()] == [(before,)]
    window = AudienceIn.model_validate({after: "2026-06-01T00:00:00Z", before: "2026-06-01T00:00:01Z"})
    assert getattr(window, before) == datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC)
    assert AudienceIn.model_validate({before: "2026-06-01T00:00:00Z"}).to_proto().HasField(before)
