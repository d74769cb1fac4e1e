"""Protobuf ↔ JSON, in one place: the conventions, the converters, and the value types (times,
text, money, line items) every resource's bodies share.

JSON field names are the proto field names; enums are their value names without the enum's
prefix, lower-cased (LEAD_STATUS_NEW → "new"); timestamps are ISO 8601 UTC or null; dates
are "YYYY-MM-DD"; an unset message field, or an unset `optional` scalar, is null.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union, cast, get_args, get_origin

import pydantic_core
from fastapi import Response
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from crm.common.v1 import types_pb2
from crm_kit import protoconv

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper


def _iso_8601(value: Any) -> Any:
    """Only ISO 8601 text is a time here: pydantic would also take a number as Unix seconds."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("expected an ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601)]


def _iso_date(value: Any) -> Any:
    """Only "YYYY-MM-DD" text (or a date) is a date here: pydantic would also read a number."""
    if not isinstance(value, date | str) or (isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


def _stripped(value: str) -> str:
    return value.strip()


def _not_blank(value: str) -> str:
    if not value:
        raise pydantic_core.PydanticCustomError(
            "string_too_short", "String should have at least 1 character", {"min_length": 1}
        )
    return value


# Text is checked as sent, then stripped: the limits are the ones the OpenAPI document states for
# the raw value, so a request it calls invalid (201 characters, a leading tab and 200 more) is
# refused, never accepted because stripping brought it under the limit. Put these after the
# StringConstraints; NOT_BLANK after STRIPPED refuses text of spaces only.
STRIPPED = AfterValidator(_stripped)
NOT_BLANK = AfterValidator(_not_blank)

# A business date (a campaign's run, a deal's expected close): anything outside this century is a typo.
IsoDate = Annotated[date, BeforeValidator(_iso_date), Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]
ShortText = Annotated[str, StringConstraints(max_length=200), STRIPPED]
RequiredText = Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK]
# BCP 47, e.g. he-IL, fa-IR, en-US.
Locale = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64), STRIPPED, NOT_BLANK]
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]


_NUMBERS = (int, float, int | None, float | None)
_BOOLEANS = (bool, bool | None)


class RequestBody(BaseModel):
    """Every request body: an unknown field is a 422, never silently dropped, and so is true/false
    where the schema says a number (pydantic would read `false` as 0: a rule's priority 0), and a
    number or a word where it says true/false (pydantic would read 0 or "no" as false)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _a_boolean_is_not_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        annotation = cls.model_fields[info.field_name].annotation if info.field_name else None
        if isinstance(value, bool) and annotation in _NUMBERS:
            raise ValueError("must be a number, not true or false")
        if annotation in _BOOLEANS and value is not None and not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value


class MoneyIn(RequestBody):
    amount_minor: int = Field(ge=0, le=2**63 - 1, description="Integer minor units (agorot, cents)")
    currency_code: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. ILS")

    def to_proto(self) -> types_pb2.Money:
        return types_pb2.Money(amount_minor=self.amount_minor, currency_code=self.currency_code)


class LineItemIn(RequestBody):
    sku: Code
    description: ShortText = ""
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: MoneyIn

    def to_proto(self) -> types_pb2.LineItem:
        return types_pb2.LineItem(
            sku=self.sku,
            description=self.description,
            quantity=self.quantity,
            unit_price=self.unit_price.to_proto(),
        )


class Money(BaseModel):
    amount_minor: int
    currency_code: str


class LineItem(BaseModel):
    sku: str
    description: str
    quantity: int
    unit_price: Money | None


# ---------------------------------------------------------------- enums both ways


def _enum_word(enum: EnumDescriptor, number: int) -> str:
    # A value newer than these contracts: say so rather than fail the whole response.
    return protoconv.enum_word(enum, number, default="unspecified")


V = TypeVar("V", bound=int)


def enum_value(enum: _EnumTypeWrapper[V], word: str) -> V:
    """The enum value a JSON word names ("all_or_nothing" → LEAD_IMPORT_MODE_ALL_OR_NOTHING); the
    request model's Literal has already limited the word to the enum's values."""
    return enum.Value(protoconv.enum_prefix(enum.DESCRIPTOR) + word.upper())


# ---------------------------------------------------------------- protobuf → JSON values


def _message_value(descriptor: Descriptor, value: Message) -> Any:
    if descriptor.full_name == Timestamp.DESCRIPTOR.full_name:
        assert isinstance(value, Timestamp)
        return protoconv.from_timestamp(value)
    if descriptor.full_name == types_pb2.Date.DESCRIPTOR.full_name:
        assert isinstance(value, types_pb2.Date)
        return protoconv.from_date(value, "date") if value.year else None
    return message_to_dict(value)


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None:
        return _message_value(field.message_type, value)
    if field.enum_type is not None:
        return _enum_word(field.enum_type, value)
    return value


def message_to_dict(message: Message) -> dict[str, Any]:
    """A protobuf message as the JSON-ready dict the response models validate."""
    out: dict[str, Any] = {}
    # The upb runtime's descriptor type differs from the stubs' one; both have this interface.
    fields = cast(list[FieldDescriptor], list(message.DESCRIPTOR.fields))
    for field in fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            # A map (a lost reason's names by language) is a JSON object, not a list of entries.
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {key: _value(value_field, item) for key, item in value.items()}
        elif field.is_repeated:
            out[field.name] = [_value(field, item) for item in value]
        elif field.has_presence and not message.HasField(field.name):
            # An unset message, or an `optional` scalar never set (a rep without a capacity cap).
            out[field.name] = None
        else:
            out[field.name] = _value(field, value)
    return out


M = TypeVar("M", bound=BaseModel)


def to_model(model: type[M], message: Message) -> M:
    """Convert a protobuf message into the response model of the same shape."""
    return model.model_validate(message_to_dict(message))


def with_etag(model: type[M], message: Message, response: Response) -> M:
    """A versioned record's response model, with its etag (the message's `etag`) as the ETag
    header, which a client sends back in If-Match."""
    etag = getattr(message, "etag", "")
    if etag:
        response.headers["ETag"] = etag
    return to_model(model, message)


# ---------------------------------------------------------------- protobuf → JSON bytes, on a hot path


def json_response(content: bytes, status_code: int) -> Response:
    """An application/json answer of bytes made already: FastAPI passes a Response through as it
    is, so the route's response_model documents the body without validating it a second time."""
    return Response(content, status_code, media_type="application/json")


def model_json(model: type[BaseModel], message: Message, **extra: Any) -> bytes:
    """The JSON of `model` filled from `message` (and `extra` for the fields the message lacks),
    without validating what the contract already guarantees: the same bytes as
    `to_model(model, message)` serialized (a unit test holds the two to it), at a fraction of the
    CPU — for a route on the capture path."""
    return pydantic_core.to_json(_read(_plan(model, message.DESCRIPTOR), message, extra))


# How `model_json` reads a field (one loop over these, rather than a function per field).
_EXTRA, _PLAIN, _LIST, _ENUM, _PRESENT, _CALL = range(6)
_Plan = list[tuple[str, int, Any]]


@functools.cache
def _plan(model: type[BaseModel], descriptor: Descriptor) -> _Plan:
    """What `model_json` does for one model and message type, worked out once: per model field,
    in the model's order, how its value is read from the message (or from `extra`)."""
    plan: _Plan = []
    for name, info in model.model_fields.items():
        field = descriptor.fields_by_name.get(name)
        if field is None:
            plan.append((name, _EXTRA, None))
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            raise TypeError(f"{name}: a map field is not supported by model_json")
        elif field.message_type is None and field.enum_type is None and not field.has_presence:
            plan.append((name, _LIST if field.is_repeated else _PLAIN, None))
        elif field.enum_type is not None and not field.is_repeated and not field.has_presence:
            words = {value.number: _enum_word(field.enum_type, value.number) for value in field.enum_type.values}
            plan.append((name, _ENUM, words))
        else:
            read = _value_reader(field, _inner_model(info.annotation))
            if field.is_repeated:
                plan.append((name, _CALL, functools.partial(_each, name, read)))
            else:  # a message, or an `optional` scalar: both have presence
                plan.append((name, _PRESENT, read))
    return plan


def _read(plan: _Plan, message: Message, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready dict of one message by its plan: what `message_to_dict` gives, in model order."""
    out: dict[str, Any] = {}
    for name, how, arg in plan:
        if how == _PLAIN:
            out[name] = getattr(message, name)
        elif how == _EXTRA:
            out[name] = extra[name]
        elif how == _PRESENT:
            # An unset message, or an `optional` scalar never set, is null.
            out[name] = arg(getattr(message, name)) if message.HasField(name) else None
        elif how == _ENUM:
            # A value newer than these contracts: "unspecified", as `_enum_word` says.
            out[name] = arg.get(getattr(message, name), "unspecified")
        elif how == _LIST:
            out[name] = list(getattr(message, name))
        else:
            out[name] = arg(message)
    return out


def _each(name: str, read: Callable[[Any], Any], message: Message) -> list[Any]:
    return [read(value) for value in getattr(message, name)]


def _value_reader(field: FieldDescriptor, nested: type[BaseModel] | None) -> Callable[[Any], Any]:
    """One value of a field that is not a plain scalar: a time, a date, an enum in a list, or a
    message read as its model (`nested`) has it."""
    if field.message_type is None:
        return functools.partial(_value, field)
    if field.message_type.full_name in (Timestamp.DESCRIPTOR.full_name, types_pb2.Date.DESCRIPTOR.full_name):
        return functools.partial(_message_value, field.message_type)
    if nested is None:
        raise TypeError(f"{field.name}: model_json needs a model for message {field.message_type.full_name}")
    plan = _plan(nested, field.message_type)
    return lambda value: _read(plan, value, {})


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model in `X`, `X | None` or `list[X]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType, list):
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def to_timestamp(value: datetime | None) -> Timestamp | None:
    """A query-string datetime as a Timestamp; one without a zone is taken as UTC."""
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return protoconv.to_timestamp(value)
