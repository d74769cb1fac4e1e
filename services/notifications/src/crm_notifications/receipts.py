"""Kavenegar's delivery statuses read into one shape (``kavenegar_poll`` fetches them from
``sms/status.json``; the generic provider's signed callbacks are read by the gateway's
``sms_callbacks`` route). Pure: no I/O.

Kavenegar's status codes (https://kavenegar.com/rest.html, the sms/status table; the same values in
its official SDKs' enums, github.com/kavenegar/kavenegar-dotnet Models/Enums/MessageStatus.cs):
1 queued, 2 scheduled, 4 and 5 sent to the operator, 6 failed (the line's fault), 10 delivered,
11 undelivered (handset off or out of reach), 13 cancelled (refunded), 14 blocked by the recipient
(refunded), 100 message id unknown. 50 marks an *inbound* message and is no receipt.

Not confirmed from Kavenegar's own pages (read from third-party integrations only): that the
delivery callback carries exactly ``messageid`` and ``status`` (some also send ``statustext``,
``receptor``, ``date``), whether it is a GET or a form POST, and how often it retries a non-200
answer. ``parse_kavenegar`` therefore takes any mapping (query or form) and reads an optional
Unix-seconds ``date``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["DeliveryReceipt", "ReceiptError", "ReceiptStatus", "parse_kavenegar"]

ReceiptStatus = Literal["delivered", "undelivered", "sent", "failed"]

# Kavenegar's delivery status code -> our status and, for a message that did not arrive, why.
# 1/2 (queued, scheduled) are not final either: the provider has the message, like "sent".
_KAVENEGAR_STATUSES: dict[int, tuple[ReceiptStatus, str]] = {
    1: ("sent", ""),
    2: ("sent", ""),
    4: ("sent", ""),
    5: ("sent", ""),
    6: ("failed", "kavenegar 6: the sending line failed to send the message"),
    10: ("delivered", ""),
    11: ("undelivered", "kavenegar 11: not delivered (the handset is off or out of reach)"),
    13: ("failed", "kavenegar 13: cancelled by the provider or the account (refunded)"),
    14: ("failed", "kavenegar 14: blocked, the recipient refuses messages from this line (refunded)"),
}


class ReceiptError(ValueError):
    """A callback that is not a receipt we can read: field names what is wrong with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class DeliveryReceipt:
    provider_message_id: str
    status: ReceiptStatus
    # When the provider saw the status; None when the callback does not say.
    occurred_at: datetime | None
    # Why a message did not arrive ("" when it did, or is on its way).
    error: str


def parse_kavenegar(form: Mapping[str, str]) -> DeliveryReceipt:
    """Kavenegar's delivery callback parameters (form or query): messageid and status."""
    message_id = _message_id(form.get("messageid"), "messageid")
    if not message_id.isdigit():
        raise ReceiptError("messageid", f"{message_id!r} is not a Kavenegar message id (digits)")
    raw = (form.get("status") or "").strip()
    if not raw.isascii() or not raw.isdigit():
        raise ReceiptError("status", f"{raw!r} is not a Kavenegar status code")
    known = _KAVENEGAR_STATUSES.get(int(raw))
    if known is None:
        raise ReceiptError("status", f"{raw} is not a delivery status (100 is an unknown message id, 50 inbound)")
    status, error = known
    return DeliveryReceipt(message_id, status, _unix_time(form.get("date")), error)


def _message_id(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ReceiptError(field, "the provider's message id is missing")
    text = str(value).strip()
    if not text:
        raise ReceiptError(field, "the provider's message id is missing")
    if len(text) > 200:
        raise ReceiptError(field, "the provider's message id is longer than 200 characters")
    return text


def _unix_time(value: str | None) -> datetime | None:
    text = (value or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise ReceiptError("date", f"{text!r} is not a Unix time")
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ReceiptError("date", f"{text!r} is out of range") from exc
