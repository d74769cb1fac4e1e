"""Event consumers of sales: a converted lead opens its deal; a merge in leads moves a deal to the
surviving lead."""

from __future__ import annotations

import logging

from crm.leads.v1 import events_pb2 as leads_events
from crm_kit.db import UnitOfWork
from crm_kit.errors import InvalidArgument
from crm_kit.events import Envelope, PoisonMessage, RetryLater
from crm_sales import commands, domain

log = logging.getLogger(__name__)


class DealNotYetOpened(RetryLater):
    """A merge moved a deal whose LeadConverted has not reached sales yet."""


async def on_lead_converted(uow: UnitOfWork, envelope: Envelope[leads_events.LeadConverted]) -> None:
    """Open the deal of a converted lead, unless the gateway's OpenDeal call already did (both
    paths run the same idempotent command: the event is the guarantee, the call gives the caller
    its deal at once)."""
    c = envelope.message
    try:
        await commands.open_deal(
            uow,
            domain.NewDeal(
                deal_id=c.deal_id,
                lead_id=c.lead_id,
                title=c.title,
                owner_rep_id=c.owner_rep_id,
                owner_team_id=c.owner_team_id,
                source=c.source,
                campaign=c.campaign,
            ),
            actor_method="sales.LeadConverted",
        )
    except InvalidArgument as exc:
        raise PoisonMessage(f"lead conversion {c.lead_id}: {exc}") from exc


async def on_leads_merged(uow: UnitOfWork, envelope: Envelope[leads_events.LeadsMerged]) -> None:
    merged = envelope.message
    if not merged.moved_deal_id:
        return
    if not await commands.move_deal_to_lead(uow, merged.moved_deal_id, merged.survivor_lead_id):
        raise DealNotYetOpened(f"deal {merged.moved_deal_id} is not open here yet")
    log.info("deal moved to the surviving lead", extra={"deal_id": merged.moved_deal_id, "event_id": envelope.id})
