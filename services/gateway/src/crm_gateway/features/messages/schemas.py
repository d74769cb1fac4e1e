"""Response bodies of /messages (what the CRM sent customers)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from crm.notifications.v1 import notifications_pb2
from crm_gateway.convert import RequestBody


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
    # SMS parts the body is sent as (GSM-7 160/153 characters, UCS-2 70/67); 0 for e-mail.
    sms_parts: int


class MessageList(BaseModel):
    messages: list[NotificationMessage]
    next_page_token: str


class PreviewMessageIn(RequestBody):
    """A message to preview: placeholders {name}, {date} ({date:long}, {date:gregorian},
    {date:latn}…), {advertiser}, {advertiser_contact}, and in an e-mail {unsubscribe_link}."""

    channel: Literal["sms", "email"]
    # Checked against the country's advertising rules (CRM_ADVERTISING_RULES) when true.
    advertising: bool = False
    locale: Literal["he-IL", "fa-IR", "en-US"] = "he-IL"
    subject: Annotated[str, StringConstraints(max_length=300)] = ""
    body: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]

    def to_proto(self) -> notifications_pb2.PreviewMessageRequest:
        return notifications_pb2.PreviewMessageRequest(
            channel=self.channel, advertising=self.advertising, locale=self.locale, subject=self.subject, body=self.body
        )


class PreviewViolation(BaseModel):
    field: Literal["subject", "body"]
    rule: Literal[
        "advertising_marker",
        "opt_out",
        "opt_out_suffix",
        "advertiser_identity",
        "unsubscribe_link",
        "unknown_field",
        "template_syntax",
    ]
    description: str


class MessagePreview(BaseModel):
    subject: str
    body: str
    # SMS only ("" and 0 for e-mail): gsm-7 or ucs-2, the length in its units, the parts and the
    # units left in the last part.
    encoding: Literal["", "gsm-7", "ucs-2"]
    units: int
    sms_parts: int
    remaining: int
    # Empty: the message may be sent as it is.
    violations: list[PreviewViolation]
    rules_country: str
