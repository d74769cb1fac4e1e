"""Reps' availability, pure: which reps of a rule may take a lead now (active, covering the lead's
territory and product line, not away, on duty in their own time zone, under their cap), whom a
strategy picks, and the validation of working hours and time zones. No I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_kit.errors import InvalidArgument
from crm_leads.routing.domain import LeadFacts, Strategy, fold

# Weekday names as stored (Python's weekday(): Monday is 0).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CAPACITY = 10_000
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


@dataclass(frozen=True)
class WorkingHours:
    """One working span on a weekday, local to the rep's time zone; end "24:00" is midnight."""

    day: str
    start: str
    end: str

    def contains(self, local: datetime) -> bool:
        if DAYS[local.weekday()] != self.day:
            return False
        now = local.time()
        end_ok = True if self.end == "24:00" else now < time.fromisoformat(self.end)
        return time.fromisoformat(self.start) <= now and end_ok

    def as_dict(self) -> dict[str, str]:
        return {"day": self.day, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Candidate:
    """A rep a rule could give the lead to, with what decides whether it may."""

    rep_id: str
    name: str = ""
    active: bool = True
    away: bool = False
    capacity: int | None = None
    open_leads: int = 0
    time_zone: str = "Asia/Jerusalem"
    working_hours: tuple[WorkingHours, ...] = ()
    # What the rep covers (empty: everything); see coverage_gap.
    territories: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()
    # Folded once per candidate (a capture may screen the same rep under several rules).
    folded_territories: frozenset[str] = field(init=False, repr=False, compare=False)
    folded_product_lines: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "folded_territories", frozenset(fold(t) for t in self.territories))
        object.__setattr__(self, "folded_product_lines", frozenset(fold(p) for p in self.product_lines))


def on_duty(rep: Candidate, now: datetime) -> bool:
    """Within the rep's weekly hours, in the rep's own time zone; no hours set: always on duty."""
    if not rep.working_hours:
        return True
    local = now.astimezone(ZoneInfo(rep.time_zone))
    return any(span.contains(local) for span in rep.working_hours)


def skip_reason(rep: Candidate, now: datetime, tried: Sequence[str] = ()) -> str:
    """Why the rep cannot take a lead now ("" when they can)."""
    if not rep.active:
        return "inactive"
    if rep.rep_id in tried:
        return "already tried for this lead"
    if rep.away:
        return "away"
    if not on_duty(rep, now):
        return f"outside working hours ({rep.time_zone})"
    if rep.capacity is not None and rep.open_leads >= rep.capacity:
        return f"at capacity ({rep.open_leads}/{rep.capacity} open leads)"
    return ""


def coverage_gap(rep: Candidate, lead: LeadFacts | None) -> str:
    """Why the rep does not cover the lead ("" when they do): a rep with territories or product
    lines takes only leads of those. Only what the lead states narrows the choice: a lead without a
    city and region, or without a product line, is not filtered on it. None: no lead to check."""
    if lead is None:
        return ""
    places = {fold(lead.city), fold(lead.region)} - {""}
    if rep.territories and places and not places & rep.folded_territories:
        return f"covers other territories ({_few(rep.territories)})"
    line = fold(lead.product_line)
    if rep.product_lines and line and line not in rep.folded_product_lines:
        return f"covers other product lines ({_few(rep.product_lines)})"
    return ""


def _few(codes: Sequence[str]) -> str:
    """The first three codes (the explanation is stored with every lead: kept short)."""
    return ", ".join(codes[:3]) + (f" and {len(codes) - 3} more" if len(codes) > 3 else "")


@dataclass
class RuleOutcome:
    """What one rule did with a lead: the reps it considered (with why each was skipped) and its pick."""

    rule_id: str
    strategy: str
    team_id: str
    considered: list[dict[str, Any]] = field(default_factory=list)
    picked: Candidate | None = None
    turn: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "strategy": self.strategy,
            "team_id": self.team_id,
            "turn": self.turn,
            "picked_rep_id": self.picked.rep_id if self.picked else "",
            "candidates": self.considered,
        }


def screen(
    candidates: Sequence[Candidate], now: datetime, tried: Sequence[str] = (), lead: LeadFacts | None = None
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """The eligible reps (by id) and every candidate with its skip reason, for the explanation;
    with a lead, reps who do not cover it are skipped too (coverage_gap)."""
    eligible: list[Candidate] = []
    considered: list[dict[str, Any]] = []
    for rep in sorted(candidates, key=lambda c: c.rep_id):
        reason = skip_reason(rep, now, tried) or coverage_gap(rep, lead)
        considered.append({"rep_id": rep.rep_id, "open_leads": rep.open_leads, "skipped": reason})
        if not reason:
            eligible.append(rep)
    return eligible, considered


def pick(strategy: Strategy, eligible: Sequence[Candidate], turn: int) -> Candidate:
    """The rep the strategy gives the lead to. turn is the team's ever-increasing counter (1-based):
    round-robin takes eligible[turn], least-loaded the fewest open leads with ties taken in turn."""
    if not eligible:
        raise ValueError("no eligible rep")
    ordered = sorted(eligible, key=lambda c: c.rep_id)
    if strategy is Strategy.LEAST_LOADED:
        fewest = min(c.open_leads for c in ordered)
        ordered = [c for c in ordered if c.open_leads == fewest]
    return ordered[(turn - 1) % len(ordered)]


def validate_time_zone(name: str) -> bool:
    if not name or len(name) > 64 or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def validate_working_hours(spans: Sequence[tuple[str, str, str]], path: str = "working_hours") -> list[WorkingHours]:
    """Weekly hours as (day, start "HH:MM", end "HH:MM" or "24:00"); start before end, at most 50."""
    v: list[tuple[str, str]] = []
    if len(spans) > 50:
        v.append((path, "at most 50 spans"))
    out: list[WorkingHours] = []
    for i, (day, start, end) in enumerate(spans):
        d = day.strip().lower()[:3]
        if d not in DAYS:
            v.append((f"{path}[{i}].day", f"one of: {', '.join(DAYS)}"))
        if not _HHMM.match(start) or start == "24:00":
            v.append((f"{path}[{i}].start", "HH:MM, 00:00 to 23:59"))
        elif not _HHMM.match(end):
            v.append((f"{path}[{i}].end", "HH:MM, up to 24:00"))
        elif end != "24:00" and end <= start:
            v.append((f"{path}[{i}].end", "must be after start (split a night shift at midnight)"))
        else:
            out.append(WorkingHours(d, start, end))
    if v:
        raise InvalidArgument("invalid working hours", field_violations=v)
    return out


def working_hours_from_json(value: Any) -> tuple[WorkingHours, ...]:
    return tuple(WorkingHours(str(s["day"]), str(s["start"]), str(s["end"])) for s in (value or []))
