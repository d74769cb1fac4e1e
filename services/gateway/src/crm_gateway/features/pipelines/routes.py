"""/pipelines: the company's sales processes, one per product line or way of selling (sales read
them; admins and managers create and change them). Served by the sales service
(crm.sales.v1.PipelinesService); docs/selling.md has the rules.

Optimistic concurrency: a pipeline's ETag is its etag; a change must send it in If-Match (428
without, 412 when the pipeline changed since), or `*` to change it whatever it is now."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Query, Response

from crm.sales.v1 import deals_pb2, pipelines_pb2
from crm_gateway import records
from crm_gateway.convert import IsoDateTime, to_model, to_timestamp, with_etag
from crm_gateway.deps import (
    Caller,
    Clients,
    FilterId,
    IdempotencyKey,
    IfMatch,
    PageSize,
    PageToken,
    ResourceId,
    api_router,
    etag_of,
)
from crm_gateway.features.pipelines.schemas import (
    CreatePipelineIn,
    Pipeline,
    PipelineBoard,
    PipelineList,
    UpdatePipelineIn,
)
from crm_gateway.platform import authz
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/pipelines", tags=["pipelines"], operation_id="listPipelines")
async def list_pipelines(
    clients: Clients,
    principal: Caller,
    show_inactive: Annotated[bool, Query(description="Include pipelines that take no new deals")] = False,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> PipelineList:
    """Pipelines oldest first, each with its ordered stages."""
    request = pipelines_pb2.ListPipelinesRequest(
        page_size=protoconv.page_size(page_size), page_token=page_token, show_inactive=show_inactive
    )
    return to_model(PipelineList, await read(clients.pipelines.ListPipelines, request))


@router.post("/pipelines", status_code=201, tags=["pipelines"], operation_id="createPipeline")
async def create_pipeline(
    body: CreatePipelineIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Pipeline:
    """A pipeline with its stages: open ones first, then one won and one lost. A repeated
    request_id (or Idempotency-Key) answers the first pipeline; a bad stage is 422 naming it."""
    reply = await clients.pipelines.CreatePipeline(body.to_proto((idempotency_key or "").strip()))
    return with_etag(Pipeline, reply.pipeline, response)


@router.get("/pipelines/{pipeline_id}", tags=["pipelines"], operation_id="getPipeline")
async def get_pipeline(pipeline_id: ResourceId, clients: Clients, principal: Caller, response: Response) -> Pipeline:
    """The pipeline; its ETag is the version to send back in If-Match."""
    reply = await records.get(
        "pipeline",
        pipeline_id,
        clients.pipelines.GetPipeline,
        pipelines_pb2.GetPipelineRequest(pipeline_id=pipeline_id),
    )
    return with_etag(Pipeline, reply.pipeline, response)


@router.patch("/pipelines/{pipeline_id}", tags=["pipelines"], operation_id="updatePipeline")
async def update_pipeline(
    pipeline_id: ResourceId,
    body: UpdatePipelineIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Pipeline:
    """Change the fields the body names (name, product line, active, the stage list). A stage
    deals are in is neither removed nor given another outcome: 409 naming it."""
    if not body.model_fields_set:
        raise HTTPException(422, "Name at least one field to change.")
    etag = etag_of(if_match, required=True)
    reply = await records.change(
        "pipeline", pipeline_id, clients.pipelines.UpdatePipeline, body.to_proto(pipeline_id, etag)
    )
    return with_etag(Pipeline, reply.pipeline, response)


@router.get("/pipelines/{pipeline_id}/board", tags=["pipelines"], operation_id="getPipelineBoard")
async def get_pipeline_board(
    pipeline_id: ResourceId,
    clients: Clients,
    principal: Caller,
    owner_rep_id: FilterId = "",
    owner_team_id: FilterId = "",
    deals_per_stage: Annotated[int, Query(ge=0, le=50, description="0 means 10")] = 0,
    close_time_from: Annotated[
        IsoDateTime | None, Query(description="Won and lost stages: closed since (ISO 8601); default 30 days ago")
    ] = None,
) -> PipelineBoard:
    """The pipeline's board in one call: each stage with its deal count, amount and weighted amount
    per currency and its first deals. Held to the caller's deals like GET /deals: an admin's all
    (or the owner filters given), a manager's team's, a rep's own."""
    owner_rep_id, owner_team_id = authz.list_scope(principal, owner_rep_id, owner_team_id, "deals")
    reply = await records.get(
        "pipeline",
        pipeline_id,
        clients.deals.GetPipelineBoard,
        deals_pb2.GetPipelineBoardRequest(
            pipeline_id=pipeline_id,
            owner_rep_id=owner_rep_id,
            owner_team_id=owner_team_id,
            deals_per_stage=deals_per_stage,
            close_time_from=to_timestamp(close_time_from),
        ),
    )
    return to_model(PipelineBoard, reply)
