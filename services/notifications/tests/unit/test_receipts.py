"""Delivery receipts: our generic provider's signed JSON and Kavenegar's callback parameters, read
into one shape; malformed input is a ReceiptError naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from crm_notifications.receipts import DeliveryReceipt, ReceiptError, parse_generic, parse_kavenegar, sign, verify

pytestmark = pytest.mark.unit


def test_generic_receipt_with_an_offset_time() -> None:
    receipt = parse_generic({"id": "msg_1", "status": "delivered", "time": "2026-03-01T12:30:00+02:00"})
    assert receipt == DeliveryReceipt(
        provider_message_id="msg_1",
        status="delivered",
        occurred_at=datetime(2026, 3, 1, 10, 30, tzinfo=UTC),
        error="",
    )
    assert receipt.occurred_at is not None and receipt.occurred_at.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("status", ["delivered", "undelivered", "sent", "failed"])
def test_generic_statuses(status: str) -> None:
    assert parse_generic({"id": "m", "status": status}).status == status


def test_generic_receipt_reads_z_naive_and_missing_times_and_the_error() -> None:
    z = parse_generic({"id": 42, "status": "failed", "time": "2026-03-01T10:00:00Z", "error": "handset off"})
    assert (z.provider_message_id, z.occurred_at, z.error) == (
        "42",
        datetime(2026, 3, 1, 10, tzinfo=UTC),
        "handset off",
    )
    naive = parse_generic({"id": "m", "status": "sent", "time": "2026-03-01T10:00:00"})
    assert naive.occurred_at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_generic({"id": "m", "status": "sent"}).occurred_at is None
    tehran = timezone(timedelta(hours=3, minutes=30))
    assert parse_generic({"id": "m", "status": "sent", "time": "2026-03-01T13:30:00+03:30"}).occurred_at == datetime(
        2026, 3, 1, 13, 30, tzinfo=tehran
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "delivered"}, "id"),
        ({"id": "", "status": "delivered"}, "id"),
        ({"id": "   ", "status": "delivered"}, "id"),
        ({"id": None, "status": "delivered"}, "id"),
        ({"id": True, "status": "delivered"}, "id"),
        ({"id": ["m"], "status": "delivered"}, "id"),
        ({"id": "x" * 201, "status": "delivered"}, "id"),
        ({"id": "m"}, "status"),
        ({"id": "m", "status": "read"}, "status"),
        ({"id": "m", "status": "DELIVERED"}, "status"),
        ({"id": "m", "status": 10}, "status"),
        ({"id": "m", "status": "sent", "time": "yesterday"}, "time"),
        ({"id": "m", "status": "sent", "time": 1772359200}, "time"),
        ({"id": "m", "status": "failed", "error": {"code": 1}}, "error"),
    ],
)
def test_malformed_generic_receipts(body: dict[str, object], field: str) -> None:
    with pytest.raises(ReceiptError) as err:
        parse_generic(body)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_a_generic_body_that_is_not_an_object() -> None:
    with pytest.raises(ReceiptError) as err:
        parse_generic(["id", "status"])  # type: ignore[arg-type]
    assert err.value.field == "body"


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


def test_a_verified_generic_callback_end_to_end() -> None:
    """What the edge does: verify the raw bytes, then parse them."""
    secret, now = b"s3cret", 1_772_359_200
    raw = json.dumps({"id": "msg_9", "status": "undelivered", "time": "2026-03-01T10:00:00+00:00"}).encode()
    timestamp = str(now - 5)
    signature = sign(secret, timestamp, raw)
    assert verify(secret, timestamp, raw, signature, now)
    assert parse_generic(json.loads(raw)).status == "undelivered"
    # Tampered body, bad signature, replayed later.
    assert not verify(secret, timestamp, raw.replace(b"undelivered", b"delivered"), signature, now)
    assert not verify(secret, timestamp, raw, signature[::-1], now)
    assert not verify(secret, timestamp, raw, signature, now + 3600)
