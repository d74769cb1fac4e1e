"""Delivery receipts (DLRs): what an SMS provider's callback says became of a message we sent, read
into one shape whichever provider sent it. Pure: no I/O, so an HTTP edge (not here yet) parses,
then records through commands.

- Our generic provider POSTs JSON ``{"id", "status", "time", "error"}`` signed with ``X-Signature``
  and ``X-Timestamp`` (``crm_kit.signatures``; ``sign`` and ``verify`` are re-exported here). The
  edge verifies the signature over the raw body *before* parsing it.
- Kavenegar calls the delivery URL set in its panel with form parameters ``messageid`` and
  ``status`` (a delivery status code, table below). It signs nothing: the edge must authenticate
  it some other way (a secret path segment or query parameter in the configured URL).

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

from crm_kit.signatures import sign, verify

__all__ = [
    "DeliveryReceipt",
    "ReceiptError",
    "ReceiptStatus",
    "parse_generic",
    "parse_kavenegar",
    "sign",
    "verify",
]

ReceiptStatus = Literal["delivered", "undelivered", "sent", "failed"]

_GENERIC_STATUSES: dict[str, ReceiptStatus] = {
    "delivered": "delivered",
    "undelivered": "undelivered",
    "sent": "sent",
    "failed": "failed",
}

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


def parse_generic(body: Mapping[str, Any]) -> DeliveryReceipt:
    """Our generic provider's callback JSON (already verified and decoded)."""
    if not isinstance(body, Mapping):
        raise ReceiptError("body", "must be a JSON object")
    message_id = _message_id(body.get("id"), "id")
    status = body.get("status")
    if not isinstance(status, str) or status not in _GENERIC_STATUSES:
        raise ReceiptError("status", f"unknown status {status!r}; one of {sorted(_GENERIC_STATUSES)}")
    error = body.get("error") or ""
    if not isinstance(error, str):
        raise ReceiptError("error", "must be text")
    return DeliveryReceipt(message_id, _GENERIC_STATUSES[status], _iso_time(body.get("time")), error)


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


def _iso_time(value: Any) -> datetime | None:
    """An ISO-8601 time; one without an offset is read as UTC (what our provider sends)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ReceiptError("time", "must be an ISO-8601 text")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ReceiptError("time", f"{value!r} is not an ISO-8601 time") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
