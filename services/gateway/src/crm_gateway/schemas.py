"""Request and response bodies of the REST API, and their conversion from and to protobuf.

JSON field names are the proto field names; enums are their value names without the enum's
prefix, lower-cased (LEAD_STATUS_NEW → "new"); timestamps are ISO 8601 UTC or null; dates
are "YYYY-MM-DD"; an unset message field is null.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar, cast

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from crm.common.v1 import types_pb2
from crm.leads.v1 import leads_pb2
from crm.orders.v1 import orders_pb2
from crm_kit import protoconv


def _iso_8601(value: Any) -> Any:
    """Only ISO 8601 text is a time here: pydantic would also take a number as Unix seconds."""
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("expected an ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
RequiredText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# BCP 47, e.g. he-IL, fa-IR, en-US.
Locale = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

# ---------------------------------------------------------------- request bodies


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


def _no_stub_phone(value: str) -> str:
    """Empty (an e-mail is given instead) or at least 3 characters: "1" is named here with the
    other bad fields; whether a number is a real one is the leads service's check."""
    if 0 < len(value) < 3:
        raise ValueError("String should have at least 3 characters")
    return value


PhoneNumber = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), AfterValidator(_no_stub_phone)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)]
CONTACT_REQUIRED = "a phone number or an e-mail address is required (at least one)"


class LeadContactBody(RequestBody):
    """A body that brings a person in: it needs a phone number or an e-mail address, at least one
    (an e-mail enquiry has no number). Both are named in the 422 with every other bad field, so a
    client fixes all in one go; the leads service holds the same rule for imports (and checks
    that a number is a possible one of its country)."""

    @model_validator(mode="wrap")
    @classmethod
    def _phone_or_email(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        errors: list[InitErrorDetails] = []
        model = None
        try:
            model = handler(data)
        except ValidationError as exc:
            errors = [
                InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"], input=e["input"])
                for e in exc.errors()
            ]
        if isinstance(data, dict) and not any(str(data.get(f) or "").strip() for f in ("phone_number", "email")):
            required = PydanticCustomError("contact_required", CONTACT_REQUIRED)
            errors += [InitErrorDetails(type=required, loc=(name,), input="") for name in ("phone_number", "email")]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return model


class CaptureLeadIn(LeadContactBody):
    full_name: RequiredText
    phone_number: PhoneNumber = ""
    email: Email = ""
    source: Code
    campaign: ShortText = ""
    locale: Locale = "he-IL"
    product_line: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""
    request_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    city: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""

    def to_proto(
        self, idempotency_key: str = "", reach: leads_pb2.LeadReach | None = None
    ) -> leads_pb2.CaptureLeadRequest:
        return leads_pb2.CaptureLeadRequest(
            caller_reach=reach,
            full_name=self.full_name,
            phone_number=self.phone_number,
            email=self.email,
            source=self.source,
            campaign=self.campaign,
            locale=self.locale,
            product_line=self.product_line,
            request_id=self.request_id or idempotency_key,
            city=self.city,
            region=self.region,
        )


class ConvertLeadIn(RequestBody):
    title: ShortText = ""


class CloseDealIn(RequestBody):
    outcome: Literal["won", "lost"]
    items: list[LineItemIn] = Field(default_factory=list, max_length=500)
    lost_reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""

    def to_proto(self, deal_id: str) -> leads_pb2.CloseDealRequest:
        outcome = leads_pb2.DEAL_OUTCOME_WON if self.outcome == "won" else leads_pb2.DEAL_OUTCOME_LOST
        return leads_pb2.CloseDealRequest(
            deal_id=deal_id,
            outcome=outcome,
            items=[item.to_proto() for item in self.items],
            lost_reason=self.lost_reason,
        )


class ShipOrderIn(RequestBody):
    carrier: RequiredText
    tracking_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    estimated_delivery_date: date

    def to_proto(self, order_id: str) -> orders_pb2.ShipOrderRequest:
        return orders_pb2.ShipOrderRequest(
            order_id=order_id,
            carrier=self.carrier,
            tracking_number=self.tracking_number,
            estimated_delivery_date=protoconv.to_date(self.estimated_delivery_date),
        )


class CreateWebFormKeyIn(RequestBody):
    display_name: RequiredText
    source: Code
    campaign: ShortText = ""

    def to_proto(self) -> leads_pb2.CreateWebFormKeyRequest:
        return leads_pb2.CreateWebFormKeyRequest(
            display_name=self.display_name, source=self.source, campaign=self.campaign
        )


class WebFormSubmissionIn(LeadContactBody):
    """A public form's fields (JSON or application/x-www-form-urlencoded). `website` is the
    honeypot: people never see it, bots fill it in."""

    full_name: RequiredText
    phone_number: PhoneNumber = ""
    email: Email = ""
    locale: Locale = "he-IL"
    product_line: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""
    website: Annotated[str, StringConstraints(max_length=200)] = ""


# ---------------------------------------------------------------- response bodies


class Money(BaseModel):
    amount_minor: int
    currency_code: str


class LineItem(BaseModel):
    sku: str
    description: str
    quantity: int
    unit_price: Money | None


class Assignment(BaseModel):
    rep_id: str
    rep_name: str
    team_id: str
    rule_id: str
    reason: str
    assign_time: datetime | None


class Lead(BaseModel):
    id: str
    full_name: str
    phone_number: str
    email: str
    source: str
    campaign: str
    locale: str
    product_line: str
    status: Literal["unspecified", "new", "converted"]
    assignment: Assignment | None
    deal_id: str
    create_time: datetime | None
    campaign_id: str
    city: str
    region: str
    first_response_due_time: datetime | None
    first_response_time: datetime | None
    sla_breached: bool
    merged_into_lead_id: str
    missing_fields: list[str]
    touch_count: int
    # The SLA: the manager a breach escalated the lead to, how many breaches handed it to another
    # rep, when it first breached (GET /leads/{id}/routing adds the routing explanation).
    escalated_to: str
    sla_reassign_count: int
    sla_breach_time: datetime | None


class CapturedLead(Lead):
    """The captured lead; with duplicate true, the existing lead the capture was attached to
    (only to a caller who may read that lead: see CaptureAttached)."""

    duplicate: bool
    matched_on: str


class CaptureAttached(BaseModel):
    """The person is already a lead the caller may not read: the capture was attached to it as a
    touch, and nothing about that lead (not its id, owner or fields) is in the answer."""

    duplicate: Literal[True] = True


class CaptureReplayed(BaseModel):
    """A repeated request_id whose lead the caller may not read (any more, or ever: marketing
    captures for reps): the lead's id, which the first answer gave, and nothing of its state now."""

    id: str
    duplicate: bool
    replayed: Literal[True] = True


class LeadList(BaseModel):
    leads: list[Lead]
    next_page_token: str


class Deal(BaseModel):
    id: str
    lead_id: str
    title: str
    owner_rep_id: str
    status: Literal["unspecified", "open", "won", "lost"]
    items: list[LineItem]
    total: Money | None
    create_time: datetime | None
    close_time: datetime | None
    lost_reason: str
    owner_team_id: str


class Source(BaseModel):
    code: str
    display_name: str


class WebFormKey(BaseModel):
    id: str
    display_name: str
    source: str
    campaign: str
    secret_prefix: str
    create_time: datetime | None
    revoke_time: datetime | None
    create_actor: str


class WebFormKeyList(BaseModel):
    web_form_keys: list[WebFormKey]
    next_page_token: str


class WebFormKeyCreated(BaseModel):
    web_form_key: WebFormKey
    secret: str = Field(description="Shown this once; only its hash is stored.")
    html_snippet: str = Field(description="A ready-to-embed form posting to the web-to-lead endpoint.")


class WebFormAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"


class AuditRecord(BaseModel):
    id: int
    actor: str
    action: str
    record_type: str
    record_id: str
    create_time: datetime | None
    request_id: str
    details_json: str


class AuditRecordList(BaseModel):
    audit_records: list[AuditRecord]
    next_page_token: str


class Me(BaseModel):
    subject: str
    roles: list[str]
    team_id: str
    rep_id: str


class SourceList(BaseModel):
    sources: list[Source]


class Shipment(BaseModel):
    carrier: str
    tracking_number: str
    estimated_delivery_date: date | None
    ship_time: datetime | None


class Order(BaseModel):
    id: str
    deal_id: str
    lead_id: str
    status: Literal["unspecified", "pending", "shipped"]
    lines: list[LineItem]
    total: Money | None
    shipment: Shipment | None
    create_time: datetime | None


class OrderList(BaseModel):
    orders: list[Order]
    next_page_token: str


class Customer(BaseModel):
    id: str
    full_name: str
    phone_number: str
    email: str
    locale: str
    lead_ids: list[str]
    create_time: datetime | None


class CustomerList(BaseModel):
    customers: list[Customer]
    next_page_token: str


class TimelineEntry(BaseModel):
    id: str
    kind: Literal[
        "unspecified",
        "lead_captured",
        "deal_won",
        "deal_lost",
        "order_shipped",
        "sms_sent",
        "call_logged",
        "meeting_logged",
        "note_logged",
        "task_logged",
        "email_logged",
        "sms_logged",
    ]
    summary: str
    channel: str
    event_id: str
    occur_time: datetime | None


class Timeline(BaseModel):
    entries: list[TimelineEntry]
    next_page_token: str


class NotificationMessage(BaseModel):
    id: str
    idempotency_key: str
    channel: str
    recipient: str
    body: str
    locale: str
    status: Literal["unspecified", "pending", "sent", "failed", "suppressed"]
    lead_id: str
    order_id: str
    provider_message_id: str
    attempts: int
    create_time: datetime | None
    update_time: datetime | None
    last_error: str


class MessageList(BaseModel):
    messages: list[NotificationMessage]
    next_page_token: str


class SourceReportRow(BaseModel):
    source: str
    leads: int
    won_deals: int
    lost_deals: int
    revenue: list[Money]
    # What the source's campaigns cost (their actual cost, per currency; GET /reports/campaigns
    # has cost per lead and return per campaign).
    cost: list[Money]


class SourceReport(BaseModel):
    rows: list[SourceReportRow]


# ---------------------------------------------------------------- protobuf → JSON values


def _enum_prefix(enum: EnumDescriptor) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def _enum_word(enum: EnumDescriptor, number: int) -> str:
    value = enum.values_by_number.get(number)
    if value is None:
        # A value newer than these contracts: say so rather than fail the whole response.
        return "unspecified"
    return value.name.removeprefix(_enum_prefix(enum)).lower()


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
        if field.is_repeated:
            out[field.name] = [_value(field, item) for item in value]
        elif field.message_type is not None and not message.HasField(field.name):
            out[field.name] = None
        else:
            out[field.name] = _value(field, value)
    return out


M = TypeVar("M", bound=BaseModel)


def to_model(model: type[M], message: Message) -> M:
    """Convert a protobuf message into the response model of the same shape."""
    return model.model_validate(message_to_dict(message))


def to_timestamp(value: datetime | None) -> Timestamp | None:
    """A query-string datetime as a Timestamp; one without a zone is taken as UTC."""
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return protoconv.to_timestamp(value)
