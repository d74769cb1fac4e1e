"""Duplicate rules, pure: what a lead must have, why two leads may be one person (and how sure),
and survivorship (which values a merge or a touch fills in). No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_kit import names
from crm_leads.leads.domain import NewLead

# What a sales team needs to act on a lead: a number to call within five minutes. A lead without
# one is captured all the same and listed as incomplete until a touch or a merge brings it.
REQUIRED_FIELDS = ("phone_number",)
# Score of each reason a pair was proposed (the best one counts, a shared city adds a little).
_REASON_SCORES = {"same_name": 80, "same_name_joined": 70, "similar_spelling": 50}
_SAME_CITY_BONUS = 10
# A possible-duplicate pair's status.
OPEN, MERGED, DISMISSED = "open", "merged", "dismissed"
# Filled on a merge's survivor when empty there (never overwritten).
MERGE_FILLED_FIELDS = ("phone_number", "email", "city", "region", "product_line")


@dataclass(frozen=True)
class DuplicateMatch:
    """An existing lead the new capture is the same person as."""

    lead_id: str
    matched_on: str  # "phone_number" | "email"


def contact_lock_keys(new: NewLead) -> list[str]:
    """The advisory lock keys of a capture's phone number and e-mail, sorted: two captures never
    wait on each other in opposite orders (crm_leads.duplicates.commands)."""
    return sorted(f"lead-contact:{v}" for v in (new.phone_number, new.email) if v)


def missing_fields(new: NewLead) -> tuple[str, ...]:
    """Required fields a new lead lacks (it is captured all the same, and flagged)."""
    return missing_of(phone_number=new.phone_number)


def missing_of(*, phone_number: str) -> tuple[str, ...]:
    return tuple(f for f, value in (("phone_number", phone_number),) if f in REQUIRED_FIELDS and not value)


def fill_empty(row: Any, offered: dict[str, str]) -> dict[str, str]:
    """Survivorship: the offered values for fields the row has empty (never overwrite one)."""
    return {name: value for name, value in offered.items() if value and not getattr(row, name)}


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


def survivor_changes(survivor: Any, duplicate: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """What a merge sets on the survivor, and which of its empty fields the duplicate filled: the
    earliest capture time, summed touches, the missing fields recomputed, and the earliest first
    response (the person was answered when either lead was: a breach must not fire for someone a
    rep already called)."""
    filled = fill_empty(survivor, {f: getattr(duplicate, f) for f in MERGE_FILLED_FIELDS})
    changes: dict[str, Any] = {
        **filled,
        "touch_count": survivor.touch_count + duplicate.touch_count,
        "created_at": min(survivor.created_at, duplicate.created_at),
        "missing_fields": list(missing_of(phone_number=filled.get("phone_number", survivor.phone_number))),
    }
    responses = [t for t in (survivor.first_response_at, duplicate.first_response_at) if t is not None]
    if responses:
        changes["first_response_at"] = min(responses)
        changes["sla_clock_running"] = False
    return changes, filled
