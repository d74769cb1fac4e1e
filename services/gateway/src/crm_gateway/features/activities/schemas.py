"""Request and response bodies of activities (calls, meetings, notes, e-mails, SMS, tasks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from google.protobuf.duration_pb2 import Duration
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from crm.leads.v1 import activities_pb2
from crm_gateway.convert import STRIPPED, IsoDateTime, RequestBody, enum_value, message_to_dict, to_timestamp

ActivityKindName = Literal["call", "meeting", "note", "task", "email", "sms"]
CallOutcomeName = Literal["answered", "no_answer", "busy", "voicemail", "wrong_number", "callback_requested"]

_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    """A time as UTC within 2000–2099: anything else is a typo, and extreme offsets cannot overflow."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not _EARLIEST <= value < _LATEST:
        raise ValueError("must be between the years 2000 and 2099")
    return value.astimezone(UTC)


ActivityTime = Annotated[IsoDateTime, AfterValidator(_in_range)]
Time = Annotated[ActivityTime | None, Field(description="ISO 8601; without a zone it is UTC")]


class LogActivityIn(RequestBody):
    """Which fields a kind takes is checked by the leads service (422 naming each bad field):
    outcome and duration_seconds only for a call (outcome required), start_time/end_time only for
    a meeting (both required), due_time (required) and remind_time only for a task."""

    kind: ActivityKindName
    subject: Annotated[str, StringConstraints(max_length=200), STRIPPED] = ""
    body: Annotated[str, StringConstraints(max_length=10_000), STRIPPED] = ""
    outcome: CallOutcomeName | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=86_400)
    start_time: Time = None
    end_time: Time = None
    due_time: Time = None
    remind_time: Time = None
    occur_time: Annotated[
        ActivityTime | None, Field(description="When it happened (default: now); not in the future")
    ] = None
    request_id: Annotated[str, StringConstraints(max_length=200), STRIPPED] = ""

    def to_proto(
        self, *, lead_id: str = "", deal_id: str = "", idempotency_key: str = ""
    ) -> activities_pb2.LogActivityRequest:
        return activities_pb2.LogActivityRequest(
            lead_id=lead_id,
            deal_id=deal_id,
            kind=enum_value(activities_pb2.ActivityKind, self.kind),
            subject=self.subject,
            body=self.body,
            outcome=enum_value(activities_pb2.CallOutcome, self.outcome or "unspecified"),
            duration=Duration(seconds=self.duration_seconds) if self.duration_seconds is not None else None,
            start_time=to_timestamp(self.start_time),
            end_time=to_timestamp(self.end_time),
            due_time=to_timestamp(self.due_time),
            remind_time=to_timestamp(self.remind_time),
            occur_time=to_timestamp(self.occur_time),
            request_id=self.request_id or idempotency_key,
        )


class Activity(BaseModel):
    id: str
    kind: Literal["unspecified", "call", "meeting", "note", "task", "email", "sms"]
    lead_id: str
    deal_id: str
    subject: str
    body: str
    outcome: Literal["unspecified", "answered", "no_answer", "busy", "voicemail", "wrong_number", "callback_requested"]
    duration_seconds: int | None
    start_time: datetime | None
    end_time: datetime | None
    due_time: datetime | None
    remind_time: datetime | None
    complete_time: datetime | None
    remind_sent_time: datetime | None
    occur_time: datetime | None
    actor: str
    rep_id: str
    team_id: str
    create_time: datetime | None
    first_response: bool = Field(description="This activity stopped the lead's speed-to-lead clock")


class ActivityList(BaseModel):
    activities: list[Activity]
    next_page_token: str


def activity_model(message: activities_pb2.Activity) -> Activity:
    """The activity, its duration as whole seconds (duration_seconds) or null."""
    values = message_to_dict(message)
    del values["duration"]
    values["duration_seconds"] = message.duration.seconds if message.HasField("duration") else None
    return Activity.model_validate(values)
