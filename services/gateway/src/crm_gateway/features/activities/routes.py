"""Activities: log and list a lead's or a deal's calls, meetings, notes, e-mails, SMS and tasks
(/leads/{id}/activities, /deals/{id}/activities); complete a task (/activities/{id}/complete).
Record rules as for the lead or deal itself."""

from __future__ import annotations

from fastapi import HTTPException

from crm.leads.v1 import activities_pb2
from crm_gateway import records
from crm_gateway.clients import BackendClients
from crm_gateway.deps import Caller, Clients, IdempotencyKey, PageSize, PageToken, ResourceId, api_router
from crm_gateway.features.activities.schemas import Activity, ActivityList, LogActivityIn, activity_model
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


async def _list(clients: BackendClients, request: activities_pb2.ListActivitiesRequest) -> ActivityList:
    reply = await read(clients.activities.ListActivities, request)
    return ActivityList(activities=[activity_model(a) for a in reply.activities], next_page_token=reply.next_page_token)


@router.post("/leads/{lead_id}/activities", status_code=201, tags=["activities"], operation_id="logLeadActivity")
async def log_lead_activity(
    lead_id: ResourceId,
    body: LogActivityIn,
    clients: Clients,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Activity:
    """Log a call, meeting, note, e-mail, SMS or task on a lead; the first call, e-mail, SMS or
    meeting stops the lead's speed-to-lead clock."""
    await records.live_lead(clients, principal, lead_id)
    request = body.to_proto(lead_id=lead_id, idempotency_key=(idempotency_key or "").strip())
    reply = await clients.activities.LogActivity(request)
    return activity_model(reply.activity)


@router.get("/leads/{lead_id}/activities", tags=["activities"], operation_id="listLeadActivities")
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


@router.post("/deals/{deal_id}/activities", status_code=201, tags=["activities"], operation_id="logDealActivity")
async def log_deal_activity(
    deal_id: ResourceId,
    body: LogActivityIn,
    clients: Clients,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Activity:
    """Log an activity on a deal (it is also the deal's lead's activity)."""
    await records.deal(clients, principal, deal_id)
    request = body.to_proto(deal_id=deal_id, idempotency_key=(idempotency_key or "").strip())
    reply = await clients.activities.LogActivity(request)
    return activity_model(reply.activity)


@router.get("/deals/{deal_id}/activities", tags=["activities"], operation_id="listDealActivities")
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


@router.post("/activities/{activity_id}/complete", tags=["activities"], operation_id="completeActivity")
async def complete_activity(activity_id: ResourceId, clients: Clients, principal: Caller) -> Activity:
    """Mark a task done. 409 when it is done already or the activity is not a task."""
    found = (
        await records.get(
            "activity",
            activity_id,
            clients.activities.GetActivity,
            activities_pb2.GetActivityRequest(activity_id=activity_id),
        )
    ).activity
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
    reply = await clients.activities.CompleteTask(activities_pb2.CompleteTaskRequest(activity_id=activity_id))
    return activity_model(reply.activity)
