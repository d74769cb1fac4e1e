"""LeadsService: proto ↔ application functions. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import datetime

import grpc

from crm.common.v1 import types_pb2
from crm.leads.v1 import leads_pb2, leads_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_leads import commands, domain

_LEAD_STATUS = {
    domain.LeadStatus.NEW.value: leads_pb2.LEAD_STATUS_NEW,
    domain.LeadStatus.CONVERTED.value: leads_pb2.LEAD_STATUS_CONVERTED,
}
_DEAL_STATUS = {
    domain.DealStatus.OPEN.value: leads_pb2.DEAL_STATUS_OPEN,
    domain.DealStatus.WON.value: leads_pb2.DEAL_STATUS_WON,
    domain.DealStatus.LOST.value: leads_pb2.DEAL_STATUS_LOST,
}


def lead_to_proto(view: commands.LeadView) -> leads_pb2.Lead:
    r = view.row
    return leads_pb2.Lead(
        id=r.id,
        full_name=r.full_name,
        phone_number=r.phone_number,
        email=r.email,
        source=r.source,
        campaign=r.campaign,
        locale=r.locale,
        product_line=r.product_line,
        status=_LEAD_STATUS[r.status],
        assignment=leads_pb2.Assignment(
            rep_id=r.rep_id or "",
            rep_name=view.rep_name,
            team_id=r.team_id or "",
            rule_id=r.rule_id or "",
            reason=r.assign_reason,
            assign_time=to_timestamp(r.assigned_at),
        ),
        deal_id=view.deal_id,
        create_time=to_timestamp(r.created_at),
    )


def deal_to_proto(view: commands.DealView) -> leads_pb2.Deal:
    r = view.row
    return leads_pb2.Deal(
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
    )


class LeadsServicer(leads_pb2_grpc.LeadsServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def CaptureLead(
        self, request: leads_pb2.CaptureLeadRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.CaptureLeadResponse:
        new = domain.validate_new_lead(
            full_name=request.full_name,
            phone_number=request.phone_number,
            email=request.email,
            source=request.source,
            campaign=request.campaign,
            locale=request.locale,
            product_line=request.product_line,
        )
        if len(request.request_id) > 200:
            raise InvalidArgument("request_id too long", field_violations=[("request_id", "at most 200 characters")])
        if request.request_id:
            async with self.db.unit_of_work() as uow:
                existing = await commands.find_by_request_id(uow, request.request_id)
            if existing:
                return leads_pb2.CaptureLeadResponse(lead=lead_to_proto(existing))
        assignment = await commands.assign(self.db, new.source)
        try:
            async with self.db.unit_of_work() as uow:
                view = await commands.capture_lead(uow, new, request.request_id, assignment)
        except commands.RequestIdRace:
            async with self.db.unit_of_work() as uow:
                found = await commands.find_by_request_id(uow, request.request_id)
                assert found is not None
                view = found
        return leads_pb2.CaptureLeadResponse(lead=lead_to_proto(view))

    async def GetLead(
        self, request: leads_pb2.GetLeadRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.GetLeadResponse:
        require({"lead_id": request.lead_id})
        async with self.db.unit_of_work() as uow:
            return leads_pb2.GetLeadResponse(lead=lead_to_proto(await commands.get_lead(uow, request.lead_id)))

    async def ListLeads(
        self, request: leads_pb2.ListLeadsRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.ListLeadsResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            views, next_key = await commands.list_leads(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                source=request.source,
                rep_id=request.rep_id,
            )
        return leads_pb2.ListLeadsResponse(
            leads=[lead_to_proto(v) for v in views],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def ConvertLead(
        self, request: leads_pb2.ConvertLeadRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.ConvertLeadResponse:
        require({"lead_id": request.lead_id})
        async with self.db.unit_of_work() as uow:
            deal = await commands.convert_lead(uow, request.lead_id, request.title)
        return leads_pb2.ConvertLeadResponse(deal=deal_to_proto(deal))

    async def GetDeal(
        self, request: leads_pb2.GetDealRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.GetDealResponse:
        require({"deal_id": request.deal_id})
        async with self.db.unit_of_work() as uow:
            return leads_pb2.GetDealResponse(deal=deal_to_proto(await commands.get_deal(uow, request.deal_id)))

    async def CloseDeal(
        self, request: leads_pb2.CloseDealRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.CloseDealResponse:
        require({"deal_id": request.deal_id})
        if request.outcome == leads_pb2.DEAL_OUTCOME_UNSPECIFIED:
            raise InvalidArgument("outcome is required", field_violations=[("outcome", "must be won or lost")])
        items = [
            domain.Item(
                sku=i.sku,
                description=i.description,
                quantity=i.quantity,
                unit_price_minor=i.unit_price.amount_minor,
                currency_code=i.unit_price.currency_code,
            )
            for i in request.items
        ]
        async with self.db.unit_of_work() as uow:
            deal = await commands.close_deal(
                uow,
                request.deal_id,
                won=request.outcome == leads_pb2.DEAL_OUTCOME_WON,
                items=items,
                lost_reason=request.lost_reason,
            )
        return leads_pb2.CloseDealResponse(deal=deal_to_proto(deal))

    async def ListSources(
        self, request: leads_pb2.ListSourcesRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.ListSourcesResponse:
        return leads_pb2.ListSourcesResponse(
            sources=[leads_pb2.Source(code=c, display_name=n) for c, n in domain.SOURCES.items()]
        )
