"""Review and merge of duplicate leads, and the incomplete-records list; each command runs in the
caller's unit of work.

Survivorship (docs/lead-acquisition.md): the survivor keeps its id, rep, team, status and name;
its empty contact and territory fields are filled from the duplicate; the earliest capture time
wins; touches are summed and moved (the duplicate's own capture becomes a "merge" touch); the
duplicate's deal moves to the survivor unless both have one (refused); activities move; the
duplicate stays as a tombstone (merged_into_id) hidden from lists.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, update

from crm.leads.v1 import events_pb2
from crm_kit import caller
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from crm_kit.pagination import keyset_page
from crm_kit.protoconv import to_timestamp
from crm_leads import commands, domain, duplicates
from crm_leads.db import lead_conversions, lead_touches, leads, metadata, possible_duplicates
from crm_leads.metrics import LEADS_MERGED

OPEN, MERGED, DISMISSED = "open", "merged", "dismissed"
PAIR_STATUSES = (OPEN, MERGED, DISMISSED)
# Filled on the survivor when empty there (never overwritten).
_FILLED_FIELDS = ("phone_number", "email", "city", "region", "product_line")


def _lead_not_found(lead_id: str) -> NotFound:
    return NotFound(f"lead {lead_id} not found", reason="LEAD_NOT_FOUND", metadata={"lead_id": lead_id})


def _pair_not_found(pair_id: str) -> NotFound:
    return NotFound(
        f"possible duplicate {pair_id} not found",
        reason="POSSIBLE_DUPLICATE_NOT_FOUND",
        metadata={"possible_duplicate_id": pair_id},
    )


async def _repoint_pairs(uow: UnitOfWork, survivor_id: str, duplicate_id: str, now: datetime) -> None:
    """The duplicate's open review pairs are settled (merged); a pair with a third lead is still a
    question, now about the survivor: it is opened again between the survivor and that lead
    (unless such a pair exists already), keeping its score, reasons and age."""
    pairs = possible_duplicates.c
    others = (
        await uow.conn.execute(
            select(possible_duplicates).where(duplicates.open_pairs_of(duplicate_id), pairs.status == OPEN)
        )
    ).all()
    for pair in others:
        third = pair.other_lead_id if pair.lead_id == duplicate_id else pair.lead_id
        if third == survivor_id:
            continue
        known = (await uow.conn.execute(select(pairs.id).where(duplicates.pair_of(survivor_id, third)))).first()
        if known is None:
            await uow.conn.execute(
                possible_duplicates.insert().values(
                    id=str(uuid.uuid4()),
                    lead_id=survivor_id,
                    other_lead_id=third,
                    score=pair.score,
                    reasons=list(pair.reasons),
                    status=OPEN,
                    created_at=pair.created_at,
                )
            )
    await uow.conn.execute(
        update(possible_duplicates)
        .where(duplicates.open_pairs_of(duplicate_id), pairs.status == OPEN)
        .values(status=MERGED, resolved_at=now, resolved_by=_actor())
    )


def _actor() -> str:
    who = caller.current()
    return (who.actor if who else "") or caller.UNKNOWN_ACTOR


async def merge_leads(uow: UnitOfWork, survivor_id: str, duplicate_id: str) -> commands.LeadView:
    """Merge duplicate_id into survivor_id (see the module docstring)."""
    if survivor_id == duplicate_id:
        raise InvalidArgument(
            "a lead cannot be merged into itself",
            field_violations=[("duplicate_lead_id", "must differ from the surviving lead")],
        )
    # Both rows locked in id order: two opposite merges of one pair cannot deadlock.
    rows = {
        r.id: r
        for r in (
            await uow.conn.execute(
                select(leads)
                .where(leads.c.id.in_([survivor_id, duplicate_id]))
                .order_by(leads.c.id)
                .with_for_update(key_share=True)
            )
        ).all()
    }
    for lead_id in (survivor_id, duplicate_id):
        if lead_id not in rows:
            raise _lead_not_found(lead_id)
        if rows[lead_id].merged_into_id:
            raise FailedPrecondition(
                f"lead {lead_id} is already merged into {rows[lead_id].merged_into_id}",
                reason="LEAD_ALREADY_MERGED",
                metadata={"lead_id": lead_id, "merged_into_lead_id": rows[lead_id].merged_into_id},
            )
    survivor, duplicate = rows[survivor_id], rows[duplicate_id]
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
    now = datetime.now(UTC)
    moved_deal_id = deal_of.get(duplicate_id, "")
    filled = duplicates.fill_empty(survivor, {f: getattr(duplicate, f) for f in _FILLED_FIELDS})
    changes: dict[str, Any] = {
        **filled,
        "touch_count": survivor.touch_count + duplicate.touch_count,
        "created_at": min(survivor.created_at, duplicate.created_at),
        "missing_fields": list(duplicates.missing_of(phone_number=filled.get("phone_number", survivor.phone_number))),
    }
    # The person was answered when either lead was: the earliest first response stops the
    # survivor's clock (a breach must not fire for someone a rep already called).
    responses = [t for t in (survivor.first_response_at, duplicate.first_response_at) if t is not None]
    if responses:
        changes["first_response_at"] = min(responses)
        changes["sla_clock_running"] = False
    if moved_deal_id:
        # The deal keeps its owner rep; the survivor is now a converted lead. Sales moves its deal on
        # LeadsMerged (moved_deal_id).
        await uow.conn.execute(
            update(lead_conversions).where(lead_conversions.c.deal_id == moved_deal_id).values(lead_id=survivor_id)
        )
        changes["status"] = domain.LeadStatus.CONVERTED.value
    await uow.conn.execute(update(leads).where(leads.c.id == survivor_id).values(**changes))
    # The duplicate's touches, and its own capture as a touch of the survivor.
    await uow.conn.execute(
        update(lead_touches).where(lead_touches.c.lead_id == duplicate_id).values(lead_id=survivor_id)
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
    activities = metadata.tables.get("activities")
    if activities is not None and "lead_id" in activities.c:
        await uow.conn.execute(
            update(activities).where(activities.c.lead_id == duplicate_id).values(lead_id=survivor_id)
        )
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
    uow.audit(
        "leads.MergeLeads",
        "lead",
        survivor_id,
        {
            "merged_lead_id": duplicate_id,
            "moved_deal_id": moved_deal_id,
            "filled_fields": sorted(filled),
            "touch_count": changes["touch_count"],
        },
    )
    uow.audit("leads.MergedInto", "lead", duplicate_id, {"survivor_lead_id": survivor_id})
    uow.after_commit(LEADS_MERGED.inc)
    return await commands.get_lead(uow, survivor_id)


async def get_pair(uow: UnitOfWork, pair_id: str) -> Any:
    row = (await uow.conn.execute(select(possible_duplicates).where(possible_duplicates.c.id == pair_id))).first()
    if row is None:
        raise _pair_not_found(pair_id)
    return row


async def dismiss_pair(uow: UnitOfWork, pair_id: str) -> Any:
    """Mark an open pair as two different people."""
    row = (
        await uow.conn.execute(
            update(possible_duplicates)
            .where(possible_duplicates.c.id == pair_id, possible_duplicates.c.status == OPEN)
            .values(status=DISMISSED, resolved_at=datetime.now(UTC), resolved_by=_actor())
            .returning(possible_duplicates)
        )
    ).first()
    if row is None:
        existing = await get_pair(uow, pair_id)
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


async def list_pairs(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, status: str, team_id: str, lead_id: str
) -> tuple[list[Any], list[Any] | None]:
    """Pairs of one status, newest first; with team_id only pairs of two leads of that team."""
    query = select(possible_duplicates).where(possible_duplicates.c.status == status)
    if team_id:
        team_leads = select(leads.c.id).where(leads.c.team_id == team_id)
        # Both leads in the team: a pair across teams is an admin's to review.
        query = query.where(
            possible_duplicates.c.lead_id.in_(team_leads), possible_duplicates.c.other_lead_id.in_(team_leads)
        )
    if lead_id:
        query = query.where(duplicates.open_pairs_of(lead_id))
    return await keyset_page(
        uow.conn,
        query,
        possible_duplicates.c.created_at,
        possible_duplicates.c.id,
        limit=limit,
        after=after,
        descending=True,
    )


async def list_incomplete(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, rep_id: str, team_id: str
) -> tuple[list[commands.LeadView], list[Any] | None]:
    """Live leads with missing fields, newest first (the partial index ix_leads_incomplete)."""
    rows, next_key = await keyset_page(
        uow.conn,
        incomplete_query(rep_id, team_id),
        leads.c.created_at,
        leads.c.id,
        limit=limit,
        after=after,
        descending=True,
    )
    return [await commands.get_lead(uow, r.id) for r in rows], next_key


def incomplete_query(rep_id: str = "", team_id: str = "") -> Select[Any]:
    # The predicate is ix_leads_incomplete's, so the index serves it.
    query = select(leads.c.id, leads.c.created_at).where(
        func.cardinality(leads.c.missing_fields) > 0, leads.c.merged_into_id.is_(None)
    )
    if rep_id:
        query = query.where(leads.c.rep_id == rep_id)
    if team_id:
        query = query.where(leads.c.team_id == team_id)
    return query
