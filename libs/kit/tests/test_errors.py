"""NUL characters in request strings are found wherever they hide (PostgreSQL text cannot hold one)."""

from __future__ import annotations

import pytest

from crm.admin.v1 import admin_pb2
from crm.common.v1 import types_pb2
from crm.leads.v1 import leads_pb2
from crm.sales.v1 import deals_pb2
from crm_kit.errors import nul_characters

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
