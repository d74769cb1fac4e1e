"""Request and response bodies of the service desk: /tickets, their messages, queues, categories,
the SLA policy and calendars, the support report, and the public survey answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm.support.v1 import support_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, RecordId, RequestBody, enum_value

Kind = Literal["complaint", "question", "return", "repair", "billing", "task"]
Channel = Literal["phone", "email", "sms", "web_form", "walk_in"]
Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["new", "open", "pending_customer", "resolved", "closed"]
Metric = Literal["first_response", "next_response", "resolution"]
Visibility = Literal["public_reply", "internal_note", "customer_message"]
Strategy = Literal["round_robin", "least_loaded"]
OptionalId = Annotated[str, StringConstraints(max_length=64), STRIPPED]
HourMinute = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")]


class OpenTicketIn(RequestBody):
    """A ticket for a customer (and, if it concerns one, an order or a product). The category
    chooses the queue; the queue's strategy the agent, unless assignee_id names one of its members."""

    customer_id: RecordId
    order_id: OptionalId = ""
    product_sku: Annotated[str, StringConstraints(max_length=100), STRIPPED] = ""
    kind: Kind
    channel: Channel
    priority: Priority = "normal"
    category_id: Annotated[str, StringConstraints(min_length=1, max_length=64), STRIPPED, NOT_BLANK]
    subject: Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK]
    description: Annotated[str, StringConstraints(max_length=10000), STRIPPED] = ""
    parent_ticket_id: OptionalId = Field("", description="A task's parent ticket")
    customer_tier: Literal["", "standard", "gold", "vip"] = ""
    assignee_id: OptionalId = ""
    request_id: Annotated[str, StringConstraints(max_length=100), STRIPPED] = ""

    def to_proto(self, reach: support_pb2.TicketReach, request_id: str) -> support_pb2.OpenTicketRequest:
        return support_pb2.OpenTicketRequest(
            customer_id=self.customer_id,
            order_id=self.order_id,
            product_sku=self.product_sku,
            kind=enum_value(support_pb2.TicketKind, self.kind),
            channel=enum_value(support_pb2.TicketChannel, self.channel),
            priority=enum_value(support_pb2.TicketPriority, self.priority),
            category_id=self.category_id,
            subject=self.subject,
            description=self.description,
            parent_ticket_id=self.parent_ticket_id,
            customer_tier=self.customer_tier,
            assignee_id=self.assignee_id,
            request_id=self.request_id or request_id,
            reach=reach,
        )


class AddTicketMessageIn(RequestBody):
    """A public reply (the customer is told; meets the response targets), an internal note, or
    what the customer said (starts the next-response clock)."""

    visibility: Visibility
    body: Annotated[str, StringConstraints(min_length=1, max_length=10000), STRIPPED, NOT_BLANK]
    request_id: Annotated[str, StringConstraints(max_length=100), STRIPPED] = ""


class ChangeTicketStatusIn(RequestBody):
    status: Status
    note: Annotated[str, StringConstraints(max_length=2000), STRIPPED] = ""


class AssignTicketIn(RequestBody):
    """Another queue and/or agent; an empty assignee lets the queue's strategy choose."""

    queue_id: OptionalId = ""
    assignee_id: OptionalId = ""


class SlaClock(BaseModel):
    metric: Literal["unspecified", "first_response", "next_response", "resolution"]
    state: Literal["unspecified", "running", "paused", "met", "breached"]
    target_seconds: int
    elapsed_seconds: int
    due_time: datetime | None
    met_time: datetime | None
    breach_time: datetime | None
    paused_reason: str
    escalation_level: int


class Ticket(BaseModel):
    id: str
    number: int
    customer_id: str
    order_id: str
    product_sku: str
    kind: Literal["unspecified", "complaint", "question", "return", "repair", "billing", "task"]
    channel: Literal["unspecified", "phone", "email", "sms", "web_form", "walk_in"]
    priority: Literal["unspecified", "low", "normal", "high", "urgent"]
    category_id: str
    subject: str
    description: str
    status: Literal["unspecified", "new", "open", "pending_customer", "resolved", "closed"]
    queue_id: str
    assignee_id: str
    parent_ticket_id: str
    customer_tier: str
    sla_policy_version: int
    calendar_code: str
    sla: list[SlaClock]
    open_child_count: int
    satisfaction_score: int
    create_time: datetime | None
    update_time: datetime | None
    resolve_time: datetime | None
    created_by: str


class TicketList(BaseModel):
    tickets: list[Ticket]
    next_page_token: str


class TicketMessage(BaseModel):
    id: int
    ticket_id: str
    visibility: Literal["unspecified", "public_reply", "internal_note", "customer_message"]
    body: str
    author_id: str
    author_name: str
    create_time: datetime | None


class TicketMessageList(BaseModel):
    messages: list[TicketMessage]


class TicketMessageAdded(BaseModel):
    message: TicketMessage
    ticket: Ticket
