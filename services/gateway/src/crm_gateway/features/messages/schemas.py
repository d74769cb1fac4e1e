"""Response bodies of /messages (what the CRM sent customers)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


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
