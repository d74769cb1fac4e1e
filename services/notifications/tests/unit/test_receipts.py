"""Kavenegar's delivery statuses read into one shape; malformed input is a ReceiptError naming the
field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_notifications.receipts import DeliveryReceipt, ReceiptError, parse_kavenegar

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("code", "status", "has_error"),
    [
        ("1", "sent", False),
        ("2", "sent", False),
        ("4", "sent", False),
        ("5", "sent", False),
        ("6", "failed", True),
        ("10", "delivered", False),
        ("11", "undelivered", True),
        ("13", "failed", True),
        ("14", "failed", True),
    ],
)
def test_kavenegar_status_codes(code: str, status: str, has_error: bool) -> None:
    receipt = parse_kavenegar({"messageid": "8792343", "status": code})
    assert (receipt.provider_message_id, receipt.status, receipt.occurred_at) == ("8792343", status, None)
    assert bool(receipt.error) is has_error
    if has_error:
        assert receipt.error.startswith(f"kavenegar {code}:")


def test_kavenegar_receipt_with_a_date_and_extra_parameters() -> None:
    receipt = parse_kavenegar(
        {"messageid": " 8792343 ", "status": "10", "statustext": "رسیده به گیرنده", "date": "1772359200"}
    )
    assert receipt == DeliveryReceipt("8792343", "delivered", datetime(2026, 3, 1, 10, tzinfo=UTC), "")


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"status": "10"}, "messageid"),
        ({"messageid": "", "status": "10"}, "messageid"),
        ({"messageid": "abc", "status": "10"}, "messageid"),
        ({"messageid": "8792343"}, "status"),
        ({"messageid": "8792343", "status": "delivered"}, "status"),
        ({"messageid": "8792343", "status": "٬10"}, "status"),
        ({"messageid": "8792343", "status": "3"}, "status"),
        ({"messageid": "8792343", "status": "50"}, "status"),
        ({"messageid": "8792343", "status": "100"}, "status"),
        ({"messageid": "8792343", "status": "10", "date": "tomorrow"}, "date"),
        ({"messageid": "8792343", "status": "10", "date": "9" * 30}, "date"),
    ],
)
def test_malformed_kavenegar_receipts(form: dict[str, str], field: str) -> None:
    with pytest.raises(ReceiptError) as err:
        parse_kavenegar(form)
    assert err.value.field == field
