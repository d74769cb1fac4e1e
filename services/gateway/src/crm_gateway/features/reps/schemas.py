"""Request and response bodies of /reps (the directory of reps: their team, what they cover, their
availability and capacity)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StringConstraints

from crm.leads.v1 import routing_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, RequestBody, RequiredText

HourMinute = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# The id the identity provider's tokens name (rep_id, team_id claims).
DirectoryId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
# The same, or empty on a create: the service generates one.
NewDirectoryId = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9][A-Za-z0-9_.:-]{0,63})?$")]
CoverageCode = Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]
TimeZone = Annotated[str, StringConstraints(max_length=64)]

# The fields of PATCH /reps only an admin sends (the others are availability and capacity).
ADMIN_FIELDS = frozenset({"name", "team_id", "active", "territories", "product_lines"})


class WorkingHoursIn(RequestBody):
    day: Day
    start: HourMinute
    end: HourMinute


def _hours(spans: list[WorkingHoursIn]) -> list[routing_pb2.WorkingHours]:
    return [routing_pb2.WorkingHours(day=h.day, start=h.start, end=h.end) for h in spans]


class CreateRepIn(RequestBody):
    """A rep of an existing team (an active team for an active rep). The id is the rep_id their
    token names (generated when left out); an id that exists is 409."""

    id: NewDirectoryId = Field("", description="The rep_id claim of the rep's token; empty: generated")
    name: RequiredText
    team_id: DirectoryId
    active: StrictBool = True
    away: StrictBool = False
    capacity: int | None = Field(None, ge=0, le=10_000, description="The most open leads; null: no cap")
    time_zone: TimeZone = Field("", description="IANA, e.g. Asia/Tehran; empty: Asia/Jerusalem")
    working_hours: list[WorkingHoursIn] = Field([], max_length=50, description="Empty: always on duty")
    territories: list[CoverageCode] = Field([], max_length=100, description="City or region names; empty: any")
    product_lines: list[CoverageCode] = Field([], max_length=100, description="Product-line codes; empty: any")

    def to_proto(self) -> routing_pb2.CreateRepRequest:
        rep = routing_pb2.Rep(
            name=self.name,
            team_id=self.team_id,
            active=self.active,
            away=self.away,
            time_zone=self.time_zone,
            working_hours=_hours(self.working_hours),
            territories=self.territories,
            product_lines=self.product_lines,
        )
        if self.capacity is not None:
            rep.capacity = self.capacity
        return routing_pb2.CreateRepRequest(rep=rep, rep_id=self.id)


class RepPatchIn(RequestBody):
    """Only the fields sent are changed. capacity null removes the cap; working_hours [] means
    always on duty. A rep may change their own away, time_zone and working_hours; their manager
    also capacity; name, team, active, territories and product lines are an admin's."""

    name: RequiredText = Field("", description="Not empty")
    team_id: DirectoryId = Field("", description="Another existing team: a move")
    active: StrictBool = Field(True, description="An inactive rep gets no new leads and keeps theirs")
    away: bool = False
    capacity: int | None = Field(None, ge=0, le=10_000)
    time_zone: TimeZone = Field("", description="IANA, e.g. Asia/Tehran")
    working_hours: list[WorkingHoursIn] = Field([], max_length=50)
    territories: list[CoverageCode] = Field([], max_length=100)
    product_lines: list[CoverageCode] = Field([], max_length=100)

    def to_proto(self, rep_id: str) -> tuple[routing_pb2.Rep, list[str]]:
        rep = routing_pb2.Rep(
            id=rep_id,
            name=self.name,
            team_id=self.team_id,
            active=self.active,
            away=self.away,
            time_zone=self.time_zone,
            working_hours=_hours(self.working_hours),
            territories=self.territories,
            product_lines=self.product_lines,
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
    territories: list[str]
    product_lines: list[str]
    open_leads: int
    available: bool
    unavailable_reason: str
    etag: str = Field(description="The ETag header's value: send it back in If-Match")
    create_time: datetime | None
    update_time: datetime | None


class RepList(BaseModel):
    reps: list[Rep]
