"""Event envelopes: protobuf bodies with CloudEvents binary-mode headers on NATS subjects.

Subjects are `crm.<domain>.<snake_event>` derived from the message's proto package and name,
so producers and consumers never spell them by hand: `crm.sales.v1.DealClosed` →
`crm.sales.deal_closed`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError, Message

M = TypeVar("M", bound=Message)

CE_SPECVERSION = "1.0"
CONTENT_TYPE = "application/protobuf"


class PoisonMessage(Exception):
    """An event that can never be handled (unparseable body, wrong type)."""


class RetryLater(Exception):
    """An event that cannot be handled yet but will be once something else has happened: the
    event it depends on has reached this service through another consumer, or a service it asks
    is back. The bus retries it with back-off while holding it (no redelivery, so waiting never
    counts toward `consumer_max_deliver`) and dead-letters it only after
    `consumer_retry_later_max_seconds` of waiting."""


def event_type(message_cls: type[Message]) -> str:
    return str(message_cls.DESCRIPTOR.full_name)


def subject_for(message_cls: type[Message]) -> str:
    package = str(message_cls.DESCRIPTOR.file.package)  # e.g. crm.leads.v1
    parts = package.split(".")
    if len(parts) != 3 or parts[0] != "crm":
        raise ValueError(f"{package} is not a crm.<domain>.v<n> package")
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", message_cls.DESCRIPTOR.name).lower()
    return f"crm.{parts[1]}.{snake}"


def new_event_id() -> str:
    return str(uuid.uuid4())


def ce_headers(event_id: str, message: Message, source: str, time: datetime) -> dict[str, str]:
    return {
        "Nats-Msg-Id": event_id,
        "ce-id": event_id,
        "ce-type": event_type(type(message)),
        "ce-source": source,
        "ce-time": time.astimezone(UTC).isoformat(),
        "ce-specversion": CE_SPECVERSION,
        "content-type": CONTENT_TYPE,
    }


@dataclass(frozen=True)
class Envelope(Generic[M]):
    """A received event: its CloudEvents attributes and the decoded body."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str
    message: M
    headers: dict[str, str] = field(default_factory=dict)


def decode(subject: str, headers: dict[str, str] | None, data: bytes, message_cls: type[M]) -> Envelope[M]:
    headers = dict(headers or {})
    event_id = headers.get("ce-id") or headers.get("Nats-Msg-Id")
    if not event_id:
        raise PoisonMessage("event has no ce-id header")
    expected = event_type(message_cls)
    if headers.get("ce-type", expected) != expected:
        raise PoisonMessage(f"ce-type {headers.get('ce-type')!r} is not {expected}")
    try:
        message = message_cls.FromString(data)
    except DecodeError as exc:
        raise PoisonMessage(f"body does not parse as {expected}: {exc}") from exc
    try:
        time = datetime.fromisoformat(headers["ce-time"]) if "ce-time" in headers else datetime.now(UTC)
    except ValueError as exc:
        raise PoisonMessage(f"ce-time {headers['ce-time']!r} is not ISO 8601") from exc
    return Envelope(
        id=event_id,
        type=expected,
        source=headers.get("ce-source", ""),
        time=time,
        subject=subject,
        message=message,
        headers=headers,
    )
