"""Request and response bodies of /customers (the directory, timelines, merges)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from crm_gateway.convert import RecordId, RequestBody


class MergeCustomersIn(RequestBody):
    """The customer to merge into the one in the path (which survives)."""

    duplicate_customer_id: RecordId


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


class MergedCustomer(Customer):
    """The surviving customer; merged_into_customer_id is empty on it."""

    merged_into_customer_id: str


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
    ]
    summary: str
    channel: str
    event_id: str
    occur_time: datetime | None


class Timeline(BaseModel):
    entries: list[TimelineEntry]
    next_page_token: str
