"""LeadsService: proto ↔ application functions. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import grpc

from crm.leads.v1 import leads_pb2, leads_pb2_grpc
from crm_kit import caller
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_leads import campaigns, capture, commands, domain

_LEAD_STATUS = {
    domain.LeadStatus.NEW.value: leads_pb2.LEAD_STATUS_NEW,
    domain.LeadStatus.CONVERTED.value: leads_pb2.LEAD_STATUS_CONVERTED,
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
        campaign_id=r.campaign_id or "",
        city=r.city,
        region=r.region,
        first_response_due_time=to_timestamp(r.first_response_due_at),
        first_response_time=to_timestamp(r.first_response_at),
        sla_breached=r.sla_breached_at is not None,
        merged_into_lead_id=r.merged_into_id or "",
        missing_fields=list(r.missing_fields),
        touch_count=r.touch_count,
        escalated_to=r.escalated_to or "",
        sla_reassign_count=r.reassign_count,
        routing_explanation=_routing_explanation(r.routing_explanation or {}),
        sla_breach_time=to_timestamp(r.sla_breached_at),
    )


def _replayed(found: commands.LeadView) -> capture.CaptureResult:
    """The answer to a repeated request_id: the first capture's lead (and whether it was a touch)."""
    return capture.CaptureResult(
        lead=found, duplicate=bool(found.touch_matched_on), matched_on=found.touch_matched_on, replayed=True
    )


def _request_scope(key: commands.WebFormKeyUse | None) -> str:
    """Whose request ids a capture's is among: the web form key's, else the calling actor's (the
    gateway's verified subject; calls that carry none share the scope of the unknown actor)."""
    if key is not None:
        return domain.web_form_request_scope(key.id)
    who = caller.current()
    return domain.actor_request_scope((who.actor if who else "") or caller.UNKNOWN_ACTOR)


def _routing_explanation(explanation: dict[str, Any]) -> leads_pb2.RoutingExplanation:
    """The structured why of an assignment (stored as JSON by crm_leads.routing)."""
    return leads_pb2.RoutingExplanation(
        outcome=str(explanation.get("outcome", "")),
        rules=[
            leads_pb2.RuleConsidered(
                rule_id=str(t.get("rule_id", "")),
                strategy=str(t.get("strategy", "")),
                team_id=str(t.get("team_id", "")),
                turn=int(t.get("turn", 0)),
                picked_rep_id=str(t.get("picked_rep_id", "")),
                candidates=[
                    leads_pb2.CandidateConsidered(
                        rep_id=str(c.get("rep_id", "")),
                        open_leads=int(c.get("open_leads", 0)),
                        skip_reason=str(c.get("skipped", "")),
                    )
                    for c in t.get("candidates", [])
                ],
            )
            for t in [*explanation.get("rules", []), *explanation.get("reassignments", [])]
        ],
    )


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
    )


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


class LeadsServicer(leads_pb2_grpc.LeadsServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def CaptureLead(
        self, request: leads_pb2.CaptureLeadRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.CaptureLeadResponse:
        # A web form's key is checked before anything else in the request (AIP-211): a caller
        # without a valid key learns nothing from validation errors.
        key: commands.WebFormKeyUse | None = None
        if request.web_form_key:
            async with self.db.unit_of_work() as uow:
                key = await commands.verify_web_form_key(uow, request.web_form_key)
            domain.check_web_form_capture(source=request.source, campaign=request.campaign)
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
        key_id = key.id if key else ""
        if len(request.request_id) > 200:
            raise InvalidArgument("request_id too long", field_violations=[("request_id", "at most 200 characters")])
        scope = _request_scope(key)
        # A web form reaches no lead: a public visitor never changes an existing one.
        reach = (
            domain.LeadReach(
                all_leads=request.caller_reach.all_leads,
                team_id=request.caller_reach.team_id,
                rep_id=request.caller_reach.rep_id,
            )
            if key is None
            else domain.LeadReach()
        )
        try:
            # One transaction: a repeated request_id answers with the first result; else capture.
            async with self.db.unit_of_work() as uow:
                existing = (
                    await commands.find_by_request_id(uow, scope, request.request_id) if request.request_id else None
                )
                if existing is not None:
                    result = _replayed(existing)
                else:
                    result = await capture.capture_in(
                        uow,
                        new,
                        request_scope=scope,
                        request_id=request.request_id,
                        web_form_key_id=key_id,
                        reach=reach,
                    )
        except commands.RequestIdRace:
            async with self.db.unit_of_work() as uow:
                found = await commands.find_by_request_id(uow, scope, request.request_id)
                assert found is not None
                result = _replayed(found)
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
            conversion = await commands.convert_lead(uow, request.lead_id, request.title)
        return leads_pb2.ConvertLeadResponse(conversion=conversion_to_proto(conversion))

    async def ListSources(
        self, request: leads_pb2.ListSourcesRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.ListSourcesResponse:
        async with self.db.unit_of_work() as uow:
            rows = await campaigns.list_sources(uow)
        return leads_pb2.ListSourcesResponse(sources=[campaigns.source_to_proto(r) for r in rows])

    async def CreateWebFormKey(
        self, request: leads_pb2.CreateWebFormKeyRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.CreateWebFormKeyResponse:
        new = domain.validate_new_web_form_key(
            display_name=request.display_name, source=request.source, campaign=request.campaign
        )
        async with self.db.unit_of_work() as uow:
            # The key's source and campaign must be in the catalogue; the key keeps the campaign's
            # id, so renaming the campaign never breaks a published form.
            campaign = await campaigns.resolve_campaign(uow, new.source, new.campaign)
            new = dataclasses.replace(new, campaign=campaign.id)
            row, secret = await commands.create_web_form_key(uow, new)
        return leads_pb2.CreateWebFormKeyResponse(web_form_key=web_form_key_to_proto(row), secret=secret)

    async def ListWebFormKeys(
        self, request: leads_pb2.ListWebFormKeysRequest, context: grpc.aio.ServicerContext
    ) -> leads_pb2.ListWebFormKeysResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await commands.list_web_form_keys(
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
            key = await commands.verify_web_form_key(uow, request.web_form_key)
        return leads_pb2.VerifyWebFormKeyResponse(web_form_key_id=key.id)
