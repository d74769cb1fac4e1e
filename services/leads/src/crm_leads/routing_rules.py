"""Routing rules, pure: which rules match a lead, which reps of a rule may take it now, whom to pick,
and the validation of a rule set and of a rep's availability. No I/O (crm_leads.routing does it)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_kit.errors import AlreadyExists, InvalidArgument
from crm_leads.domain import BreachAction, RoutingRule, Strategy

LANGUAGES = ("he", "fa", "en")
# Weekday names as stored (Python's weekday(): Monday is 0).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RULES = 200
MAX_SLA_SECONDS = 7 * 24 * 3600
MAX_CAPACITY = 10_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def language_of(locale: str) -> str:
    """The language a rule matches on: the locale's primary subtag (he-IL → he)."""
    return locale.split("-", 1)[0].lower()


@dataclass(frozen=True)
class LeadFacts:
    """What rules match on."""

    source: str
    campaign_id: str = ""
    campaign: str = ""
    product_line: str = ""
    city: str = ""
    region: str = ""
    locale: str = ""


def rule_matches(rule: RoutingRule, lead: LeadFacts) -> bool:
    """Every non-empty criterion of the rule must hold; an empty one holds for every lead."""
    if rule.sources and lead.source not in rule.sources:
        return False
    if rule.campaign_ids and not ({lead.campaign_id, lead.campaign} - {""}) & set(rule.campaign_ids):
        return False
    if rule.product_lines and _fold(lead.product_line) not in {_fold(p) for p in rule.product_lines}:
        return False
    places = {_fold(lead.city), _fold(lead.region)} - {""}
    if rule.territories and not places & {_fold(t) for t in rule.territories}:
        return False
    return not (rule.languages and language_of(lead.locale) not in rule.languages)


def matching_rules(rules: Iterable[RoutingRule], lead: LeadFacts) -> list[RoutingRule]:
    """The rules a lead matches, in priority order (the first is tried first)."""
    return [r for r in sorted(rules, key=lambda r: (r.priority, r.id)) if rule_matches(r, lead)]


# ---------------------------------------------------------------- availability


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
    candidates: Sequence[Candidate], now: datetime, tried: Sequence[str] = ()
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """The eligible reps (by id) and every candidate with its skip reason, for the explanation."""
    eligible: list[Candidate] = []
    considered: list[dict[str, Any]] = []
    for rep in sorted(candidates, key=lambda c: c.rep_id):
        reason = skip_reason(rep, now, tried)
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


def due_at(now: datetime, sla_seconds: int | None) -> datetime | None:
    return None if sla_seconds is None else now + timedelta(seconds=sla_seconds)


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class RuleInput:
    """A rule as a client sent it (PUT /routing-rules), before validation."""

    id: str
    name: str
    priority: int
    sources: tuple[str, ...] = ()
    campaign_ids: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    strategy: str = "round_robin"
    team_id: str = ""
    rep_id: str = ""
    sla_seconds: int | None = None
    breach_action: str = "escalate"


def _list_violations(path: str, values: Sequence[str], max_length: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if len(values) > 100:
        out.append((path, "at most 100 entries"))
    for i, value in enumerate(values):
        if not value.strip() or len(value) > max_length:
            out.append((f"{path}[{i}]", f"must be 1 to {max_length} characters"))
    return out


def validate_rule_set(
    rules: Sequence[RuleInput],
    *,
    sources: set[str],
    teams: set[str],
    rep_teams: dict[str, str],
    campaigns: set[str] | None,
    new_id: Any,
) -> list[RoutingRule]:
    """Check a whole rule set, reporting every bad field at once (`rules[2].team_id`); then two rules
    with one priority are a conflict (AlreadyExists → 409). campaigns None: no catalogue to check.
    new_id() names a rule sent without an id."""
    v: list[tuple[str, str]] = []
    if len(rules) > MAX_RULES:
        v.append(("rules", f"at most {MAX_RULES} rules"))
    seen_ids: set[str] = set()
    out: list[RoutingRule] = []
    for i, r in enumerate(rules):
        p = f"rules[{i}]"
        rule_id = r.id.strip() or str(new_id())
        if not _ID.match(rule_id):
            v.append((f"{p}.id", "letters, digits and _.:- only, at most 64 characters"))
        elif rule_id in seen_ids:
            v.append((f"{p}.id", "appears twice in the rule set"))
        seen_ids.add(rule_id)
        name = " ".join(r.name.split())
        if not name or len(name) > 200:
            v.append((f"{p}.name", "is required, at most 200 characters"))
        if not -1_000_000 <= r.priority <= 1_000_000:
            v.append((f"{p}.priority", "must be between -1000000 and 1000000"))
        for j, source in enumerate(r.sources):
            if source not in sources:
                v.append((f"{p}.sources[{j}]", f"unknown source; one of: {', '.join(sorted(sources))}"))
        v += _list_violations(f"{p}.campaign_ids", r.campaign_ids, 64)
        if campaigns is not None:
            for j, campaign in enumerate(r.campaign_ids):
                if campaign.strip() and campaign not in campaigns:
                    v.append((f"{p}.campaign_ids[{j}]", "unknown campaign"))
        v += _list_violations(f"{p}.product_lines", r.product_lines, 100)
        v += _list_violations(f"{p}.territories", r.territories, 100)
        for j, language in enumerate(r.languages):
            if language not in LANGUAGES:
                v.append((f"{p}.languages[{j}]", f"must be one of: {', '.join(LANGUAGES)}"))
        strategy = r.strategy.strip().lower() or Strategy.ROUND_ROBIN.value
        team_id = r.team_id.strip()
        rep_id = r.rep_id.strip()
        if strategy not in set(Strategy):
            v.append((f"{p}.strategy", f"must be one of: {', '.join(Strategy)}"))
        elif strategy == Strategy.NAMED_REP:
            if not rep_id:
                v.append((f"{p}.rep_id", "is required for strategy named_rep"))
            elif rep_id not in rep_teams:
                v.append((f"{p}.rep_id", "unknown rep"))
            elif team_id and rep_teams[rep_id] != team_id:
                v.append((f"{p}.team_id", f"the rep belongs to team {rep_teams[rep_id]}"))
            else:
                team_id = rep_teams[rep_id]
        else:
            if rep_id:
                v.append((f"{p}.rep_id", "only with strategy named_rep"))
            if not team_id:
                v.append((f"{p}.team_id", f"is required for strategy {strategy}"))
            elif team_id not in teams:
                v.append((f"{p}.team_id", "unknown team"))
        if r.sla_seconds is not None and not 1 <= r.sla_seconds <= MAX_SLA_SECONDS:
            v.append((f"{p}.sla_seconds", f"between 1 and {MAX_SLA_SECONDS} (or null: no SLA)"))
        action = r.breach_action.strip().lower() or BreachAction.ESCALATE.value
        if action not in set(BreachAction):
            v.append((f"{p}.breach_action", f"must be one of: {', '.join(BreachAction)}"))
        if v:
            continue
        out.append(
            RoutingRule(
                id=rule_id,
                team_id=team_id,
                sources=tuple(dict.fromkeys(r.sources)),
                priority=r.priority,
                name=name,
                campaign_ids=tuple(dict.fromkeys(c.strip() for c in r.campaign_ids)),
                product_lines=tuple(dict.fromkeys(" ".join(x.split()) for x in r.product_lines)),
                territories=tuple(dict.fromkeys(" ".join(x.split()) for x in r.territories)),
                languages=tuple(dict.fromkeys(r.languages)),
                strategy=Strategy(strategy),
                rep_id=rep_id if strategy == Strategy.NAMED_REP else "",
                sla_seconds=r.sla_seconds,
                breach_action=BreachAction(action),
            )
        )
    if v:
        raise InvalidArgument("invalid routing rules: " + "; ".join(f"{f} {d}" for f, d in v[:20]), field_violations=v)
    by_priority: dict[int, int] = {}
    for i, rule in enumerate(out):
        if rule.priority in by_priority:
            raise AlreadyExists(
                f"rules[{by_priority[rule.priority]}] and rules[{i}] have the same priority {rule.priority}",
                reason="RULE_PRIORITY_CONFLICT",
                metadata={"priority": str(rule.priority)},
            )
        by_priority[rule.priority] = i
    return out


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
