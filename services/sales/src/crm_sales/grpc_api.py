"""DealsService and PipelinesService: validation and proto mapping; the work is in
commands/queries. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

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
_CATEGORY_TO_PROTO = {
    pipelines.ForecastCategory.PIPELINE: pipelines_pb2.FORECAST_CATEGORY_PIPELINE,
    pipelines.ForecastCategory.BEST_CASE: pipelines_pb2.FORECAST_CATEGORY_BEST_CASE,
    pipelines.ForecastCategory.COMMIT: pipelines_pb2.FORECAST_CATEGORY_COMMIT,
    pipelines.ForecastCategory.OMITTED: pipelines_pb2.FORECAST_CATEGORY_OMITTED,
    pipelines.ForecastCategory.CLOSED: pipelines_pb2.FORECAST_CATEGORY_CLOSED,
}
_CATEGORY_FROM_PROTO = {v: k for k, v in _CATEGORY_TO_PROTO.items()}
_STATUS_FROM_PROTO = {v: domain.DealStatus(k) for k, v in _DEAL_STATUS.items()}
_GROUP_FROM_PROTO = {
    deals_pb2.FORECAST_GROUP_BY_OWNER_REP: domain.ForecastGroup.OWNER_REP,
    deals_pb2.FORECAST_GROUP_BY_OWNER_TEAM: domain.ForecastGroup.OWNER_TEAM,
    deals_pb2.FORECAST_GROUP_BY_PIPELINE: domain.ForecastGroup.PIPELINE,
    deals_pb2.FORECAST_GROUP_BY_MONTH: domain.ForecastGroup.MONTH,
}
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


def _optional_date(message: Any, name: str) -> date | None:
    return from_date(getattr(message, name), name) if message.HasField(name) else None


def _list_filter(request: deals_pb2.ListDealsRequest) -> domain.DealFilter:
    if request.status and request.status not in _STATUS_FROM_PROTO:
        raise InvalidArgument("unknown status", field_violations=[("status", "must be open, won or lost")])
    return domain.validate_filter(
        domain.DealFilter(
            pipeline_id=request.pipeline_id,
            stage_id=request.stage_id,
            status=_STATUS_FROM_PROTO.get(request.status),
            owner_rep_id=request.owner_rep_id,
            owner_team_id=request.owner_team_id,
            expected_close_from=_optional_date(request, "expected_close_from"),
            expected_close_to=_optional_date(request, "expected_close_to"),
            amount_currency=request.amount_currency_code,
            amount_min=request.amount_min_minor if request.HasField("amount_min_minor") else None,
            amount_max=request.amount_max_minor if request.HasField("amount_max_minor") else None,
            close_time_from=from_timestamp(request.close_time_from, request.HasField("close_time_from")),
            title_contains=request.title_contains,
        )
    )


def _page_token(order: domain.DealOrder, position: tuple[Any, str] | None) -> str:
    """Opaque to clients: the order it belongs to and the last row's (sort value, id)."""
    if position is None:
        return ""
    value, last = position
    return encode_page_token(order.value, value.isoformat(), last)


def _list_position(token: str, order: domain.DealOrder) -> tuple[Any, str] | None:
    """The keyset position a ListDeals token holds; a token of another order_by is INVALID_ARGUMENT."""
    position = page_position(token, str, str, str)
    if position is None:
        return None
    tag, value, last = position
    parse = date.fromisoformat if order is domain.DealOrder.EXPECTED_CLOSE else datetime.fromisoformat
    try:
        if tag != order.value:
            raise ValueError(f"the token is of order_by {tag!r}")
        return parse(value), last
    except ValueError as exc:
        raise InvalidArgument(
            "page_token is invalid", field_violations=[("page_token", f"not of this order_by: {exc}")]
        ) from exc


def _board_stage(column: queries.BoardColumn) -> deals_pb2.BoardStage:
    return deals_pb2.BoardStage(
        stage=stage_to_proto(column.stage),
        deal_count=column.deal_count,
        amounts=[
            deals_pb2.StageAmount(
                currency_code=currency, deal_count=count, amount_minor=amount, weighted_amount_minor=weighted
            )
            for currency, count, amount, weighted in column.amounts
        ],
        deals=[deal_to_proto(view) for view in column.deals],
        next_page_token=_page_token(column.order, column.next_position),
        order_by=column.order.value,
    )


def _forecast_row(row: Any) -> deals_pb2.ForecastRow:
    return deals_pb2.ForecastRow(
        group=row.group,
        currency_code=row.currency,
        open_deals=row.open_deals,
        pipeline_amount_minor=int(row.pipeline_amount),
        weighted_amount_minor=domain.weighted_minor(int(row.weighted)),
        best_case_amount_minor=int(row.best_case_amount),
        commit_amount_minor=int(row.commit_amount),
        won_deals=row.won_deals,
        closed_won_amount_minor=int(row.closed_won_amount),
    )


class DealsServicer(deals_pb2_grpc.DealsServiceServicer):
    def __init__(self, db: Database, *, time_zone: str) -> None:
        self.db = db
        # The company's calendar (SalesSettings.company_time_zone): the forecast's months and periods.
        self.zone = ZoneInfo(time_zone)

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

    async def ListDeals(
        self, request: deals_pb2.ListDealsRequest, context: grpc.aio.ServicerContext
    ) -> deals_pb2.ListDealsResponse:
        order = domain.parse_order(request.order_by)
        deal_filter = _list_filter(request)
        after = _list_position(request.page_token, order)
        async with self.db.unit_of_work() as uow:
            views, position = await queries.list_deals(
                uow, deal_filter, order, limit=page_size(request.page_size), after=after
            )
        return deals_pb2.ListDealsResponse(
            deals=[deal_to_proto(v) for v in views], next_page_token=_page_token(order, position)
        )

    async def GetPipelineBoard(
        self, request: deals_pb2.GetPipelineBoardRequest, context: grpc.aio.ServicerContext
    ) -> deals_pb2.GetPipelineBoardResponse:
        require({"pipeline_id": request.pipeline_id})
        per_stage = domain.board_deals_per_stage(request.deals_per_stage)
        requested = from_timestamp(request.close_time_from, request.HasField("close_time_from"))
        close_time_from = domain.board_close_time_from(requested, datetime.now(UTC))
        owners = domain.DealFilter(owner_rep_id=request.owner_rep_id, owner_team_id=request.owner_team_id)
        async with self.db.unit_of_work() as uow:
            columns = await queries.pipeline_board(
                uow, request.pipeline_id, owners, per_stage=per_stage, close_time_from=close_time_from
            )
        return deals_pb2.GetPipelineBoardResponse(
            stages=[_board_stage(c) for c in columns], close_time_from=to_timestamp(close_time_from)
        )

    async def GetForecast(
        self, request: deals_pb2.GetForecastRequest, context: grpc.aio.ServicerContext
    ) -> deals_pb2.GetForecastResponse:
        group = _GROUP_FROM_PROTO.get(request.group_by)
        if group is None:
            raise InvalidArgument(
                "group_by is required",
                field_violations=[("group_by", "must be owner_rep, owner_team, pipeline or month")],
            )
        start, end = _optional_date(request, "period_start"), _optional_date(request, "period_end")
        domain.validate_period(start, end)
        deal_filter = domain.validate_filter(
            domain.DealFilter(
                pipeline_id=request.pipeline_id, owner_rep_id=request.owner_rep_id, owner_team_id=request.owner_team_id
            )
        )
        async with self.db.unit_of_work() as uow:
            rows = await queries.forecast(uow, group, deal_filter, period_start=start, period_end=end, zone=self.zone)
        return deals_pb2.GetForecastResponse(rows=[_forecast_row(r) for r in rows])


def stage_to_proto(s: Any) -> pipelines_pb2.Stage:
    return pipelines_pb2.Stage(
        id=s.id,
        name=s.name,
        probability=s.probability,
        required_fields=list(s.required_fields),
        outcome=_OUTCOME_TO_PROTO[domain.StageOutcome(s.outcome)],
        forecast_category=_CATEGORY_TO_PROTO[pipelines.ForecastCategory(s.forecast_category)],
    )


def pipeline_to_proto(view: queries.PipelineView) -> pipelines_pb2.Pipeline:
    r = view.row
    return pipelines_pb2.Pipeline(
        id=r.id,
        name=r.name,
        product_line=r.product_line,
        active=r.active,
        stages=[stage_to_proto(s) for s in view.stages],
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
                forecast_category=_CATEGORY_FROM_PROTO.get(s.forecast_category),
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
