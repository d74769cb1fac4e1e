"""DealsService: validation and proto mapping; the work is in commands/queries. Errors are mapped
by the chassis interceptor."""

from __future__ import annotations

import grpc

from crm.common.v1 import types_pb2
from crm.sales.v1 import deals_pb2, deals_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import from_timestamp, to_timestamp
from crm_sales import commands, domain, queries

_DEAL_STATUS = {
    domain.DealStatus.OPEN.value: deals_pb2.DEAL_STATUS_OPEN,
    domain.DealStatus.WON.value: deals_pb2.DEAL_STATUS_WON,
    domain.DealStatus.LOST.value: deals_pb2.DEAL_STATUS_LOST,
}


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
            )
        return deals_pb2.CloseDealResponse(deal=deal_to_proto(deal))
