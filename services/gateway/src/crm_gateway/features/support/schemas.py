"""Request and response bodies of /support: categories, queues, the SLA policy and calendars, the
report, and the public survey answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm.support.v1 import support_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, RequestBody, enum_value
from crm_gateway.features.tickets.schemas import Metric, OptionalId, Priority, Strategy

HourMinute = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")]


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
    based_on_version: int = Field(ge=1, le=2**31 - 1)

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
