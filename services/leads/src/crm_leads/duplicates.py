"""Duplicate detection on capture and import: one lead per person.

- Same normalized phone number or e-mail as a live (not merged) lead: the capture becomes a touch
  of that lead (lead_touches). The lead's empty fields are filled from the capture only when the
  capturing caller may change that lead (domain.LeadReach): anyone else's touch changes nothing
  on it but its touch count, so nobody edits (or plants an e-mail address on) a lead they cannot read.
- Same name only (any of the keys of crm_leads.names): a new lead is created and the pair is
  recorded in possible_duplicates for a manager to merge or dismiss.

Concurrent captures of one new person are serialized by transaction-scoped advisory locks on
their phone number and e-mail, so the second waits for the first and then finds its lead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, literal_column, or_, select, text, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.leads.v1 import events_pb2
from crm_kit.db import UnitOfWork
from crm_kit.protoconv import to_timestamp
from crm_leads import domain, names
from crm_leads.campaigns import CampaignRef
from crm_leads.db import lead_touches, leads, possible_duplicates
from crm_leads.metrics import LEAD_TOUCHES, POSSIBLE_DUPLICATES

# What a sales team needs to act on a lead: a number to call within five minutes. A lead without
# one is captured all the same and listed as incomplete until a touch or a merge brings it.
REQUIRED_FIELDS = ("phone_number",)
# Name-only matches recorded per capture: the most recent ones (a common name would otherwise pair
# a new lead with thousands).
MAX_NAME_CANDIDATES = 5
# Score of each reason a pair was proposed (the best one counts, a shared city adds a little).
_REASON_SCORES = {"same_name": 80, "same_name_joined": 70, "similar_spelling": 50}
_SAME_CITY_BONUS = 10
# Survivors are never merged leads, so a chain is as long as the merges made after each other.
_MAX_MERGE_HOPS = 50


@dataclass(frozen=True)
class DuplicateMatch:
    """An existing lead the new capture is the same person as."""

    lead_id: str
    matched_on: str  # "phone_number" | "email"


def missing_fields(new: domain.NewLead) -> tuple[str, ...]:
    """Required fields a new lead lacks (it is captured all the same, and flagged)."""
    return missing_of(phone_number=new.phone_number)


def missing_of(*, phone_number: str) -> tuple[str, ...]:
    return tuple(f for f, value in (("phone_number", phone_number),) if f in REQUIRED_FIELDS and not value)


async def _lock_contacts(uow: UnitOfWork, new: domain.NewLead) -> None:
    # Held until commit: a concurrent capture of the same number or address waits here, then sees
    # this one's lead. Sorted, so two captures never wait on each other in opposite orders.
    # One statement for both: PostgreSQL evaluates the select list left to right.
    keys = sorted(f"lead-contact:{v}" for v in (new.phone_number, new.email) if v)
    if keys:
        calls = ", ".join(f"pg_advisory_xact_lock(hashtextextended(:k{i}, 0))" for i in range(len(keys)))
        await uow.conn.execute(text(f"SELECT {calls}"), {f"k{i}": key for i, key in enumerate(keys)})


_EMPTY = literal_column("''")


def contact_query(column: str, value: str) -> Select[Any]:
    """The oldest lead with this phone number or e-mail (an index equality)."""
    return (
        select(leads.c.id, leads.c.merged_into_id)
        # The literal '' (not a bind parameter) lets even a generic plan use the partial index.
        .where(leads.c[column] == value, leads.c[column] != _EMPTY)
        .order_by(leads.c.created_at, leads.c.id)
        .limit(1)
    )


async def find_duplicate(uow: UnitOfWork, new: domain.NewLead) -> DuplicateMatch | None:
    """The lead with the same phone number (first) or e-mail, if any: the oldest with it, or the
    lead it was merged into; locks the capture's contact points for the rest of the transaction."""
    await _lock_contacts(uow, new)
    for column, value in (("phone_number", new.phone_number), ("email", new.email)):
        if not value:
            continue
        found = (await uow.conn.execute(contact_query(column, value))).first()
        if found:
            # A merged lead's contact points still belong to the person: follow it to the survivor.
            lead_id, merged_into = found.id, found.merged_into_id
            for _ in range(_MAX_MERGE_HOPS):
                if not merged_into:
                    break
                lead_id = merged_into
                merged_into = (
                    await uow.conn.execute(select(leads.c.merged_into_id).where(leads.c.id == lead_id))
                ).scalar()
            return DuplicateMatch(lead_id=str(lead_id), matched_on=column)
    return None


class TouchRequestIdRace(Exception):
    """Another capture with the same request_id attached its touch first."""


async def attach_touch(
    uow: UnitOfWork,
    match: DuplicateMatch,
    new: domain.NewLead,
    *,
    campaign: CampaignRef,
    request_scope: str,
    request_id: str,
    web_form_key_id: str,
    reach: domain.LeadReach,
    now: datetime,
) -> str:
    """Record the capture as a touch of the matched lead (or its survivor, if it was merged
    meanwhile): touch count + 1, empty fields filled (survivorship) when the lead is within
    reach, missing_fields recomputed, audit and LeadTouched; returns the lead's id. Raises
    TouchRequestIdRace when the request_id was taken meanwhile."""
    lead = (
        await uow.conn.execute(select(leads).where(leads.c.id == match.lead_id).with_for_update(key_share=True))
    ).one()
    for _ in range(_MAX_MERGE_HOPS):
        if not lead.merged_into_id:
            break
        # Merged between the lookup and the lock: the touch belongs to the survivor.
        lead = (
            await uow.conn.execute(
                select(leads).where(leads.c.id == lead.merged_into_id).with_for_update(key_share=True)
            )
        ).one()
    touch_id = str(uuid.uuid4())
    inserted = await uow.conn.execute(
        pg_insert(lead_touches)
        .values(
            id=touch_id,
            lead_id=lead.id,
            request_scope=request_scope if request_id else None,
            request_id=request_id or None,
            source=new.source,
            campaign=campaign.name,
            campaign_id=campaign.id or None,
            web_form_key_id=web_form_key_id or None,
            matched_on=match.matched_on,
            touched_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_lead_touches_request")
        .returning(lead_touches.c.id)
    )
    if inserted.first() is None:
        raise TouchRequestIdRace(request_id)
    filled = (
        fill_empty(lead, {name: getattr(new, name) for name in domain.TOUCH_FILLABLE_FIELDS})
        if reach.covers(rep_id=lead.rep_id or "", team_id=lead.team_id or "")
        else {}
    )
    touch_count = lead.touch_count + 1
    await uow.conn.execute(
        update(leads)
        .where(leads.c.id == lead.id)
        .values(
            touch_count=touch_count,
            missing_fields=list(missing_of(phone_number=filled.get("phone_number", lead.phone_number))),
            **filled,
        )
    )
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
    return str(lead.id)


def fill_empty(row: Any, offered: dict[str, str]) -> dict[str, str]:
    """Survivorship: the offered values for fields the row has empty (never overwrite one)."""
    return {name: value for name, value in offered.items() if value and not getattr(row, name)}


async def record_name_matches(uow: UnitOfWork, lead_id: str, keys: names.NameKeys, *, city: str) -> int:
    """Record open possible_duplicates pairs of lead_id with the newest live leads sharing a name
    key (each an index equality); returns how many were new."""
    query = name_candidates_query(lead_id, keys)
    if query is None:
        return 0
    candidates = (await uow.conn.execute(query)).all()
    pairs = [
        {
            "id": str(uuid.uuid4()),
            "lead_id": lead_id,
            "other_lead_id": other.id,
            "score": pair_score(reasons),
            "reasons": reasons,
            "status": "open",
            "created_at": func.clock_timestamp(),
        }
        for other in candidates
        if (reasons := match_reasons(keys, other, city=city))
    ]
    if not pairs:
        return 0
    # One statement for all of a lead's pairs (a common name has several on every capture).
    result = await uow.conn.execute(
        pg_insert(possible_duplicates)
        .values(pairs)
        .on_conflict_do_nothing(constraint="uq_possible_duplicates_pair")
        .returning(possible_duplicates.c.other_lead_id)
    )
    new_pairs = {row.other_lead_id for row in result}
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


def name_candidates_query(lead_id: str, keys: names.NameKeys) -> Select[Any] | None:
    """The newest live leads other than lead_id sharing a name key; None when the name has no key.

    One branch per key, each reading the newest few entries of its (key, created_at, id) index
    backwards: the cost does not grow with how many leads share a common name (משה כהן may have
    thousands), which an OR over plain key indexes did (a bitmap of every match, then a sort).
    """
    branches = [
        select(
            leads.c.id, leads.c.name_key, leads.c.name_compact, leads.c.name_skeleton, leads.c.city, leads.c.created_at
        )
        .where(column == value, column != _EMPTY, leads.c.id != lead_id, leads.c.merged_into_id.is_(None))
        .order_by(column, leads.c.created_at.desc(), leads.c.id.desc())
        .limit(MAX_NAME_CANDIDATES)
        for column, value in (
            (leads.c.name_key, keys.key),
            (leads.c.name_compact, keys.compact),
            (leads.c.name_skeleton, keys.skeleton),
        )
        if value
    ]
    if not branches:
        return None
    found = union(*branches).subquery()
    return (
        select(found.c.id, found.c.name_key, found.c.name_compact, found.c.name_skeleton, found.c.city)
        .order_by(found.c.created_at.desc(), found.c.id.desc())
        .limit(MAX_NAME_CANDIDATES)
    )


def match_reasons(keys: names.NameKeys, other: Any, *, city: str) -> list[str]:
    reasons = []
    if keys.key and keys.key == other.name_key:
        reasons.append("same_name")
    if keys.compact and keys.compact == other.name_compact:
        reasons.append("same_name_joined")
    if keys.skeleton and keys.skeleton == other.name_skeleton:
        reasons.append("similar_spelling")
    if reasons and city and names.fold(city) == names.fold(other.city):
        reasons.append("same_city")
    return reasons


def pair_score(reasons: list[str]) -> int:
    best = max((_REASON_SCORES.get(r, 0) for r in reasons), default=0)
    return min(100, best + (_SAME_CITY_BONUS if "same_city" in reasons else 0))


def open_pairs_of(lead_id: str) -> Any:
    """Condition: pairs that name lead_id on either side."""
    return or_(possible_duplicates.c.lead_id == lead_id, possible_duplicates.c.other_lead_id == lead_id)


def pair_of(a: str, b: str) -> Any:
    return or_(
        and_(possible_duplicates.c.lead_id == a, possible_duplicates.c.other_lead_id == b),
        and_(possible_duplicates.c.lead_id == b, possible_duplicates.c.other_lead_id == a),
    )
