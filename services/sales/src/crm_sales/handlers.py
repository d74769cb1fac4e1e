"""Event consumers of sales: a converted lead opens its deal; a merge in leads moves a deal to the
surviving lead."""

from __future__ import annotations

import logging
from dataclasses import replace

from crm.leads.v1 import events_pb2 as leads_events
from crm_kit import caller
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from crm_kit.events import Envelope, PoisonMessage, RetryLater
from crm_kit.protoconv import from_timestamp
from crm_sales import commands, domain

log = logging.getLogger(__name__)


class MergeNotYetApplicable(RetryLater):
    """A merge moved a deal whose LeadConverted, or an earlier merge of it, has not reached sales."""


async def on_lead_converted(uow: UnitOfWork, envelope: Envelope[leads_events.LeadConverted]) -> None:
    """Open the deal of a converted lead, unless the gateway's OpenDeal call already did (both
    paths run the same idempotent command: the event is the guarantee, the call gives the caller
    its deal at once). Acts as the person who converted, so the audit is the same either way."""
    c = envelope.message
    new = domain.NewDeal(
        deal_id=c.deal_id,
        lead_id=c.lead_id,
        title=c.title,
        owner_rep_id=c.owner_rep_id,
        owner_team_id=c.owner_team_id,
        source=c.source,
        campaign=c.campaign,
        lead_since=from_timestamp(c.convert_time),
        pipeline_id=c.pipeline_id,
    )
    try:
        if c.actor:
            with caller.acting_as(c.actor, c.request_id):
                await _open_converted(uow, new)
        else:
            await _open_converted(uow, new)
    except InvalidArgument as exc:
        raise PoisonMessage(f"lead conversion {c.lead_id}: {exc}") from exc


async def _open_converted(uow: UnitOfWork, new: domain.NewDeal) -> None:
    """The gateway checks the pipeline is active before leads records a conversion naming it; one
    deactivated in the milliseconds since (or named by a caller that skipped the gateway) loses no
    deal: it opens in the default pipeline (audited with that pipeline), where a manager moves it."""
    try:
        await commands.open_deal(uow, new)
    except (FailedPrecondition, NotFound) as exc:
        unusable = isinstance(exc, NotFound) or exc.reason == "PIPELINE_INACTIVE"
        if not (unusable and new.pipeline_id):
            raise
        log.warning(
            "deal %s: pipeline %s is unusable (%s); opening it in the default", new.deal_id, new.pipeline_id, exc
        )
        await commands.open_deal(uow, replace(new, pipeline_id=""))


async def on_leads_merged(uow: UnitOfWork, envelope: Envelope[leads_events.LeadsMerged]) -> None:
    merged = envelope.message
    if not merged.moved_deal_id:
        return
    order = await commands.move_deal_to_lead(
        uow,
        merged.moved_deal_id,
        merged_lead_id=merged.merged_lead_id,
        survivor_lead_id=merged.survivor_lead_id,
        merged_at=from_timestamp(merged.merge_time) or envelope.time,
    )
    if order is domain.MergeOrder.WAIT:
        raise MergeNotYetApplicable(f"deal {merged.moved_deal_id} is not on lead {merged.merged_lead_id} here yet")
