"""DealsService and PipelinesService: validation and proto mapping; the work is in
commands/queries. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc

from crm.common.v1 import types_pb2
from crm.sales.v1 import deals_pb2, deals_pb2_grpc, pipelines_pb2, pipelines_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import (
    encode_page_token,
    from_date,
    from_timestamp,
    page_position,
    page_size,
    to_date,
    to_timestamp,
)
from crm_sales import commands, domain, pipelines, queries

_DEAL_STATUS = {
    domain.DealStatus.OPEN.value: deals_pb2.DEAL_STATUS_OPEN,
    domain.DealStatus.WON.value: deals_pb2.DEAL_STATUS_WON,
    domain.DealStatus.LOST.value: deals_pb2.DEAL_STATUS_LOST,
}
_OUTCOME_TO_PROTO = {
    domain.StageOutcome.OPEN: pipelines_pb2.STAGE_OUTCOME_OPEN,
    domain.StageOutcome.WON: pipelines_pb2.STAGE_OUTCOME_WON,
    domain.StageOutcome.LOST: pipelines_pb2.STAGE_OUTCOME_LOST,
}
_OUTCOME_FROM_PROTO = {v: k for k, v in _OUTCOME_TO_PROTO.items()}
_REQUEST_ID_MAX = 200


def _money(minor: int | None, currency: str | None) -> types_pb2.Money | None:
    return types_pb2.Money(amount_minor=minor, currency_code=currency or "") if minor is not None else None


def deal_to_proto(view: queries.DealView) -> deals_pb2.Deal:
    r = view.row
    return deals_pb2.Deal(
        id=r.id,
        lead_id=r.lead_id,
        title=r.title,
        owner_rep_id=r.owner_rep_id or "",
        status=_DEAL_STATUS[r.status],
        items=[
            types_pb2.LineItem(
                sku=i.sku,
                description=i.description,
                quantity=i.quantity,
                unit_price=types_pb2.Money(amount_minor=i.unit_price_minor, currency_code=i.currency_code),
            )
            for i in view.items
        ],
        total=types_pb2.Money(amount_minor=r.total_minor, currency_code=r.currency_code),
        create_time=to_timestamp(r.created_at),
        close_time=to_timestamp(r.closed_at),
        lost_reason=r.lost_reason,
        owner_team_id=r.owner_team_id or "",
        pipeline_id=r.pipeline_id,
        stage_id=r.stage_id,
        stage_enter_time=to_timestamp(r.stage_entered_at),
        expected_close_date=to_date(r.expected_close_date),
        amount=_money(r.amount_minor, r.amount_currency),
        probability=r.probability,
        etag=domain.etag(r.version),
        lost_reason_code=r.lost_reason_code or "",
    )


def _items(request: deals_pb2.CloseDealRequest) -> list[domain.Item]:
    return [
        domain.Item(
            sku=i.sku,
            description=i.description,
            quantity=i.quantity,
            unit_price_minor=i.unit_price.amount_minor,
            currency_code=i.unit_price.currency_code,
        )
        for i in request.items
    ]


def _requested_fields(deal: deals_pb2.Deal) -> domain.DealFields:
    """The new values an UpdateDeal carries (an unset date or amount clears it)."""
    has_date = deal.HasField("expected_close_date")
    has_amount = deal.HasField("amount")
    return domain.DealFields(
        title=deal.title,
        expected_close_date=from_date(deal.expected_close_date, "deal.expected_close_date") if has_date else None,
        amount_minor=deal.amount.amount_minor if has_amount else None,
        amount_currency=deal.amount.currency_code if has_amount else None,
    )


def _history_entry(row: Any) -> deals_pb2.DealStageHistoryEntry:
    return deals_pb2.DealStageHistoryEntry(
        from_stage_id=row.from_stage_id or "",
        to_stage_id=row.to_stage_id,
        actor=row.actor,
        move_time=to_timestamp(row.moved_at),
        seconds_in_previous_stage=row.seconds_in_previous,
    )


class DealsServicer(deals_pb2_grpc.DealsServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def OpenDeal(
        self, request: deals_pb2.OpenDealRequest, context: grpc.aio.ServicerContext
    ) -> deals_pb2.OpenDealResponse:
        new = domain.NewDeal(
            deal_id=request.deal_id,
            lead_id=request.lead_id,
            title=request.title,
            owner_rep_id=request.owner_rep_id,
            owner_team_id=request.owner_team_id,
            source=request.source,
            campaign=request.campaign,
            lead_since=from_timestamp(request.lead_since),
            pipeline_id=request.pipeline_id,
        )
        async with self.db.unit_of_work() as uow:
            deal = await commands.open_deal(uow, new)
        return deals_pb2.OpenDealResponse(deal=deal_to_proto(deal))

    async def GetDeal(
        self, request: deals_pb2.GetDealRequest, context: grpc.aio.ServicerContext
    ) -> deals_pb2.GetDealResponse:
        require({"deal_id": request.deal_id})
        async with self.db.unit_of_work() as uow:
            return deals_pb2.GetDealResponse(deal=deal_to_proto(await queries.get_deal(uow, request.deal_id)))

    async def CloseDeal(
        self, request: deals_pb2.CloseDealRequest, context: grpc.aio.ServicerContext
    ) -> deals_pb2.CloseDealResponse:
        require({"deal_id": request.deal_id})
        if request.outcome == deals_pb2.DEAL_OUTCOME_UNSPECIFIED:
            raise InvalidArgument("outcome is required", field_violations=[("outcome", "must be won or lost")])
        async with self.db.unit_of_work() as uow:
            deal = await commands.close_deal(
                uow,
                request.deal_id,
                won=request.outcome == deals_pb2.DEAL_OUTCOME_WON,
                items=_items(request),
                lost_reason=request.lost_reason,
                lost_reason_code=request.lost_reason_code,
                etag=request.etag,
            )
        return deals_pb2.CloseDealResponse(deal=deal_to_proto(deal))

    async def MoveDealStage(
        self, request: deals_pb2.MoveDealStageRequest, context: grpc.aio.ServicerContext
    ) -> deals_pb2.MoveDealStageResponse:
        require({"deal_id": request.deal_id, "stage_id": request.stage_id})
        async with self.db.unit_of_work() as uow:
            deal = await commands.move_deal_stage(uow, request.deal_id, request.stage_id, etag=request.etag)
        return deals_pb2.MoveDealStageResponse(deal=deal_to_proto(deal))

    async def UpdateDeal(
        self, request: deals_pb2.UpdateDealRequest, context: grpc.aio.ServicerContext
    ) -> deals_pb2.UpdateDealResponse:
        require({"deal.id": request.deal.id})
        requested = _requested_fields(request.deal)
        mask = list(request.update_mask.paths)
        async with self.db.unit_of_work() as uow:
            deal = await commands.update_deal(uow, request.deal.id, requested, mask, etag=request.etag)
        return deals_pb2.UpdateDealResponse(deal=deal_to_proto(deal))

    async def ListDealStageHistory(
        self, request: deals_pb2.ListDealStageHistoryRequest, context: grpc.aio.ServicerContext
    ) -> deals_pb2.ListDealStageHistoryResponse:
        require({"deal_id": request.deal_id})
        async with self.db.unit_of_work() as uow:
            rows = await queries.stage_history(uow, request.deal_id)
        return deals_pb2.ListDealStageHistoryResponse(entries=[_history_entry(r) for r in rows])


def pipeline_to_proto(view: queries.PipelineView) -> pipelines_pb2.Pipeline:
    r = view.row
    return pipelines_pb2.Pipeline(
        id=r.id,
        name=r.name,
        product_line=r.product_line,
        active=r.active,
        stages=[
            pipelines_pb2.Stage(
                id=s.id,
                name=s.name,
                probability=s.probability,
                required_fields=list(s.required_fields),
                outcome=_OUTCOME_TO_PROTO[domain.StageOutcome(s.outcome)],
            )
            for s in view.stages
        ],
        etag=domain.etag(r.version),
        create_time=to_timestamp(r.created_at),
        update_time=to_timestamp(r.updated_at),
    )


def _draft(pipeline: pipelines_pb2.Pipeline) -> pipelines.PipelineDraft:
    return pipelines.PipelineDraft(
        name=pipeline.name,
        product_line=pipeline.product_line,
        active=pipeline.active,
        stages=tuple(
            pipelines.StageDraft(
                id=s.id,
                name=s.name,
                probability=s.probability,
                required_fields=tuple(s.required_fields),
                outcome=_OUTCOME_FROM_PROTO.get(s.outcome),
            )
            for s in pipeline.stages
        ),
    )


class PipelinesServicer(pipelines_pb2_grpc.PipelinesServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def CreatePipeline(
        self, request: pipelines_pb2.CreatePipelineRequest, context: grpc.aio.ServicerContext
    ) -> pipelines_pb2.CreatePipelineResponse:
        if len(request.request_id) > _REQUEST_ID_MAX:
            raise InvalidArgument(
                "request_id is too long", field_violations=[("request_id", f"at most {_REQUEST_ID_MAX} characters")]
            )
        async with self.db.unit_of_work() as uow:
            view = await commands.create_pipeline(uow, _draft(request.pipeline), request_id=request.request_id)
        return pipelines_pb2.CreatePipelineResponse(pipeline=pipeline_to_proto(view))

    async def GetPipeline(
        self, request: pipelines_pb2.GetPipelineRequest, context: grpc.aio.ServicerContext
    ) -> pipelines_pb2.GetPipelineResponse:
        require({"pipeline_id": request.pipeline_id})
        async with self.db.unit_of_work() as uow:
            view = await queries.get_pipeline(uow, request.pipeline_id)
        return pipelines_pb2.GetPipelineResponse(pipeline=pipeline_to_proto(view))

    async def ListPipelines(
        self, request: pipelines_pb2.ListPipelinesRequest, context: grpc.aio.ServicerContext
    ) -> pipelines_pb2.ListPipelinesResponse:
        after = page_position(request.page_token, datetime.fromisoformat, str)
        async with self.db.unit_of_work() as uow:
            views, position = await queries.list_pipelines(
                uow, limit=page_size(request.page_size), after=after, show_inactive=request.show_inactive
            )
        return pipelines_pb2.ListPipelinesResponse(
            pipelines=[pipeline_to_proto(v) for v in views],
            next_page_token=encode_page_token(*position) if position else "",
        )

    async def UpdatePipeline(
        self, request: pipelines_pb2.UpdatePipelineRequest, context: grpc.aio.ServicerContext
    ) -> pipelines_pb2.UpdatePipelineResponse:
        require({"pipeline.id": request.pipeline.id})
        draft = _draft(request.pipeline)
        mask = list(request.update_mask.paths)
        async with self.db.unit_of_work() as uow:
            view = await commands.update_pipeline(uow, request.pipeline.id, draft, mask, etag=request.etag)
        return pipelines_pb2.UpdatePipelineResponse(pipeline=pipeline_to_proto(view))

    async def ListLostReasons(
        self, request: pipelines_pb2.ListLostReasonsRequest, context: grpc.aio.ServicerContext
    ) -> pipelines_pb2.ListLostReasonsResponse:
        async with self.db.unit_of_work() as uow:
            rows = await queries.list_lost_reasons(uow)
        return pipelines_pb2.ListLostReasonsResponse(
            lost_reasons=[pipelines_pb2.LostReason(code=r.code, names=r.names) for r in rows]
        )
