"""Capturing one lead, in the caller's unit of work: campaign, duplicate check, routing, insert.

Every way a lead comes in (the API, a web form, a CSV import row) goes through capture_in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from crm_kit.db import UnitOfWork
from crm_leads import campaigns, commands, domain, duplicates, names, routing


@dataclass(frozen=True)
class CaptureResult:
    lead: commands.LeadView
    duplicate: bool = False
    matched_on: str = ""
    # The answer to a repeated request_id (the lead as it is now).
    replayed: bool = False


async def capture_in(
    uow: UnitOfWork,
    new: domain.NewLead,
    *,
    request_scope: str,
    reach: domain.LeadReach,
    request_id: str = "",
    web_form_key_id: str = "",
) -> CaptureResult:
    """Capture new in uow; raises commands.RequestIdRace when a concurrent request with the same
    request_id in the same request_scope (crm_leads.domain) won. A duplicate fills the matched
    lead's empty fields only when that lead is within reach (duplicates.attach_touch)."""
    if web_form_key_id:
        await commands.require_active_web_form_key(uow, web_form_key_id)
    campaign = await campaigns.resolve_campaign(uow, new.source, new.campaign)
    match = await duplicates.find_duplicate(uow, new)
    if (
        match is not None
        and request_id
        and await commands.find_by_request_id(uow, request_scope, request_id) is not None
    ):
        # A concurrent request with this request_id committed while this one waited for the
        # person's lock (find_duplicate): its answer is the answer, not a touch of its own lead.
        # (Without a match the lead INSERT's unique request_id settles the race.)
        raise commands.RequestIdRace(request_id)
    if match is not None:
        # The same person again: a touch of their lead, never a second lead.
        try:
            lead_id = await duplicates.attach_touch(
                uow,
                match,
                new,
                campaign=campaign,
                request_scope=request_scope,
                request_id=request_id,
                web_form_key_id=web_form_key_id,
                reach=reach,
                now=datetime.now(UTC),
            )
        except duplicates.TouchRequestIdRace as exc:
            raise commands.RequestIdRace(request_id) from exc
        return CaptureResult(lead=await commands.get_lead(uow, lead_id), duplicate=True, matched_on=match.matched_on)
    now = datetime.now(UTC)
    keys = names.name_keys(new.full_name)
    assignment = await routing.assign(uow, new, now, campaign)
    view = await commands.insert_lead(
        uow,
        new,
        campaign=campaign,
        request_scope=request_scope,
        request_id=request_id,
        assignment=assignment,
        web_form_key_id=web_form_key_id,
        name_keys=keys,
        missing_fields=duplicates.missing_fields(new),
    )
    await duplicates.record_name_matches(uow, view.row.id, keys, city=new.city)
    return CaptureResult(lead=view)
