"""LeadsService's lead RPCs: proto ↔ leads commands and queries. Errors are mapped by the chassis
interceptor. Its web-to-lead key RPCs are crm_leads.web_forms.grpc_api's; main composes the two."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc

from crm.leads.v1 import leads_pb2, leads_pb2_grpc
from crm_kit import caller
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_leads.campaigns import queries as campaign_queries
from crm_leads.leads import commands, domain, queries
from crm_leads.leads.lead_proto import lead_to_proto, source_to_proto
from crm_leads.web_forms import domain as web_form_domain
from crm_leads.web_forms import queries as web_form_queries


def conversion_to_proto(row: Any) -> leads_pb2.LeadConversion:
    return leads_pb2.LeadConversion(
        lead_id=row.lead_id,
        deal_id=row.deal_id,
        title=row.title,
        owner_rep_id=row.owner_rep_id or "",
        owner_team_id=row.owner_team_id or "",
        source=row.source,
        campaign=row.campaign,
        convert_time=to_timestamp(row.converted_at),
        legacy=row.legacy,
        lead_since=to_timestamp(row.lead_since),
        pipeline_id=row.pipeline_id,
    )


def _request_scope(key: web_form_queries.WebFormKeyUse | None) -> str:
    """Whose request ids a capture's is among: the web form key's, else the calling actor's (the
    gateway's verified subject; calls that carry none share the scope of the unknown actor)."""
    if key is not None:
        return domain.web_form_request_scope(key.id)
    who = caller.current()
    return domain.actor_request_scope((who.actor if who else "") or caller.UNKNOWN_ACTOR)


def _new_lead(request: leads_pb2.CaptureLeadRequest, key: web_form_queries.WebFormKeyUse | None) -> domain.NewLead:
    """The lead a capture asks for; a web form's source and campaign are its key's."""
    new = domain.validate_new_lead(
        full_name=request.full_name,
        phone_number=request.phone_number,
        email=request.email,
        source=key.source if key else request.source,
        campaign=key.campaign if key else request.campaign,
        locale=request.locale,
        product_line=request.product_line,
        city=request.city,
        region=request.region,
    )
    if len(request.request_id) > 200:
        raise InvalidArgument("request_id too long", field_violations=[("request_id", "at most 200 characters")])
    return new


def _reach(request: leads_pb2.CaptureLeadRequest, key: web_form_queries.WebFormKeyUse | None) -> domain.LeadReach:
    # A web form reaches no lead: a public visitor never changes an existing one.
    if key is not None:
        return domain.LeadReach()
    return domain.LeadReach(
        all_leads=request.caller_reach.all_leads,
        team_id=request.caller_reach.team_id,
        rep_id=request.caller_reach.rep_id,
    )


class LeadsServicer(leads_pb2_grpc.LeadsServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _web_form_key(self, request: leads_pb2.CaptureLeadRequest) -> web_form_queries.WebFormKeyUse | None:
        # A web form's key is checked before anything else in the request (AIP-211): a caller
        # without a valid key learns nothing from validation errors.
        if not request.web_form_key:
            return None
        async with self.db.unit_of_work() as uow:
            key = await web_form_queries.verify_web_form_key(uow, request.web_form_key)
        web_form_domain.check_web_form_capture(source=request.source, campaign=request.campaign)
        return key

    async def CaptureLead(
        self, request: leads_pb2.CaptureLeadRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.CaptureLeadResponse:
        key = await self._web_form_key(request)
        new = _new_lead(request, key)
        scope = _request_scope(key)
        try:
            # One transaction: a repeated request_id answers with the first result; else capture.
            async with self.db.unit_of_work() as uow:
                result = await commands.capture_in(
                    uow,
                    new,
                    request_scope=scope,
                    request_id=request.request_id,
                    web_form_key_id=key.id if key else "",
                    reach=_reach(request, key),
                    replay=True,
                )
        except commands.RequestIdRace:
            async with self.db.unit_of_work() as uow:
                found = await queries.find_by_request_id(uow, scope, request.request_id)
                assert found is not None
                result = commands.replayed(found)
        return leads_pb2.CaptureLeadResponse(
            lead=lead_to_proto(result.lead),
            duplicate=result.duplicate,
            matched_on=result.matched_on,
            replayed=result.replayed,
        )

    async def GetLead(
        self, request: leads_pb2.GetLeadRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.GetLeadResponse:
        require({"lead_id": request.lead_id})
        async with self.db.unit_of_work() as uow:
            return leads_pb2.GetLeadResponse(lead=lead_to_proto(await queries.get_lead(uow, request.lead_id)))

    async def ListLeads(
        self, request: leads_pb2.ListLeadsRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.ListLeadsResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            views, next_key = await queries.list_leads(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                source=request.source,
                rep_id=request.rep_id,
                team_id=request.team_id,
                campaign_id=request.campaign_id,
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
            converted = await commands.convert_lead(uow, request.lead_id, request.title, request.pipeline_id.strip())
        return leads_pb2.ConvertLeadResponse(conversion=conversion_to_proto(converted.row), created=converted.created)

    async def ListSources(
        self, request: leads_pb2.ListSourcesRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.ListSourcesResponse:
        async with self.db.unit_of_work() as uow:
            rows = await campaign_queries.list_sources(uow)
        return leads_pb2.ListSourcesResponse(sources=[source_to_proto(r) for r in rows])
