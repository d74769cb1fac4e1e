"""The web-to-lead key RPCs of LeadsService: proto ↔ web_forms commands and queries.

The proto declares them on LeadsService (one gRPC service, one servicer object), so they are a
mixin here: main composes LeadsService's servicer from this class and crm_leads.leads.grpc_api's.
A mixin (rather than functions a servicer delegates to) keeps each RPC a method gRPC finds by name
and each feature's RPCs in its own folder, without one feature's grpc_api importing another's.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import grpc

from crm.leads.v1 import leads_pb2
from crm_kit.db import Database
from crm_kit.errors import require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_leads.campaigns import queries as campaign_queries
from crm_leads.web_forms import commands, domain, queries


def web_form_key_to_proto(r: Any) -> leads_pb2.WebFormKey:
    return leads_pb2.WebFormKey(
        id=r.id,
        display_name=r.display_name,
        source=r.source,
        campaign=r.campaign,
        secret_prefix=r.secret_prefix,
        create_time=to_timestamp(r.created_at),
        revoke_time=to_timestamp(r.revoked_at),
        create_actor=r.create_actor,
    )


class WebFormKeyRpcs:
    """CreateWebFormKey, ListWebFormKeys, RevokeWebFormKey, VerifyWebFormKey of LeadsService."""

    db: Database

    async def CreateWebFormKey(
        self, request: leads_pb2.CreateWebFormKeyRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.CreateWebFormKeyResponse:
        new = domain.validate_new_web_form_key(
            display_name=request.display_name, source=request.source, campaign=request.campaign
        )
        async with self.db.unit_of_work() as uow:
            # The key's source and campaign must be in the catalogue; the key keeps the campaign's
            # id, so renaming the campaign never breaks a published form.
            campaign = await campaign_queries.resolve_campaign(uow, new.source, new.campaign)
            new = dataclasses.replace(new, campaign=campaign.id)
            row, secret = await commands.create_web_form_key(uow, new)
        return leads_pb2.CreateWebFormKeyResponse(web_form_key=web_form_key_to_proto(row), secret=secret)

    async def ListWebFormKeys(
        self, request: leads_pb2.ListWebFormKeysRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.ListWebFormKeysResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_web_form_keys(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                include_revoked=request.include_revoked,
            )
        return leads_pb2.ListWebFormKeysResponse(
            web_form_keys=[web_form_key_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def RevokeWebFormKey(
        self, request: leads_pb2.RevokeWebFormKeyRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.RevokeWebFormKeyResponse:
        require({"web_form_key_id": request.web_form_key_id})
        async with self.db.unit_of_work() as uow:
            row = await commands.revoke_web_form_key(uow, request.web_form_key_id)
        return leads_pb2.RevokeWebFormKeyResponse(web_form_key=web_form_key_to_proto(row))

    async def VerifyWebFormKey(
        self, request: leads_pb2.VerifyWebFormKeyRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.VerifyWebFormKeyResponse:
        # The same check, and so the same refusal, as CaptureLead's: asking reveals nothing more.
        async with self.db.unit_of_work() as uow:
            key = await queries.verify_web_form_key(uow, request.web_form_key)
        return leads_pb2.VerifyWebFormKeyResponse(web_form_key_id=key.id)
