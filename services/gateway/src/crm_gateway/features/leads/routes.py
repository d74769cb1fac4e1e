"""/leads: capture, list and read leads, and act on one (convert to a deal, merge a duplicate into
it, assign it to a rep, explain its routing).

Record rules: a caller acts only on leads they see (crm_gateway.records), else 404; a manager
assigns a lead of their team, or one no rule matched, to a rep of their team.
"""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from crm.leads.v1 import duplicates_pb2, leads_pb2, routing_pb2
from crm.reporting.v1 import reporting_pb2
from crm.sales.v1 import deals_pb2, pipelines_pb2
from crm_gateway import records
from crm_gateway.clients import BackendClients
from crm_gateway.convert import json_response, model_json, to_model
from crm_gateway.deps import (
    Caller,
    Clients,
    FilterId,
    IdempotencyKey,
    PageSize,
    PageToken,
    ResourceId,
    api_router,
    caller_of,
)
from crm_gateway.features.deals.schemas import Deal
from crm_gateway.features.leads.schemas import (
    AssignLeadIn,
    CaptureAttached,
    CapturedLead,
    CaptureLeadIn,
    CaptureReplayed,
    ConvertLeadIn,
    Lead,
    LeadList,
    LeadScore,
    LeadScoreReason,
    LeadScoringModel,
    MergeLeadsIn,
    RoutedLead,
)
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


# The answer to a touch on a lead the caller may not read: always the same bytes, made once.
_ATTACHED = CaptureAttached().model_dump_json().encode()


@router.post(
    "/leads",
    status_code=201,
    # Declared here for the docs: the route answers its own JSON (convert.model_json), so FastAPI
    # does not validate and encode the lead a second time on the busiest route of the API.
    response_model=CapturedLead | CaptureAttached | CaptureReplayed,
    tags=["leads"],
    operation_id="captureLead",
    responses={
        200: {
            "model": CapturedLead | CaptureAttached,
            "description": "The person is already a lead: the capture was attached to it as a touch. The "
            "lead is in the answer only when the caller may read it; otherwise only duplicate: true.",
        }
    },
)
async def capture_lead(body: CaptureLeadIn, request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    """201 with a new lead, routed to its rep; 200 when the same person (phone number or e-mail)
    is already a lead: the capture is attached to it as a new touch, and the answer is that lead
    if the caller may read it (crm_gateway.platform.authz), else only `{"duplicate": true}`. A
    request_id (or Idempotency-Key) is the caller's own: a repeat answers with the same status, and
    with the lead as it is now only if the caller may read it (else its id, or only `duplicate`);
    another caller's equal id is another request."""
    # The router's authorize dependency has run; the caller and clients are read, not resolved
    # again as dependencies (crm_gateway.deps.caller_of).
    principal = caller_of(request)
    clients: BackendClients = request.app.state.clients
    reach = authz.lead_reach(principal)
    caller_reach = leads_pb2.LeadReach(all_leads=reach.all_leads, team_id=reach.team_id, rep_id=reach.rep_id)
    reply = await clients.leads.CaptureLead(body.to_proto((idempotency_key or "").strip(), caller_reach))
    status = 200 if reply.duplicate else 201
    if not reply.duplicate and not reply.replayed:
        # A new lead: this caller's request made it, from what it sent.
        return json_response(model_json(CapturedLead, reply.lead, duplicate=False, matched_on=""), status)
    visible = authz.lead_visible(principal, reply.lead)
    if reply.replayed and not visible:
        # A repeat of the caller's own request: the same status, and no more than the first answer
        # gave (a new lead's id, or only "duplicate") — never the lead's state now.
        if reply.duplicate:
            return json_response(_ATTACHED, status)
        return json_response(CaptureReplayed(id=reply.lead.id, duplicate=False).model_dump_json().encode(), status)
    if not visible:
        return json_response(_ATTACHED, status)
    lead = model_json(CapturedLead, reply.lead, duplicate=reply.duplicate, matched_on=reply.matched_on)
    return json_response(lead, status)


@router.get("/leads", tags=["leads"], operation_id="listLeads")
async def list_leads(
    clients: Clients,
    principal: Caller,
    source: Annotated[str, Query(max_length=64)] = "",
    rep_id: FilterId = "",
    team_id: FilterId = "",
    campaign_id: FilterId = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> LeadList:
    """Admins list every lead; a manager their team's (team_id defaults to it); a rep their own."""
    rep_id, team_id = authz.list_scope(principal, rep_id, team_id, "leads")
    reply = await read(
        clients.leads.ListLeads,
        leads_pb2.ListLeadsRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            source=source,
            rep_id=rep_id,
            team_id=team_id,
            campaign_id=campaign_id,
        ),
    )
    return to_model(LeadList, reply)


@router.get("/leads/{lead_id}", tags=["leads"], operation_id="getLead")
async def get_lead(lead_id: ResourceId, clients: Clients, principal: Caller) -> Lead:
    return to_model(Lead, await records.lead(clients, principal, lead_id))


@router.post("/leads/{lead_id}/convert", status_code=201, tags=["deals"], operation_id="convertLead")
async def convert_lead(
    lead_id: ResourceId, clients: Clients, principal: Caller, body: ConvertLeadIn | None = None
) -> Deal:
    """Leads records the conversion (and publishes LeadConverted); sales opens the deal it names.
    Converting again answers with the lead's deal as it is now. A deal the caller may not read (a
    merge gave their lead another rep's deal) is a 404, as GET /deals/{id} answers it."""
    await records.lead(clients, principal, lead_id)
    body = body or ConvertLeadIn()
    if body.pipeline_id:
        await _check_pipeline(clients, body.pipeline_id)
    converted = await clients.leads.ConvertLead(
        leads_pb2.ConvertLeadRequest(lead_id=lead_id, title=body.title, pipeline_id=body.pipeline_id)
    )
    conversion = converted.conversion
    deal = await _open_deal(clients, conversion) if converted.created else await _deal_of(clients, conversion)
    if not authz.deal_visible(principal, deal):
        raise records.not_found("deal", deal.id)
    return to_model(Deal, deal)


async def _check_pipeline(clients: BackendClients, pipeline_id: str) -> None:
    """The pipeline must exist and be active before leads records a conversion naming it: leads
    cannot check it, and sales opens the deal from the event as well."""
    try:
        reply: pipelines_pb2.GetPipelineResponse = await records.read(
            clients.pipelines.GetPipeline, pipelines_pb2.GetPipelineRequest(pipeline_id=pipeline_id)
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        raise _pipeline_error("is not a pipeline") from exc
    if not reply.pipeline.active:
        raise _pipeline_error("is an inactive pipeline")


def _pipeline_error(msg: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", "pipeline_id"), "msg": msg}])


def _open_request(c: leads_pb2.LeadConversion) -> deals_pb2.OpenDealRequest:
    return deals_pb2.OpenDealRequest(
        deal_id=c.deal_id,
        lead_id=c.lead_id,
        title=c.title,
        owner_rep_id=c.owner_rep_id,
        owner_team_id=c.owner_team_id,
        source=c.source,
        campaign=c.campaign,
        lead_since=c.lead_since,
        pipeline_id=c.pipeline_id,
    )


async def _open_deal(clients: BackendClients, c: leads_pb2.LeadConversion) -> deals_pb2.Deal:
    """Open the deal (idempotent on its id, so retried; the LeadConverted event opens it too)."""
    reply: deals_pb2.OpenDealResponse = await records.read(clients.deals.OpenDeal, _open_request(c))
    return reply.deal


async def _deal_of(clients: BackendClients, c: leads_pb2.LeadConversion) -> deals_pb2.Deal:
    """The deal of a lead converted before: as sales has it; opened now if neither the first call
    nor the event has opened it yet. A deal from before the sales service (legacy) is opened only
    by the upgrade's copy job, never anew (it may be closed): until then, 503."""
    try:
        reply: deals_pb2.GetDealResponse = await records.read(
            clients.deals.GetDeal, deals_pb2.GetDealRequest(deal_id=c.deal_id)
        )
        return reply.deal
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        if c.legacy:
            raise HTTPException(
                503,
                "This lead's deal is being moved to the sales service; try again shortly.",
                headers={"Retry-After": "30"},
            ) from exc
    return await _open_deal(clients, c)


@router.post("/leads/{lead_id}/merge", tags=["duplicates"], operation_id="mergeLeads")
async def merge_leads(lead_id: ResourceId, body: MergeLeadsIn, clients: Clients, principal: Caller) -> Lead:
    """Merge duplicate_lead_id into this lead, which keeps its id, rep and status; the duplicate
    stays readable with merged_into_lead_id and leaves every list. 409 when either is already
    merged or both have a deal."""
    await records.lead(clients, principal, lead_id)
    try:
        await records.lead(clients, principal, body.duplicate_lead_id)
    except HTTPException as exc:
        raise HTTPException(404, f"No lead with id {body.duplicate_lead_id!r}.") from exc
    reply = await clients.duplicates.MergeLeads(
        duplicates_pb2.MergeLeadsRequest(lead_id=lead_id, duplicate_lead_id=body.duplicate_lead_id)
    )
    return to_model(Lead, reply.lead)


async def _assignable(clients: Clients, principal: Principal, lead_id: str, rep_id: str) -> None:
    """A manager assigns a lead of their team or one no rule matched (else 404), to a rep of their
    team (else 422); an admin any lead to anyone."""
    if principal.has_role(authz.Role.ADMIN):
        return
    team = authz.managed_team(principal)
    found = await records.get(
        "lead", lead_id, clients.routing.GetLeadRouting, routing_pb2.GetLeadRoutingRequest(lead_id=lead_id)
    )
    assignment = found.lead.assignment
    unteamed = not assignment.team_id and not assignment.rep_id
    if not team or not (assignment.team_id == team or unteamed):
        raise records.not_found("lead", lead_id)
    target = await read(clients.routing.ListReps, routing_pb2.ListRepsRequest(rep_id=rep_id, team_id=team))
    if not target.reps:
        raise HTTPException(422, f"rep_id {rep_id!r} is not a rep of your team.")


@router.post("/leads/{lead_id}/assign", tags=["routing"], operation_id="assignLead")
async def assign_lead(lead_id: ResourceId, body: AssignLeadIn, clients: Clients, principal: Caller) -> RoutedLead:
    """Hand a lead to a rep (a manager: a lead of their team or one no rule matched, to a rep of
    their team). Publishes LeadAssigned and restarts the SLA clock."""
    await _assignable(clients, principal, lead_id, body.rep_id)
    reply = await clients.routing.AssignLead(routing_pb2.AssignLeadRequest(lead_id=lead_id, rep_id=body.rep_id))
    return to_model(RoutedLead, reply.lead)


@router.get("/leads/{lead_id}/score", tags=["leads"], operation_id="getLeadScore")
async def get_lead_score(lead_id: ResourceId, clients: Clients, principal: Caller) -> LeadScore:
    """The probability the lead converts, and why: each of its fields' factor on the odds, largest
    first, from a model of the decided leads (retrained every 10 minutes) with its time-split
    holdout AUC. status too_little_data, without a probability, below 20 won or 20 lost leads."""
    lead = await records.lead(clients, principal, lead_id)
    request = reporting_pb2.ScoreLeadRequest(
        lead_id=lead.id, source=lead.source, campaign_id=lead.campaign_id, product_line=lead.product_line
    )
    reply = await read(clients.reporting.ScoreLead, request)
    scored = reply.status == "scored"
    return LeadScore(
        lead_id=reply.lead_id,
        status="scored" if scored else "too_little_data",
        probability=reply.probability if scored else None,
        reasons=[LeadScoreReason(field=r.field, value=r.value, factor=r.factor) for r in reply.reasons],
        model=LeadScoringModel(
            train_time=protoconv.from_timestamp(reply.model.train_time, reply.model.HasField("train_time")),
            won=reply.model.won,
            lost=reply.model.lost,
            needed_per_outcome=reply.model.needed_per_outcome,
            holdout_auc=reply.model.holdout_auc if reply.model.has_holdout_auc else None,
            holdout_leads=reply.model.holdout_leads,
            kind=reply.model.kind if reply.model.kind in ("naive_bayes", "logistic_regression") else "",
            naive_bayes_auc=reply.model.naive_bayes_auc if reply.model.HasField("naive_bayes_auc") else None,
            logistic_regression_auc=(
                reply.model.logistic_regression_auc if reply.model.HasField("logistic_regression_auc") else None
            ),
        ),
    )


@router.get("/leads/{lead_id}/routing", tags=["routing"], operation_id="getLeadRouting")
async def get_lead_routing(lead_id: ResourceId, clients: Clients, principal: Caller) -> RoutedLead:
    """A lead with why it went where it went (rule, strategy, candidates and why each was skipped),
    its SLA deadline, breach, reassignments and escalation."""
    await records.lead(clients, principal, lead_id)
    reply = await read(clients.routing.GetLeadRouting, routing_pb2.GetLeadRoutingRequest(lead_id=lead_id))
    return to_model(RoutedLead, reply.lead)
