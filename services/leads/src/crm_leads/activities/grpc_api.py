"""ActivitiesService: proto ↔ activities commands and queries. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from crm.leads.v1 import activities_pb2, activities_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument
from crm_kit.protoconv import encode_page_token, from_timestamp, page_position, page_size, to_timestamp
from crm_leads.activities import commands, domain, queries
from crm_leads.activities.domain import ActivityKind, CallOutcome

_KIND_FROM_PROTO = {
    activities_pb2.ACTIVITY_KIND_CALL: ActivityKind.CALL,
    activities_pb2.ACTIVITY_KIND_MEETING: ActivityKind.MEETING,
    activities_pb2.ACTIVITY_KIND_NOTE: ActivityKind.NOTE,
    activities_pb2.ACTIVITY_KIND_TASK: ActivityKind.TASK,
    activities_pb2.ACTIVITY_KIND_EMAIL: ActivityKind.EMAIL,
    activities_pb2.ACTIVITY_KIND_SMS: ActivityKind.SMS,
}
_KIND_TO_PROTO = {kind.value: number for number, kind in _KIND_FROM_PROTO.items()}
_OUTCOME_FROM_PROTO = {
    activities_pb2.CALL_OUTCOME_ANSWERED: CallOutcome.ANSWERED,
    activities_pb2.CALL_OUTCOME_NO_ANSWER: CallOutcome.NO_ANSWER,
    activities_pb2.CALL_OUTCOME_BUSY: CallOutcome.BUSY,
    activities_pb2.CALL_OUTCOME_VOICEMAIL: CallOutcome.VOICEMAIL,
    activities_pb2.CALL_OUTCOME_WRONG_NUMBER: CallOutcome.WRONG_NUMBER,
    activities_pb2.CALL_OUTCOME_CALLBACK_REQUESTED: CallOutcome.CALLBACK_REQUESTED,
}
_OUTCOME_TO_PROTO = {outcome.value: number for number, outcome in _OUTCOME_FROM_PROTO.items()}


def activity_to_proto(r: Any) -> activities_pb2.Activity:
    return activities_pb2.Activity(
        id=r.id,
        kind=_KIND_TO_PROTO.get(r.kind, activities_pb2.ACTIVITY_KIND_UNSPECIFIED),
        lead_id=r.lead_id,
        deal_id=r.deal_id or "",
        subject=r.subject,
        body=r.body,
        outcome=_OUTCOME_TO_PROTO.get(r.outcome, activities_pb2.CALL_OUTCOME_UNSPECIFIED),
        duration=Duration(seconds=r.duration_seconds) if r.duration_seconds is not None else None,
        start_time=to_timestamp(r.start_at),
        end_time=to_timestamp(r.end_at),
        due_time=to_timestamp(r.due_at),
        remind_time=to_timestamp(r.remind_at),
        complete_time=to_timestamp(r.completed_at),
        remind_sent_time=to_timestamp(r.reminded_at),
        occur_time=to_timestamp(r.occurred_at),
        actor=r.actor,
        rep_id=r.rep_id or "",
        team_id=r.team_id or "",
        create_time=to_timestamp(r.created_at),
        first_response=r.first_response,
    )


def _time(request: Any, field: str) -> datetime | None:
    return from_timestamp(getattr(request, field), request.HasField(field))


def _one_target(lead_id: str, deal_id: str) -> None:
    if bool(lead_id) == bool(deal_id):
        raise InvalidArgument(
            "give exactly one of lead_id and deal_id",
            field_violations=[("lead_id", "exactly one of lead_id and deal_id")],
        )


def new_activity_from(request: activities_pb2.LogActivityRequest, now: datetime) -> domain.NewActivity:
    """Every field of the request checked at once (unknown enum numbers included)."""
    unknown: list[tuple[str, str]] = []
    kind = _KIND_FROM_PROTO.get(request.kind)
    outcome = _OUTCOME_FROM_PROTO.get(request.outcome)
    if request.outcome != activities_pb2.CALL_OUTCOME_UNSPECIFIED and outcome is None:
        unknown.append(("outcome", "unknown call outcome"))
    if len(request.request_id) > 200:
        unknown.append(("request_id", "at most 200 characters"))
    duration = None
    if request.HasField("duration"):
        duration = timedelta(seconds=request.duration.seconds, microseconds=request.duration.nanos // 1000)
    try:
        new = domain.validate_new_activity(
            kind=kind,
            subject=request.subject,
            body=request.body,
            now=now,
            occurred_at=_time(request, "occur_time"),
            outcome=outcome,
            duration=duration,
            start_at=_time(request, "start_time"),
            end_at=_time(request, "end_time"),
            due_at=_time(request, "due_time"),
            remind_at=_time(request, "remind_time"),
        )
    except InvalidArgument as exc:
        raise InvalidArgument(exc.message, field_violations=[*exc.field_violations, *unknown]) from exc
    if unknown:
        raise InvalidArgument("invalid activity", field_violations=unknown)
    return new


class ActivitiesServicer(activities_pb2_grpc.ActivitiesServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def LogActivity(
        self, request: activities_pb2.LogActivityRequest, context: grpc.aio.ServicerContext
    ) -> activities_pb2.LogActivityResponse:
        _one_target(request.lead_id, request.deal_id)
        new = new_activity_from(request, datetime.now(UTC))
        if request.request_id:
            async with self.db.unit_of_work() as uow:
                target = await queries.resolve_target(uow, lead_id=request.lead_id, deal_id=request.deal_id)
                existing = await queries.find_by_request_id(uow, request.request_id)
            if existing is not None:
                return activities_pb2.LogActivityResponse(
                    activity=activity_to_proto(queries.check_replay(existing, target))
                )
        try:
            async with self.db.unit_of_work() as uow:
                target = await queries.resolve_target(uow, lead_id=request.lead_id, deal_id=request.deal_id)
                row = await commands.log_activity(uow, target, new, request_id=request.request_id)
        except commands.RequestIdRace:
            async with self.db.unit_of_work() as uow:
                row = await queries.find_by_request_id(uow, request.request_id)
            assert row is not None
            row = queries.check_replay(row, target)
        return activities_pb2.LogActivityResponse(activity=activity_to_proto(row))

    async def ListActivities(
        self, request: activities_pb2.ListActivitiesRequest, context: grpc.aio.ServicerContext
    ) -> activities_pb2.ListActivitiesResponse:
        _one_target(request.lead_id, request.deal_id)
        limit = page_size(request.page_size)
        after = page_position(request.page_token, datetime.fromisoformat, str)
        async with self.db.unit_of_work() as uow:
            target = await queries.resolve_target(uow, lead_id=request.lead_id, deal_id=request.deal_id)
            rows, next_key = await queries.list_activities(uow, target, limit=limit, after=after)
        return activities_pb2.ListActivitiesResponse(
            activities=[activity_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def CompleteTask(
        self, request: activities_pb2.CompleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> activities_pb2.CompleteTaskResponse:
        if not request.activity_id:
            raise InvalidArgument("activity_id is required", field_violations=[("activity_id", "is required")])
        async with self.db.unit_of_work() as uow:
            row = await commands.complete_task(uow, request.activity_id)
        return activities_pb2.CompleteTaskResponse(activity=activity_to_proto(row))

    async def ListTasks(
        self, request: activities_pb2.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> activities_pb2.ListTasksResponse:
        limit = page_size(request.page_size)
        after = page_position(request.page_token, datetime.fromisoformat, str)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_open_tasks(
                uow, rep_id=request.rep_id, team_id=request.team_id, limit=limit, after=after
            )
        return activities_pb2.ListTasksResponse(
            tasks=[activity_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def GetActivity(
        self, request: activities_pb2.GetActivityRequest, context: grpc.aio.ServicerContext
    ) -> activities_pb2.GetActivityResponse:
        if not request.activity_id:
            raise InvalidArgument("activity_id is required", field_violations=[("activity_id", "is required")])
        async with self.db.unit_of_work() as uow:
            row = await queries.get_activity(uow, request.activity_id)
        return activities_pb2.GetActivityResponse(activity=activity_to_proto(row))
