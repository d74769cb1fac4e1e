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


class Category(BaseModel):
    id: str
    parent_id: str
    names: dict[str, str]
    queue_id: str


class CategoryList(BaseModel):
    categories: list[Category]


class Queue(BaseModel):
    id: str
    names: dict[str, str]
    team_id: str
    strategy: Literal["unspecified", "round_robin", "least_loaded"]
    member_ids: list[str]
    calendar_code: str
    open_by_member: dict[str, int]


class QueueList(BaseModel):
    queues: list[Queue]


class UpdateQueueIn(RequestBody):
    strategy: Strategy
    member_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(max_length=500)
    team_id: OptionalId = ""
    calendar_code: Annotated[str, StringConstraints(max_length=20)] = ""


class SlaTarget(BaseModel):
    metric: Metric
    priority: Priority
    category_id: str = ""
    customer_tier: Literal["", "standard", "gold", "vip"] = ""
    target_minutes: int = Field(ge=1, le=129600)


class SlaPolicy(BaseModel):
    version: int
    targets: list[SlaTarget]
    warn_before_minutes: int
    escalate_after_minutes: int
    reassign_on_breach: bool
    create_time: datetime | None
    created_by: str


class UpdateSlaPolicyIn(RequestBody):
    """A new version of the policy, edited from based_on_version (409 when another edit came
    first). Past tickets keep the targets of the version they were opened under."""

    targets: list[SlaTarget] = Field(min_length=1, max_length=500)
    warn_before_minutes: int = Field(30, ge=0, le=10080)
    escalate_after_minutes: int = Field(240, ge=0, le=10080)
    reassign_on_breach: bool = True
    based_on_version: int = Field(ge=1)

    def to_proto(self) -> support_pb2.UpdateSlaPolicyRequest:
        return support_pb2.UpdateSlaPolicyRequest(
            targets=[
                support_pb2.SlaTarget(
                    metric=enum_value(support_pb2.SlaMetric, t.metric),
                    priority=enum_value(support_pb2.TicketPriority, t.priority),
                    category_id=t.category_id,
                    customer_tier=t.customer_tier,
                    target_minutes=t.target_minutes,
                )
                for t in self.targets
            ],
            warn_before_minutes=self.warn_before_minutes,
            escalate_after_minutes=self.escalate_after_minutes,
            reassign_on_breach=self.reassign_on_breach,
            based_on_version=self.based_on_version,
        )


class BusinessWindow(BaseModel):
    start: HourMinute
    end: HourMinute


class CalendarDay(BaseModel):
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    windows: list[BusinessWindow] = Field(max_length=12)


class Holiday(BaseModel):
    date: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    windows: list[BusinessWindow] = Field(default_factory=list, max_length=12)


class Calendar(BaseModel):
    code: str
    name: str
    time_zone: str
    weekly: list[CalendarDay]
    holidays: list[Holiday]


class CalendarList(BaseModel):
    calendars: list[Calendar]


class PutCalendarIn(RequestBody):
    """A calendar's hours per weekday (several windows a day, local to its time zone) and its
    holidays as data (closed, or a short day's windows)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK]
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    weekly: list[CalendarDay] = Field(max_length=7)
    holidays: list[Holiday] = Field(default_factory=list, max_length=2000)

    def to_proto(self, code: str) -> support_pb2.PutCalendarRequest:
        def windows(items: list[BusinessWindow]) -> list[support_pb2.BusinessWindow]:
            return [support_pb2.BusinessWindow(start=w.start, end=w.end) for w in items]

        return support_pb2.PutCalendarRequest(
            calendar=support_pb2.Calendar(
                code=code,
                name=self.name,
                time_zone=self.time_zone,
                weekly=[support_pb2.CalendarDay(weekday=d.weekday, windows=windows(d.windows)) for d in self.weekly],
                holidays=[
                    support_pb2.Holiday(date=h.date, name=h.name, windows=windows(h.windows)) for h in self.holidays
                ],
            )
        )


class SlaAttainment(BaseModel):
    metric: Literal["unspecified", "first_response", "next_response", "resolution"]
    met: int
    breached: int
    attainment: float


class SupportReportRow(BaseModel):
    key: str
    opened: int
    resolved: int
    backlog: int
    sla: list[SlaAttainment]
    survey_answers: int
    csat_average: float
    csat_satisfied: float


class SupportReport(BaseModel):
    rows: list[SupportReportRow]
    total: SupportReportRow | None


class SurveyAnswerIn(RequestBody):
    score: int = Field(ge=1, le=5)
    comment: Annotated[str, StringConstraints(max_length=1000), STRIPPED] = ""


class SurveyAnswered(BaseModel):
    score: int
    ticket_number: int
