"""Request and response bodies of /customers (the directory, timelines, merges)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, Field, StringConstraints

from crm.customers.v1 import customers_pb2
from crm_gateway.convert import (
    NOT_BLANK,
    STRIPPED,
    IsoDateTime,
    Money,
    RecordId,
    RequestBody,
    enum_value,
    to_timestamp,
)


class MergeCustomersIn(RequestBody):
    """The customer to merge into the one in the path (which survives)."""

    duplicate_customer_id: RecordId


class UpdateCustomerIn(RequestBody):
    """Only the fields sent change (they make the update_mask, AIP-134). A phone number in any
    local format (stored as E.164, read in the customer's locale); "" clears the phone or the
    e-mail, but not both."""

    full_name: Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK] = ""
    phone_number: Annotated[str, StringConstraints(max_length=32), STRIPPED] = ""
    email: Annotated[str, StringConstraints(max_length=254), STRIPPED] = ""
    locale: Literal["he-IL", "fa-IR", "en-US"] = "he-IL"
    tags: list[Annotated[str, StringConstraints(max_length=50)]] = Field(
        default_factory=list, max_length=30, description="Replaces the tags (repeats and blanks dropped)"
    )

    def to_proto(self, customer_id: str, etag: str) -> customers_pb2.UpdateCustomerRequest:
        return customers_pb2.UpdateCustomerRequest(
            customer=customers_pb2.Customer(
                id=customer_id,
                full_name=self.full_name,
                phone_number=self.phone_number,
                email=self.email,
                locale=self.locale,
                tags=self.tags,
            ),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(self.model_fields_set)),
            etag=etag,
        )


class Customer(BaseModel):
    id: str
    full_name: str
    phone_number: str
    email: str
    locale: str
    lead_ids: list[str]
    create_time: datetime | None
    tags: list[str] = Field(default_factory=list)
    etag: str = Field(description="The ETag header's value: send it back in If-Match")


class CustomerList(BaseModel):
    customers: list[Customer]
    next_page_token: str


class MergedCustomer(Customer):
    """The surviving customer; merged_into_customer_id is empty on it."""

    merged_into_customer_id: str


TouchKind = Literal[
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
    "deal_stage_changed",
    "quote_sent",
    "quote_accepted",
    "consent_changed",
    "ticket_opened",
    "ticket_resolved",
    "survey_answered",
    "ticket_sla_breached",
    "risk_changed",
]


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
        "deal_stage_changed",
        "quote_sent",
        "quote_accepted",
        "consent_changed",
        "ticket_opened",
        "ticket_resolved",
        "survey_answered",
        "ticket_sla_breached",
        "risk_changed",
    ]
    summary: str = Field(description="The entry in English")
    channel: str
    event_id: str
    occur_time: datetime | None
    facts: dict[str, str] = Field(
        default_factory=dict,
        description="The entry's facts by name, per kind, to render it in the reader's language "
        "(see crm.customers.v1.TimelineEntry.facts); empty on old entries",
    )


class Timeline(BaseModel):
    entries: list[TimelineEntry]
    next_page_token: str


ConsentChannel = Literal["sms", "email", "phone"]
ConsentPurpose = Literal["service", "marketing"]
ConsentSource = Literal["web_form", "recorded_call", "written", "reply", "agent"]


class RecordConsentIn(RequestBody):
    """A consent given or withdrawn. How it was given is required; a consent to advertising needs
    proof (web_form, recorded_call or written) and its evidence. A withdrawal takes effect at once."""

    channel: ConsentChannel
    purpose: ConsentPurpose
    granted: bool
    source: ConsentSource = Field(
        description="web_form (evidence: the checkbox text's version), recorded_call (the recording), "
        "written (the document), reply (an SMS reply or unsubscribe link), agent (told to an agent: withdrawals)"
    )
    evidence: Annotated[str, StringConstraints(max_length=500), STRIPPED] = ""
    occur_time: IsoDateTime | None = Field(None, description="When the customer said so; default now")

    def to_proto(self, customer_id: str) -> customers_pb2.RecordConsentRequest:
        return customers_pb2.RecordConsentRequest(
            customer_id=customer_id,
            channel=enum_value(customers_pb2.ConsentChannel, self.channel),
            purpose=enum_value(customers_pb2.ConsentPurpose, self.purpose),
            granted=self.granted,
            source=enum_value(customers_pb2.ConsentSource, self.source),
            evidence=self.evidence,
            occur_time=to_timestamp(self.occur_time),
        )


class ConsentRecord(BaseModel):
    id: int
    customer_id: str
    channel: Literal["unspecified", "sms", "email", "phone"]
    purpose: Literal["unspecified", "service", "marketing"]
    granted: bool
    source: Literal["unspecified", "web_form", "recorded_call", "written", "reply", "agent"]
    evidence: str
    actor: str
    occur_time: datetime | None
    record_time: datetime | None


class ConsentState(BaseModel):
    channel: Literal["unspecified", "sms", "email", "phone"]
    purpose: Literal["unspecified", "service", "marketing"]
    granted: bool
    record_id: int = Field(description="The record that set it; 0 for the default (service yes, marketing no)")
    since: datetime | None


class RecordedConsent(BaseModel):
    record: ConsentRecord
    states: list[ConsentState]


class Consents(BaseModel):
    records: list[ConsentRecord] = Field(description="Newest first")
    states: list[ConsentState] = Field(description="In force, one per channel and purpose")


class LogTouchIn(RequestBody):
    """A call, meeting, note, e-mail or SMS with the customer, logged on their timeline by whoever
    had it (service agents too: not only a lead's rep). A repeated request_id returns the first."""

    kind: Literal["call", "meeting", "note", "email", "sms"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000), STRIPPED, NOT_BLANK]
    outcome: Literal["", "answered", "no_answer", "busy", "voicemail", "wrong_number", "callback_requested"] = Field(
        "", description="A call's outcome"
    )
    duration_seconds: int = Field(0, ge=0, le=86400)
    occur_time: IsoDateTime | None = Field(None, description="When it happened; default now")
    request_id: Annotated[str, StringConstraints(max_length=100), STRIPPED] = ""

    def to_proto(self, customer_id: str) -> customers_pb2.LogTouchRequest:
        return customers_pb2.LogTouchRequest(
            customer_id=customer_id,
            kind=self.kind,
            text=self.text,
            outcome=self.outcome,
            duration_seconds=self.duration_seconds,
            occur_time=to_timestamp(self.occur_time),
            request_id=self.request_id,
        )


class OpenDeal(BaseModel):
    """An open deal of one of the customer's leads."""

    id: str
    title: str
    stage_id: str
    amount: Money | None
    owner_rep_id: str


class CustomerSummary(BaseModel):
    """The customer 360's figures: what the timeline adds up to (lifetime value per currency, deals
    won and lost, orders shipped, messages, tickets, satisfaction, first and last contact), with
    the open deals the caller may see and the customer's open tickets now."""

    customer_id: str
    lifetime_value: list[Money]
    deals_won: int
    deals_lost: int
    orders_shipped: int
    messages_sent: int
    tickets_opened: int
    surveys_answered: int
    satisfaction_average: float
    touches: int
    first_contact_time: datetime | None
    last_contact_time: datetime | None
    open_deals: list[OpenDeal]
    open_tickets: int | None = Field(description="null when the service desk could not be asked")


class ContactPersonIn(RequestBody):
    """A person to talk to at a business customer; a phone number (any local format) or an e-mail."""

    full_name: Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK]
    role: Annotated[str, StringConstraints(max_length=100), STRIPPED] = ""
    phone_number: Annotated[str, StringConstraints(max_length=32), STRIPPED] = ""
    email: Annotated[str, StringConstraints(max_length=254), STRIPPED] = ""
    is_primary: bool = False

    def to_proto(self, customer_id: str) -> customers_pb2.AddContactPersonRequest:
        return customers_pb2.AddContactPersonRequest(
            customer_id=customer_id,
            contact_person=customers_pb2.ContactPerson(
                full_name=self.full_name,
                role=self.role,
                phone_number=self.phone_number,
                email=self.email,
                is_primary=self.is_primary,
            ),
        )


class ContactPerson(BaseModel):
    id: int
    full_name: str
    role: str
    phone_number: str
    email: str
    is_primary: bool
    create_time: datetime | None


class ContactPersonList(BaseModel):
    contact_persons: list[ContactPerson]


class AddressIn(RequestBody):
    kind: Literal["billing", "shipping", "home", "office", "other"]
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK]
    line2: Annotated[str, StringConstraints(max_length=200), STRIPPED] = ""
    city: Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]
    postal_code: Annotated[str, StringConstraints(max_length=20), STRIPPED] = ""
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")] = Field(
        description="ISO 3166 alpha-2, e.g. IL or IR"
    )

    def to_proto(self, customer_id: str) -> customers_pb2.AddAddressRequest:
        return customers_pb2.AddAddressRequest(
            customer_id=customer_id,
            address=customers_pb2.Address(
                kind=self.kind,
                line1=self.line1,
                line2=self.line2,
                city=self.city,
                postal_code=self.postal_code,
                country_code=self.country_code,
            ),
        )


class Address(BaseModel):
    id: int
    kind: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country_code: str
    create_time: datetime | None


class AddressList(BaseModel):
    addresses: list[Address]
