"""/campaigns: campaigns under a source with their budget and cost (admin and marketing write;
managers read)."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import HTTPException, Query

from crm.leads.v1 import campaigns_pb2
from crm_gateway import records
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, PageSize, PageToken, ResourceId, api_router
from crm_gateway.features.campaigns.schemas import Campaign, CampaignList, CreateCampaignIn, UpdateCampaignIn
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.post("/campaigns", status_code=201, tags=["campaigns"], operation_id="createCampaign")
async def create_campaign(body: CreateCampaignIn, clients: Clients, principal: Caller) -> Campaign:
    """A campaign under a source with its budget and cost (integer minor units); its name is unique
    per source (409 otherwise)."""
    reply = await clients.campaigns.CreateCampaign(body.to_proto())
    return to_model(Campaign, reply.campaign)


@router.get("/campaigns", tags=["campaigns"], operation_id="listCampaigns")
async def list_campaigns(
    clients: Clients,
    principal: Caller,
    source: Annotated[str, Query(max_length=50)] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> CampaignList:
    """Campaigns newest first, optionally of one source."""
    reply = await read(
        clients.campaigns.ListCampaigns,
        campaigns_pb2.ListCampaignsRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, source=source
        ),
    )
    return to_model(CampaignList, reply)


@router.get("/campaigns/{campaign_id}", tags=["campaigns"], operation_id="getCampaign")
async def get_campaign(campaign_id: ResourceId, clients: Clients, principal: Caller) -> Campaign:
    reply = await records.get(
        "campaign",
        campaign_id,
        clients.campaigns.GetCampaign,
        campaigns_pb2.GetCampaignRequest(campaign_id=campaign_id),
    )
    return to_model(Campaign, reply.campaign)


@router.patch("/campaigns/{campaign_id}", tags=["campaigns"], operation_id="updateCampaign")
async def update_campaign(
    campaign_id: ResourceId, body: UpdateCampaignIn, clients: Clients, principal: Caller
) -> Campaign:
    """Change the fields the body names (name, dates, budget, actual cost); the rest stay."""
    if not body.model_fields_set:
        raise HTTPException(422, "Name at least one field to change.")
    try:
        reply = await clients.campaigns.UpdateCampaign(body.to_proto(campaign_id))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise records.not_found("campaign", campaign_id) from exc
        raise
    return to_model(Campaign, reply.campaign)
