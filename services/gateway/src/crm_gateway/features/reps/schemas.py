"""Request and response bodies of /reps (availability and capacity)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm.leads.v1 import routing_pb2
from crm_gateway.convert import RequestBody

HourMinute = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class WorkingHoursIn(RequestBody):
    day: Day
    start: HourMinute
    end: HourMinute


class RepPatchIn(RequestBody):
    """Only the fields sent are changed. capacity null removes the cap; working_hours [] means
    always on duty. A rep may change their own away, time_zone and working_hours."""

    away: bool = False
    capacity: int | None = Field(None, ge=0, le=10_000)
    time_zone: Annotated[str, StringConstraints(max_length=64)] = Field("", description="IANA, e.g. Asia/Tehran")
    working_hours: list[WorkingHoursIn] = Field([], max_length=50)

    def to_proto(self, rep_id: str) -> tuple[routing_pb2.Rep, list[str]]:
        rep = routing_pb2.Rep(
            id=rep_id,
            away=self.away,
            time_zone=self.time_zone,
            working_hours=[routing_pb2.WorkingHours(day=h.day, start=h.start, end=h.end) for h in self.working_hours],
        )
        if self.capacity is not None:
            rep.capacity = self.capacity
        return rep, sorted(self.model_fields_set)


class WorkingHours(BaseModel):
    day: str
    start: str
    end: str


class Rep(BaseModel):
    id: str
    name: str
    team_id: str
    active: bool
    away: bool
    capacity: int | None
    time_zone: str
    working_hours: list[WorkingHours]
    open_leads: int
    available: bool
    unavailable_reason: str


class RepList(BaseModel):
    reps: list[Rep]
