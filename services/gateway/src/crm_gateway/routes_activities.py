"""Activities routes: log and list a lead's or a deal's calls, meetings, notes, e-mails, SMS and
tasks; complete a task; a rep's open tasks. Record rules as for the lead or deal itself."""

from __future__ import annotations

from functools import cache
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Header, HTTPException

from crm.leads.v1 import activities_pb2, activities_pb2_grpc
from crm_gateway import authz, records
from crm_gateway.auth import Caller, authorize
from crm_gateway.clients import BackendClients
from crm_gateway.problems import PROBLEM_RESPONSES
from crm_gateway.records import read
from crm_gateway.routes import Clients, FilterId, PageSize, PageToken, ResourceId, json_bodies_only
from crm_gateway.schemas_activities import Activity, ActivityList, LogActivityIn, TaskList, activity_model
from crm_kit import protoconv

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(authorize), Depends(json_bodies_only)],
    responses=PROBLEM_RESPONSES,
)
IdempotencyKey = Annotated[
    str, Header(alias="Idempotency-Key", max_length=200, description="request_id when the body has none")
]


@cache
def _stub(channel: grpc.aio.Channel) -> activities_pb2_grpc.ActivitiesServiceStub:
    # ActivitiesService is served on the leads service's port: one stub per leads channel.
    return activities_pb2_grpc.ActivitiesServiceStub(channel)


def activities_of(clients: BackendClients) -> activities_pb2_grpc.ActivitiesServiceStub:
    return _stub(clients.channels["leads"])


async def _list(clients: BackendClients, request: activities_pb2.ListActivitiesRequest) -> ActivityList:
    reply = await read(activities_of(clients).ListActivities, request)
    return ActivityList(activities=[activity_model(a) for a in reply.activities], next_page_token=reply.next_page_token)


@router.post("/leads/{lead_id}/activities", status_code=201, tags=["activities"])
async def log_lead_activity(
    lead_id: ResourceId, body: LogActivityIn, clients: Clients, principal: Caller, idempotency_key: IdempotencyKey = ""
) -> Activity:
    """Log a call, meeting, note, e-mail, SMS or task on a lead; the first call, e-mail, SMS or
    meeting stops the lead's speed-to-lead clock."""
    await records.live_lead(clients, principal, lead_id)
    request = body.to_proto(lead_id=lead_id, idempotency_key=idempotency_key.strip())
    reply = await activities_of(clients).LogActivity(request)
    return activity_model(reply.activity)


@router.get("/leads/{lead_id}/activities", tags=["activities"])
async def list_lead_activities(
    lead_id: ResourceId, clients: Clients, principal: Caller, page_size: PageSize = 0, page_token: PageToken = ""
) -> ActivityList:
    """Everything logged on the lead and its deal, newest first."""
    await records.live_lead(clients, principal, lead_id)
    return await _list(
        clients,
        activities_pb2.ListActivitiesRequest(
            lead_id=lead_id, page_size=protoconv.page_size(page_size), page_token=page_token
        ),
    )


@router.post("/deals/{deal_id}/activities", status_code=201, tags=["activities"])
async def log_deal_activity(
    deal_id: ResourceId, body: LogActivityIn, clients: Clients, principal: Caller, idempotency_key: IdempotencyKey = ""
) -> Activity:
    """Log an activity on a deal (it is also the deal's lead's activity)."""
    await records.deal(clients, principal, deal_id)
    request = body.to_proto(deal_id=deal_id, idempotency_key=idempotency_key.strip())
    reply = await activities_of(clients).LogActivity(request)
    return activity_model(reply.activity)


@router.get("/deals/{deal_id}/activities", tags=["activities"])
async def list_deal_activities(
    deal_id: ResourceId, clients: Clients, principal: Caller, page_size: PageSize = 0, page_token: PageToken = ""
) -> ActivityList:
    await records.deal(clients, principal, deal_id)
    return await _list(
        clients,
        activities_pb2.ListActivitiesRequest(
            deal_id=deal_id, page_size=protoconv.page_size(page_size), page_token=page_token
        ),
    )


@router.post("/activities/{activity_id}/complete", tags=["activities"])
async def complete_activity(activity_id: ResourceId, clients: Clients, principal: Caller) -> Activity:
    """Mark a task done. 409 when it is done already or the activity is not a task."""
    stub = activities_of(clients)
    try:
        found = (await read(stub.GetActivity, activities_pb2.GetActivityRequest(activity_id=activity_id))).activity
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise records.not_found("activity", activity_id) from exc
        raise
    # Visible exactly when its deal (or lead) is: someone else's activity is a 404 like a missing one.
    try:
        if found.deal_id:
            await records.deal(clients, principal, found.deal_id)
        else:
            await records.lead(clients, principal, found.lead_id)
    except HTTPException as exc:
        if exc.status_code == 404:
            raise records.not_found("activity", activity_id) from exc
        raise
    reply = await stub.CompleteTask(activities_pb2.CompleteTaskRequest(activity_id=activity_id))
    return activity_model(reply.activity)


@router.get("/tasks", tags=["activities"])
async def list_tasks(
    clients: Clients,
    principal: Caller,
    rep_id: FilterId = "",
    team_id: FilterId = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> TaskList:
    """Open tasks, overdue and soonest due first: a rep's own (the default for a rep), a manager's
    team's, any for an admin."""
    rep_id, team_id = authz.list_scope(principal, rep_id, team_id, "tasks")
    reply = await read(
        activities_of(clients).ListTasks,
        activities_pb2.ListTasksRequest(
            rep_id=rep_id, team_id=team_id, page_size=protoconv.page_size(page_size), page_token=page_token
        ),
    )
    return TaskList(tasks=[activity_model(t) for t in reply.tasks], next_page_token=reply.next_page_token)
