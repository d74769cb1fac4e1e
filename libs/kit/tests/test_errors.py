"""NUL characters in request strings are found wherever they hide (PostgreSQL text cannot hold one);
a service at its limit tells the caller when to retry."""

from __future__ import annotations

import pytest
from google.rpc import code_pb2, error_details_pb2

from crm.admin.v1 import admin_pb2
from crm.common.v1 import types_pb2
from crm.leads.v1 import leads_pb2
from crm.sales.v1 import deals_pb2
from crm_kit.errors import ResourceExhausted, nul_characters

pytestmark = pytest.mark.unit


def test_clean_messages_have_none() -> None:
    assert nul_characters(leads_pb2.CaptureLeadRequest(full_name="דנה", phone_number="050")) == []


def test_top_level_nested_repeated_and_map_fields_are_named() -> None:
    close = deals_pb2.CloseDealRequest(
        deal_id="d\x00",
        items=[types_pb2.LineItem(sku="ok"), types_pb2.LineItem(sku="bad\x00", unit_price=types_pb2.Money())],
    )
    letter = admin_pb2.DeadLetter(headers={"ce-id": "x\x00"})

    assert nul_characters(close) == ["deal_id", "items.1.sku"]
    assert nul_characters(letter) == ["headers.ce-id"]


def test_a_service_at_its_limit_says_when_to_retry() -> None:
    status = ResourceExhausted("every render slot is taken", reason="RENDER_BUSY", retry_after_seconds=3).to_status(
        "crm.sales"
    )
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert [d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR)] == [True]
    assert [d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR)] == [True]
    assert (info.reason, retry.retry_delay.seconds) == ("RENDER_BUSY", 3)
