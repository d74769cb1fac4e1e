"""/targets: sales targets per rep, team, source or product line, period and metric, served by the
reporting service (crm.reporting.v1.TargetsService); GET /reports/targets compares them with what
was won and captured. docs/selling.md, "Targets vs actual", has the rules.

Record rules by the target's subject: admins every target; a manager their team's and its reps'
(sets, changes, deletes them); a rep reads their own; marketing reads every source's. A target
outside that is 404; one the caller reads but does not set is 403 on a change."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError

from crm.leads.v1 import routing_pb2
from crm.reporting.v1 import targets_pb2
from crm_gateway import records
from crm_gateway.convert import IsoDate, enum_value, to_model
from crm_gateway.deps import Caller, Clients, IdempotencyKey, PageSize, PageToken, ResourceId, api_router, forbidden
from crm_gateway.features.targets.schemas import (
    PeriodKind,
    SubjectKind,
    Target,
    TargetIn,
    TargetList,
    TargetPatchIn,
)
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


def _unknown_subject(detail: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", "subject_id"), "msg": detail}])


async def _check_subject(clients: Clients, principal: Principal, body: TargetIn) -> None:
    """The caller's reach first: a subject outside it is 403 whether it exists or not, so a manager
    never learns which other teams and reps exist (GET /teams/{id} and /reps/{id} are 404 to
    them). Within it, a rep or team target names one that exists (422 naming subject_id). Sources
    and product lines are codes a target may name before the first lead or pipeline uses them."""
    kind = enum_value(targets_pb2.TargetSubjectKind, body.subject_kind)
    if not await records.subject_within(clients, authz.target_manage_reach(principal), kind, body.subject_id):
        raise forbidden("Managers set targets for their own team and its reps only.")
    if body.subject_kind == "rep" and await records.rep_of(clients, body.subject_id) is None:
        raise _unknown_subject(f"No rep with id {body.subject_id!r}.")
    if body.subject_kind == "team":
        try:
            await read(clients.routing.GetTeam, routing_pb2.GetTeamRequest(team_id=body.subject_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise _unknown_subject(f"No team with id {body.subject_id!r}.") from exc
            raise


def _subject_kind(word: SubjectKind | None) -> targets_pb2.TargetSubjectKind.ValueType:
    return enum_value(targets_pb2.TargetSubjectKind, word) if word else targets_pb2.TARGET_SUBJECT_KIND_UNSPECIFIED


@router.post("/targets", status_code=201, tags=["targets"], operation_id="createTarget")
async def create_target(
    body: TargetIn, clients: Clients, principal: Caller, idempotency_key: IdempotencyKey = None
) -> Target:
    """A target for the period that contains period_start. A second target for the same subject,
    period and metric is 409 (change the first with PATCH); the same request repeated with its
    request_id (or Idempotency-Key) answers the first target, and that request_id on another
    subject, period or metric is 409 (REQUEST_ID_IN_USE)."""
    await _check_subject(clients, principal, body)
    reply = await clients.targets.CreateTarget(body.to_proto((idempotency_key or "").strip()))
    return to_model(Target, reply.target)


@router.get("/targets", tags=["targets"], operation_id="listTargets")
async def list_targets(
    clients: Clients,
    principal: Caller,
    subject_kind: SubjectKind | None = None,
    period_kind: PeriodKind | None = None,
    date: Annotated[IsoDate | None, Query(description="With period_kind: the period containing this day")] = None,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> TargetList:
    """The targets the caller sees, newest period first."""
    if date is not None and period_kind is None:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "period_kind"), "msg": "is required with date"}]
        )
    request = targets_pb2.ListTargetsRequest(
        scope=await records.target_scope(clients, authz.target_reach(principal)),
        subject_kind=_subject_kind(subject_kind),
        period_kind=enum_value(targets_pb2.PeriodKind, period_kind)
        if period_kind
        else targets_pb2.PERIOD_KIND_UNSPECIFIED,
        period_date=protoconv.to_date(date),
        page_size=protoconv.page_size(page_size),
        page_token=page_token,
    )
    return to_model(TargetList, await read(clients.targets.ListTargets, request))


@router.patch("/targets/{target_id}", tags=["targets"], operation_id="updateTarget")
async def update_target(target_id: ResourceId, body: TargetPatchIn, clients: Clients, principal: Caller) -> Target:
    """Change the target's value: `amount` (won_amount) or `count` (won_deals, leads)."""
    if not body.model_fields_set:
        raise HTTPException(422, "Name the amount or the count to change.")
    await records.target(clients, principal, target_id, manage=True)
    reply = await clients.targets.UpdateTarget(body.to_proto(target_id))
    return to_model(Target, reply.target)


@router.delete("/targets/{target_id}", status_code=204, tags=["targets"], operation_id="deleteTarget")
async def delete_target(target_id: ResourceId, clients: Clients, principal: Caller) -> Response:
    """Remove the target (what was won and captured stays: those are facts)."""
    await records.target(clients, principal, target_id, manage=True)
    await clients.targets.DeleteTarget(targets_pb2.DeleteTargetRequest(target_id=target_id))
    return Response(status_code=204)
