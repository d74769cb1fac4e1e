"""/retention-lists: this week's at-risk customers as calls for reps, with a control group held out
(reporting's RetentionService). A manager makes lists of their team's customers for their team's
reps and reads their reports; an admin any; a rep reads the lists with calls of theirs, sees only
those calls, and records the answers. A list outside the caller's reach is 404."""

from __future__ import annotations

from fastapi import HTTPException

from crm.leads.v1 import routing_pb2
from crm.reporting.v1 import retention_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, IdempotencyKey, PageSize, ResourceId, api_router
from crm_gateway.features.retention_lists.schemas import (
    RetentionList,
    RetentionListDetail,
    RetentionListIn,
    RetentionLists,
    RetentionReport,
    RetentionResponseIn,
)
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


def _reach(principal: Principal) -> tuple[str, str]:
    """(team_id, rep_id) the caller's lists are held to: an admin's nothing, a manager's team, a
    rep's own calls (403 for a token naming neither)."""
    rep_id, team_id = authz.list_scope(principal, "", "", "retention lists")
    return team_id, rep_id


@router.post("/retention-lists", status_code=201, tags=["retention"], operation_id="createRetentionList")
async def create_retention_list(
    body: RetentionListIn, clients: Clients, principal: Caller, idempotency_key: IdempotencyKey = None
) -> RetentionList:
    """A call list of the customers at risk at or above the threshold (the team's for a manager),
    highest risk first, leaving out those on a list of the last 7 days. A random control_share is
    held out uncalled; each other customer goes to their owner when the owner is a rep of the team,
    else to the team's reps in turn. The same request_id (or Idempotency-Key) answers the first list."""
    team_id, _ = _reach(principal)
    if team_id and body.team_id and body.team_id != team_id:
        raise HTTPException(403, "Managers make lists for their own team only.")
    team_id = team_id or body.team_id
    reps = await read(
        clients.routing.ListReps, routing_pb2.ListRepsRequest(team_id=team_id, view=routing_pb2.REP_VIEW_BASIC)
    )
    reply = await clients.retention.CreateRetentionList(
        retention_pb2.CreateRetentionListRequest(
            name=body.name,
            threshold=body.threshold,
            control_share=body.control_share,
            has_control_share=True,
            max_entries=body.max_entries,
            rep_ids=[r.id for r in reps.reps],
            team_id=team_id,
            request_id=body.request_id or (idempotency_key or "").strip(),
        )
    )
    return to_model(RetentionList, reply.list)


@router.get("/retention-lists", tags=["retention"], operation_id="listRetentionLists")
async def list_retention_lists(clients: Clients, principal: Caller, page_size: PageSize = 0) -> RetentionLists:
    """Newest first: an admin's every list, a manager's their team's, a rep's those with calls of theirs."""
    team_id, rep_id = _reach(principal)
    request = retention_pb2.ListRetentionListsRequest(
        team_id=team_id, rep_id=rep_id, page_size=protoconv.page_size(page_size)
    )
    return to_model(RetentionLists, await read(clients.retention.ListRetentionLists, request))


@router.get("/retention-lists/{list_id}", tags=["retention"], operation_id="getRetentionList")
async def get_retention_list(list_id: ResourceId, clients: Clients, principal: Caller) -> RetentionListDetail:
    """The list and its entries, highest risk first, each with its reasons, the offer to make and
    the latest answer; a rep sees their own calls only (never the control group)."""
    team_id, rep_id = _reach(principal)
    request = retention_pb2.GetRetentionListRequest(list_id=list_id, team_id=team_id, rep_id=rep_id)
    return to_model(RetentionListDetail, await read(clients.retention.GetRetentionList, request))


@router.post(
    "/retention-lists/{list_id}/entries/{customer_id}/response",
    tags=["retention"],
    operation_id="recordRetentionResponse",
)
async def record_retention_response(
    list_id: ResourceId, customer_id: ResourceId, body: RetentionResponseIn, clients: Clients, principal: Caller
) -> RetentionListDetail:
    """The answer of a called customer (the latest counts): reached, offer_accepted, declined,
    unreachable or churned. A rep answers their own calls; a control entry is 409."""
    team_id, rep_id = _reach(principal)
    await clients.retention.RecordRetentionResponse(
        retention_pb2.RecordRetentionResponseRequest(
            list_id=list_id, customer_id=customer_id, response=body.response, team_id=team_id, rep_id=rep_id
        )
    )
    request = retention_pb2.GetRetentionListRequest(list_id=list_id, team_id=team_id, rep_id=rep_id)
    return to_model(RetentionListDetail, await read(clients.retention.GetRetentionList, request))


@router.get("/retention-lists/{list_id}/report", tags=["retention"], operation_id="getRetentionReport")
async def get_retention_report(list_id: ResourceId, clients: Clients, principal: Caller) -> RetentionReport:
    """Per group, called and control: customers, answers, buyers and revenue since the list was
    made; and the retained revenue — what calling brought beyond what the control group shows
    would have come anyway."""
    team_id, _ = _reach(principal)
    request = retention_pb2.GetRetentionReportRequest(list_id=list_id, team_id=team_id)
    return to_model(RetentionReport, await read(clients.retention.GetRetentionReport, request))
