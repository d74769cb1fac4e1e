"""Duplicate detection on capture and import (one lead per person), and the review and merge of
possible duplicates; each command runs in the caller's unit of work.

- Same normalized phone number or e-mail as a live (not merged) lead: the capture becomes a touch
  of that lead (lead_touches). The lead's empty fields are filled from the capture only when the
  capturing caller may change that lead (LeadReach): anyone else's touch changes nothing on it but
  its touch count, so nobody edits (or plants an e-mail address on) a lead they cannot read.
- Same name only (any of the keys of crm_leads.duplicates.names): a new lead is created and the
  pair is recorded in possible_duplicates for a manager to merge or dismiss.

Concurrent captures of one new person are serialized by transaction-scoped advisory locks on
their phone number and e-mail, so the second waits for the first and then finds its lead.

Merge survivorship (docs/lead-acquisition.md): the survivor keeps its id, rep, team, status and
name; its empty contact and territory fields are filled from the duplicate; the earliest capture
time wins; touches are summed and moved (the duplicate's own capture becomes a "merge" touch); the
duplicate's deal moves to the survivor unless both have one (refused); activities move; the
duplicate stays as a tombstone (merged_into_id) hidden from lists.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update

from crm.leads.v1 import events_pb2
from crm_kit import caller, names
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_kit.protoconv import to_timestamp
from crm_leads.campaigns.domain import CampaignRef
from crm_leads.db import activities, lead_conversions, lead_touches, leads, possible_duplicates
from crm_leads.duplicates import domain, queries
from crm_leads.errors import lead_not_found
from crm_leads.leads import capture_statements
from crm_leads.leads import queries as lead_queries
from crm_leads.leads.domain import TOUCH_FILLABLE_FIELDS, LeadReach, LeadStatus, NewLead
from crm_leads.metrics import LEAD_TOUCHES, LEADS_MERGED, POSSIBLE_DUPLICATES


class TouchRequestIdRace(Exception):
    """Another capture with the same request_id attached its touch first."""


def _actor() -> str:
    who = caller.current()
    return (who.actor if who else "") or caller.UNKNOWN_ACTOR


# ---------------------------------------------------------------- on capture


async def _lock_contacts(uow: UnitOfWork, new: NewLead) -> None:
    # Held until commit: a concurrent capture of the same number or address waits here, then sees
    # this one's lead. Sorted, so two captures never wait on each other in opposite orders.
    # One statement for both: PostgreSQL evaluates the select list left to right.
    keys = domain.contact_lock_keys(new)
    if keys:
        calls = ", ".join(f"pg_advisory_xact_lock(hashtextextended(:k{i}, 0))" for i in range(len(keys)))
        await uow.conn.execute(text(f"SELECT {calls}"), {f"k{i}": key for i, key in enumerate(keys)})


async def find_duplicate(uow: UnitOfWork, new: NewLead) -> domain.DuplicateMatch | None:
    """The lead with the same phone number (first) or e-mail, if any: the oldest with it, or the
    lead it was merged into; locks the capture's contact points for the rest of the transaction."""
    await _lock_contacts(uow, new)
    for column, value in (("phone_number", new.phone_number), ("email", new.email)):
        if not value:
            continue
        found = (await uow.conn.execute(queries.contact_query(column, value))).first()
        if found:
            # A merged lead's contact points still belong to the person: follow it to the survivor.
            lead_id = await queries.survivor_of(uow, found.id, found.merged_into_id)
            return domain.DuplicateMatch(lead_id=lead_id, matched_on=column)
    return None


async def lock_live_lead(uow: UnitOfWork, lead_id: str) -> Any:
    """The lead's row locked; if it was merged between the lookup and the lock, its survivor's."""
    lead = (await uow.conn.execute(select(leads).where(leads.c.id == lead_id).with_for_update(key_share=True))).one()
    for _ in range(queries.MAX_MERGE_HOPS):
        if not lead.merged_into_id:
            break
        lead = (
            await uow.conn.execute(
                select(leads).where(leads.c.id == lead.merged_into_id).with_for_update(key_share=True)
            )
        ).one()
    return lead


async def attach_touch(
    uow: UnitOfWork,
    lead: Any,
    match: domain.DuplicateMatch,
    new: NewLead,
    *,
    campaign: CampaignRef,
    request_scope: str,
    request_id: str,
    web_form_key_id: str,
    reach: LeadReach,
    now: datetime,
) -> lead_queries.LeadView:
    """Record the capture as a touch of lead, the matched live lead's row as locked (FOR NO KEY
    UPDATE; lock_live_lead or the capture's person statement): touch count + 1, empty fields
    filled (survivorship) when the lead is within reach, missing_fields recomputed, audit and
    LeadTouched; returns the lead as it is now. Raises TouchRequestIdRace when the request_id was
    taken meanwhile. One statement (crm_leads.leads.capture_statements.touch)."""
    touch_id = str(uuid.uuid4())
    filled = (
        domain.fill_empty(lead, {name: getattr(new, name) for name in TOUCH_FILLABLE_FIELDS})
        if reach.covers(rep_id=lead.rep_id or "", team_id=lead.team_id or "")
        else {}
    )
    touch_count = lead.touch_count + 1
    row = (
        await uow.conn.execute(
            capture_statements.touch(frozenset(filled)),
            {
                "touch_id": touch_id,
                "lead_id": lead.id,
                "request_scope": request_scope if request_id else None,
                "request_id": request_id or None,
                "source": new.source,
                "campaign": campaign.name,
                "campaign_id": campaign.id or None,
                "web_form_key_id": web_form_key_id or None,
                "matched_on": match.matched_on,
                "touched_at": now,
                "touch_count": touch_count,
                "missing_fields": list(domain.missing_of(phone_number=filled.get("phone_number", lead.phone_number))),
                **filled,
            },
        )
    ).first()
    if row is None:
        raise TouchRequestIdRace(request_id)
    await uow.record_event(
        events_pb2.LeadTouched(
            lead_id=lead.id,
            touch_id=touch_id,
            source=new.source,
            campaign=campaign.name,
            campaign_id=campaign.id,
            matched_on=match.matched_on,
            touch_time=to_timestamp(now),
            touch_count=touch_count,
        ),
        time=now,
    )
    uow.after_commit(LEAD_TOUCHES.labels(match.matched_on).inc)
    # Field names only: the audit log never holds phone numbers or e-mail addresses.
    uow.audit(
        "leads.AttachTouch",
        "lead",
        lead.id,
        {
            "touch_id": touch_id,
            "source": new.source,
            "campaign": campaign.name,
            "matched_on": match.matched_on,
            "filled_fields": sorted(filled),
        },
    )
    return lead_queries.lead_view(row)


def name_match_pairs(
    lead_id: str, keys: names.NameKeys, candidates: Sequence[Any], *, city: str
) -> list[dict[str, Any]]:
    """The possible_duplicates pairs of a new lead with the look-alikes found for it (the rows of
    queries.name_candidates_query): those with a reason, in the order found."""
    return [
        {
            "id": str(uuid.uuid4()),
            "lead_id": lead_id,
            "other_lead_id": other.id,
            "score": domain.pair_score(reasons),
            "reasons": reasons,
            "status": domain.OPEN,
        }
        for other in candidates
        if (reasons := domain.match_reasons(keys, other, city=city))
    ]


def pairs_recorded(uow: UnitOfWork, lead_id: str, pairs: Sequence[dict[str, Any]], new_pairs: Collection[str]) -> int:
    """Audit and count the pairs that were new (by their other lead); returns how many."""
    for pair in pairs:
        if pair["other_lead_id"] in new_pairs:
            uow.after_commit(POSSIBLE_DUPLICATES.inc)
            uow.audit(
                "leads.RecordPossibleDuplicate",
                "lead",
                lead_id,
                {"other_lead_id": pair["other_lead_id"], "reasons": pair["reasons"]},
            )
    return len(new_pairs)


# ---------------------------------------------------------------- review and merge


async def dismiss_pair(uow: UnitOfWork, pair_id: str) -> Any:
    """Mark an open pair as two different people."""
    row = (
        await uow.conn.execute(
            update(possible_duplicates)
            .where(possible_duplicates.c.id == pair_id, possible_duplicates.c.status == domain.OPEN)
            .values(status=domain.DISMISSED, resolved_at=datetime.now(UTC), resolved_by=_actor())
            .returning(possible_duplicates)
        )
    ).first()
    if row is None:
        existing = await queries.get_pair(uow, pair_id)
        raise FailedPrecondition(
            f"possible duplicate {pair_id} is already {existing.status}",
            reason="POSSIBLE_DUPLICATE_NOT_OPEN",
            metadata={"possible_duplicate_id": pair_id, "status": existing.status},
        )
    uow.audit(
        "leads.DismissPossibleDuplicate",
        "possible_duplicate",
        pair_id,
        {"lead_id": row.lead_id, "other_lead_id": row.other_lead_id},
    )
    return row


async def merge_leads(uow: UnitOfWork, survivor_id: str, duplicate_id: str) -> lead_queries.LeadView:
    """Merge duplicate_id into survivor_id (see the module docstring)."""
    survivor, duplicate = await _lock_merge_pair(uow, survivor_id, duplicate_id)
    moved_deal_id = await _deal_to_move(uow, survivor_id, duplicate_id)
    now = datetime.now(UTC)
    changes, filled = domain.survivor_changes(survivor, duplicate)
    if moved_deal_id:
        # The deal keeps its owner rep; the survivor is now a converted lead. Sales moves its deal on
        # LeadsMerged (moved_deal_id); lead_since = the merge time orders that against its copy.
        await uow.conn.execute(
            update(lead_conversions)
            .where(lead_conversions.c.deal_id == moved_deal_id)
            .values(lead_id=survivor_id, lead_since=now)
        )
        changes["status"] = LeadStatus.CONVERTED.value
    await uow.conn.execute(update(leads).where(leads.c.id == survivor_id).values(**changes))
    await _move_history(uow, survivor_id, duplicate)
    await uow.conn.execute(
        update(leads)
        .where(leads.c.id == duplicate_id)
        .values(
            merged_into_id=survivor_id, missing_fields=[], touch_count=duplicate.touch_count, sla_clock_running=False
        )
    )
    await _repoint_pairs(uow, survivor_id, duplicate_id, now)
    await uow.record_event(
        events_pb2.LeadsMerged(
            survivor_lead_id=survivor_id,
            merged_lead_id=duplicate_id,
            moved_deal_id=moved_deal_id,
            merge_time=to_timestamp(now),
        ),
        time=now,
    )
    merge_details = {
        "merged_lead_id": duplicate_id,
        "moved_deal_id": moved_deal_id,
        "filled_fields": sorted(filled),
        "touch_count": changes["touch_count"],
    }
    uow.audit("leads.MergeLeads", "lead", survivor_id, merge_details)
    uow.audit("leads.MergedInto", "lead", duplicate_id, {"survivor_lead_id": survivor_id})
    uow.after_commit(LEADS_MERGED.inc)
    return await lead_queries.get_lead(uow, survivor_id)


async def _lock_merge_pair(uow: UnitOfWork, survivor_id: str, duplicate_id: str) -> tuple[Any, Any]:
    """Both leads' rows, locked in id order (two opposite merges of one pair cannot deadlock);
    refused when they are one lead, missing, or already merged."""
    if survivor_id == duplicate_id:
        raise InvalidArgument(
            "a lead cannot be merged into itself",
            field_violations=[("duplicate_lead_id", "must differ from the surviving lead")],
        )
    locked = await uow.conn.execute(
        select(leads)
        .where(leads.c.id.in_([survivor_id, duplicate_id]))
        .order_by(leads.c.id)
        .with_for_update(key_share=True)
    )
    rows = {r.id: r for r in locked.all()}
    for lead_id in (survivor_id, duplicate_id):
        if lead_id not in rows:
            raise lead_not_found(lead_id)
        if rows[lead_id].merged_into_id:
            raise FailedPrecondition(
                f"lead {lead_id} is already merged into {rows[lead_id].merged_into_id}",
                reason="LEAD_ALREADY_MERGED",
                metadata={"lead_id": lead_id, "merged_into_lead_id": rows[lead_id].merged_into_id},
            )
    return rows[survivor_id], rows[duplicate_id]


async def _deal_to_move(uow: UnitOfWork, survivor_id: str, duplicate_id: str) -> str:
    """The duplicate's deal ("" when none), its conversion locked; refused when both have one."""
    deal_rows = (
        await uow.conn.execute(
            select(lead_conversions.c.deal_id.label("id"), lead_conversions.c.lead_id)
            .where(lead_conversions.c.lead_id.in_([survivor_id, duplicate_id]))
            .with_for_update()
        )
    ).all()
    deal_of = {d.lead_id: d.id for d in deal_rows}
    if survivor_id in deal_of and duplicate_id in deal_of:
        raise FailedPrecondition(
            "both leads have a deal; close or keep them apart",
            reason="BOTH_LEADS_HAVE_DEALS",
            metadata={"lead_id": survivor_id, "duplicate_lead_id": duplicate_id},
        )
    return str(deal_of.get(duplicate_id, ""))


async def _move_history(uow: UnitOfWork, survivor_id: str, duplicate: Any) -> None:
    """The duplicate's touches and activities move to the survivor; its own capture becomes a
    "merge" touch of the survivor."""
    await uow.conn.execute(
        update(lead_touches).where(lead_touches.c.lead_id == duplicate.id).values(lead_id=survivor_id)
    )
    await uow.conn.execute(
        lead_touches.insert().values(
            id=str(uuid.uuid4()),
            lead_id=survivor_id,
            request_id=None,
            source=duplicate.source,
            campaign=duplicate.campaign,
            campaign_id=duplicate.campaign_id,
            web_form_key_id=duplicate.web_form_key_id,
            matched_on="merge",
            touched_at=duplicate.created_at,
        )
    )
    await uow.conn.execute(update(activities).where(activities.c.lead_id == duplicate.id).values(lead_id=survivor_id))


async def _repoint_pairs(uow: UnitOfWork, survivor_id: str, duplicate_id: str, now: datetime) -> None:
    """The duplicate's open review pairs are settled (merged); a pair with a third lead is still a
    question, now about the survivor: it is opened again between the survivor and that lead
    (unless such a pair exists already), keeping its score, reasons and age."""
    pairs = possible_duplicates.c
    others = (
        await uow.conn.execute(
            select(possible_duplicates).where(queries.open_pairs_of(duplicate_id), pairs.status == domain.OPEN)
        )
    ).all()
    for pair in others:
        third = pair.other_lead_id if pair.lead_id == duplicate_id else pair.lead_id
        if third == survivor_id:
            continue
        known = (await uow.conn.execute(select(pairs.id).where(queries.pair_of(survivor_id, third)))).first()
        if known is None:
            await uow.conn.execute(
                possible_duplicates.insert().values(
                    id=str(uuid.uuid4()),
                    lead_id=survivor_id,
                    other_lead_id=third,
                    score=pair.score,
                    reasons=list(pair.reasons),
                    status=domain.OPEN,
                    created_at=pair.created_at,
                )
            )
    await uow.conn.execute(
        update(possible_duplicates)
        .where(queries.open_pairs_of(duplicate_id), pairs.status == domain.OPEN)
        .values(status=domain.MERGED, resolved_at=now, resolved_by=_actor())
    )
