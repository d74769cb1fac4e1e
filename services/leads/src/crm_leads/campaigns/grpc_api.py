"""CampaignsService: sources admins add, campaigns with their cost (proto ↔ campaigns commands and queries)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import grpc

from crm.common.v1 import types_pb2
from crm.leads.v1 import campaigns_pb2, campaigns_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, raise_all, require
from crm_kit.protoconv import encode_page_token, from_date, page_position, page_size, to_date, to_timestamp
from crm_leads.campaigns import commands, domain, queries
from crm_leads.leads.domain import normalize_source
from crm_leads.leads.lead_proto import source_to_proto


def _money(amount: int, currency: str) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount, currency_code=currency)


def campaign_to_proto(r: Any) -> campaigns_pb2.Campaign:
    return campaigns_pb2.Campaign(
        id=r.id,
        source=r.source,
        name=r.name,
        starts_on=to_date(r.starts_on),
        ends_on=to_date(r.ends_on),
        budget=_money(r.budget_minor, r.currency_code),
        actual_cost=_money(r.actual_cost_minor, r.currency_code),
        create_time=to_timestamp(r.created_at),
        update_time=to_timestamp(r.updated_at),
    )


def _date(value: types_pb2.Date, name: str) -> date | None:
    return from_date(value, name) if value.year else None


def _campaign_fields(request: campaigns_pb2.CreateCampaignRequest) -> domain.CampaignFields:
    return domain.CampaignFields(
        name=request.name,
        starts_on=_date(request.starts_on, "starts_on"),
        ends_on=_date(request.ends_on, "ends_on"),
        budget_minor=request.budget.amount_minor,
        actual_cost_minor=request.actual_cost.amount_minor,
        budget_currency=request.budget.currency_code,
        actual_cost_currency=request.actual_cost.currency_code,
    )


def _patch(request: campaigns_pb2.UpdateCampaignRequest) -> domain.CampaignPatch:
    fields = domain.mask_paths(list(request.update_mask.paths))
    c = request.campaign
    return domain.CampaignPatch(
        campaign_id=c.id,
        fields=fields,
        name=c.name,
        starts_on=_date(c.starts_on, "starts_on") if "starts_on" in fields else None,
        ends_on=_date(c.ends_on, "ends_on") if "ends_on" in fields else None,
        budget_minor=c.budget.amount_minor,
        budget_currency=c.budget.currency_code,
        actual_cost_minor=c.actual_cost.amount_minor,
        actual_cost_currency=c.actual_cost.currency_code,
    )


def _new_campaign(request: campaigns_pb2.CreateCampaignRequest) -> tuple[str, domain.ValidCampaign]:
    """The campaign's source and fields, every bad one reported at once."""
    errors: list[InvalidArgument] = []
    source = ""
    try:
        source = normalize_source(request.source) if request.source.strip() else ""
        require({"source": source})
    except InvalidArgument as exc:
        errors.append(exc)
    valid: domain.ValidCampaign | None = None
    try:
        valid = domain.validate_campaign(_campaign_fields(request))
    except InvalidArgument as exc:
        errors.append(exc)
    raise_all(errors)
    assert valid is not None
    return source, valid


class CampaignsServicer(campaigns_pb2_grpc.CampaignsServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def CreateSource(
        self, request: campaigns_pb2.CreateSourceRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.CreateSourceResponse:
        new = domain.validate_new_source(code=request.code, display_name=request.display_name)
        async with self.db.unit_of_work() as uow:
            row = await commands.create_source(uow, new)
        return campaigns_pb2.CreateSourceResponse(source=source_to_proto(row))

    async def CreateCampaign(
        self, request: campaigns_pb2.CreateCampaignRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.CreateCampaignResponse:
        source, valid = _new_campaign(request)
        async with self.db.unit_of_work() as uow:
            row = await commands.create_campaign(uow, source, valid)
        return campaigns_pb2.CreateCampaignResponse(campaign=campaign_to_proto(row))

    async def GetCampaign(
        self, request: campaigns_pb2.GetCampaignRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.GetCampaignResponse:
        require({"campaign_id": request.campaign_id})
        async with self.db.unit_of_work() as uow:
            row = await queries.get_campaign(uow, request.campaign_id)
        return campaigns_pb2.GetCampaignResponse(campaign=campaign_to_proto(row))

    async def ListCampaigns(
        self, request: campaigns_pb2.ListCampaignsRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.ListCampaignsResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_campaigns(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                source=request.source.strip().lower(),
            )
        return campaigns_pb2.ListCampaignsResponse(
            campaigns=[campaign_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def UpdateCampaign(
        self, request: campaigns_pb2.UpdateCampaignRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.UpdateCampaignResponse:
        require({"campaign.id": request.campaign.id})
        patch = _patch(request)
        async with self.db.unit_of_work() as uow:
            row = await commands.update_campaign(uow, patch)
        return campaigns_pb2.UpdateCampaignResponse(campaign=campaign_to_proto(row))
