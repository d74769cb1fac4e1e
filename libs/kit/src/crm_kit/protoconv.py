"""Conversions between protobuf well-known/common types and Python values."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from crm.common.v1 import types_pb2
from crm_kit.errors import InvalidArgument

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50


def to_timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def from_timestamp(value: Timestamp, present: bool = True) -> datetime | None:
    if not present or (value.seconds == 0 and value.nanos == 0):
        return None
    return value.ToDatetime(tzinfo=UTC)


def to_date(value: date | None) -> types_pb2.Date | None:
    if value is None:
        return None
    return types_pb2.Date(year=value.year, month=value.month, day=value.day)


def from_date(value: types_pb2.Date, field: str) -> date:
    try:
        return date(value.year, value.month, value.day)
    except ValueError as exc:
        raise InvalidArgument(f"{field} is not a valid date", field_violations=[(field, str(exc))]) from exc


def page_size(requested: int) -> int:
    """Clamp a requested page size to (0, MAX_PAGE_SIZE]; 0 means the default."""
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field_violations=[("page_size", "negative")])
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode()


def decode_page_token(token: str) -> list[Any] | None:
    """The keyset position a token encodes, or None for the first page."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, json.JSONDecodeError) as exc:
        raise InvalidArgument("page_token is invalid", field_violations=[("page_token", "malformed")]) from exc
    if not isinstance(value, list):
        raise InvalidArgument("page_token is invalid", field_violations=[("page_token", "malformed")])
    return value


def page_position(token: str, *parsers: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The keyset position a page token encodes, each part parsed (e.g. datetime.fromisoformat,
    str); None for the first page. A token of the wrong shape is INVALID_ARGUMENT, never INTERNAL."""
    raw = decode_page_token(token)
    if raw is None:
        return None
    try:
        if len(raw) != len(parsers):
            raise ValueError(f"expected {len(parsers)} parts, got {len(raw)}")
        return tuple(parse(part) for parse, part in zip(parsers, raw, strict=True))
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgument("page_token is invalid", field_violations=[("page_token", "malformed")]) from exc


# ---------------------------------------------------------------- enums as words


def enum_prefix(enum: EnumDescriptor) -> str:
    """The prefix every value name of a proto enum carries (AIP-126): TicketKind → "TICKET_KIND_"."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def enum_word(enum: EnumDescriptor, number: int, default: str = "", *, unset: str | None = None) -> str:
    """A value as its lower-case word without the prefix (TICKET_KIND_COMPLAINT → "complaint");
    `default` for a number these contracts do not know (a newer producer's); with `unset`, that for
    0 (the *_UNSPECIFIED value: a field the producer left empty) instead of "unspecified"."""
    if number == 0 and unset is not None:
        return unset
    value = enum.values_by_number.get(number)
    return value.name.removeprefix(enum_prefix(enum)).lower() if value is not None else default
