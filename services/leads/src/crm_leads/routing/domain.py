"""Routing rules, pure: which rules match a lead, the validation of a rule set, and what an
assignment records. No I/O (crm_leads.routing.commands and queries do it); reps' availability and
the pick among them are in crm_leads.routing.availability."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from crm_kit.errors import AlreadyExists, InvalidArgument

LANGUAGES = ("he", "fa", "en")
MAX_RULES = 200
MAX_SLA_SECONDS = 7 * 24 * 3600
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    NAMED_REP = "named_rep"


class BreachAction(StrEnum):
    REASSIGN = "reassign"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class RoutingRule:
    """One routing rule. Every criterion is a list; an empty list matches anything."""

    id: str
    team_id: str
    sources: tuple[str, ...]  # empty: matches every source (the fallback rule)
    priority: int
    name: str = ""
    campaign_ids: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()  # city or region names
    languages: tuple[str, ...] = ()  # he, fa, en: the lead's locale's language
    strategy: Strategy = Strategy.ROUND_ROBIN
    rep_id: str = ""  # the named rep (strategy named_rep)
    sla_seconds: int | None = None
    breach_action: BreachAction = BreachAction.ESCALATE


@dataclass(frozen=True)
class Assignment:
    """Who gets the lead and why. An empty rep_id: the lead waits in the fallback queue."""

    rep_id: str
    rep_name: str
    team_id: str
    rule_id: str
    reason: str
    first_response_due_at: datetime | None = None
    sla_seconds: int | None = None
    breach_action: str = ""
    # The structured explanation: every rule tried, its candidates and why each was skipped.
    explanation: dict[str, Any] = field(default_factory=dict)


def fold(text: str) -> str:
    """A name or code as matching compares it: case and spacing ignored."""
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
    if rule.product_lines and fold(lead.product_line) not in {fold(p) for p in rule.product_lines}:
        return False
    places = {fold(lead.city), fold(lead.region)} - {""}
    if rule.territories and not places & {fold(t) for t in rule.territories}:
        return False
    return not (rule.languages and language_of(lead.locale) not in rule.languages)


def matching_rules(rules: Iterable[RoutingRule], lead: LeadFacts) -> list[RoutingRule]:
    """The rules a lead matches, in priority order (the first is tried first)."""
    return [r for r in sorted(rules, key=lambda r: (r.priority, r.id)) if rule_matches(r, lead)]


def due_at(now: datetime, sla_seconds: int | None) -> datetime | None:
    return None if sla_seconds is None else now + timedelta(seconds=sla_seconds)


def assigned_reason(rule: RoutingRule, *, turn: int, open_leads: int, skipped: int) -> str:
    """Why the rule's pick (at this round-robin turn, with these open leads) got the lead, as
    Lead.assignment.reason shows it; skipped earlier matching rules had no eligible rep."""
    if rule.strategy is Strategy.ROUND_ROBIN:
        why = f"round-robin turn {turn}"
    elif rule.strategy is Strategy.LEAST_LOADED:
        why = f"least-loaded ({open_leads} open leads)"
    else:
        why = "named rep"
    reason = f"matched rule {rule.id} ({rule.strategy.value}): {why} in team {rule.team_id}" + (
        f"; {skipped} earlier matching rule(s) had no eligible rep" if skipped else ""
    )
    return reason[:500]


def queued(source: str, matched: list[RoutingRule], tried: list[dict[str, Any]], now: datetime) -> Assignment:
    """No matching rule had an eligible rep: the lead waits under the first matching rule's team."""
    first = matched[0] if matched else None
    if first is None:
        return Assignment(
            rep_id="",
            rep_name="",
            team_id="",
            rule_id="",
            reason=f"no routing rule matches source {source}: waiting in the fallback queue"[:500],
            explanation={"outcome": "queued", "rules": tried},
        )
    reason = f"no eligible rep in {len(matched)} matching rule(s): waiting in team {first.team_id}'s queue"
    return Assignment(
        rep_id="",
        rep_name="",
        team_id=first.team_id,
        rule_id=first.id,
        reason=reason[:500],
        first_response_due_at=due_at(now, first.sla_seconds),
        sla_seconds=first.sla_seconds,
        breach_action=first.breach_action.value,
        explanation={"outcome": "queued", "rules": tried},
    )


@dataclass(frozen=True)
class BreachOutcome:
    """What was done about one breach: the action taken, and the new rep (and deadline) or the manager."""

    action: BreachAction
    new_rep: str = ""
    new_due: datetime | None = None
    manager: str = ""


def breached_lead_values(lead: Any, now: datetime, done: BreachOutcome) -> dict[str, Any]:
    """The lead's new columns after the breach: the new rep and clock, or the manager and a stopped clock."""
    if done.new_rep:
        return {
            "rep_id": done.new_rep,
            "assigned_at": now,
            "first_response_due_at": done.new_due,
            "sla_clock_running": done.new_due is not None,
            "reassign_count": lead.reassign_count + 1,
            "assign_reason": f"SLA breached by {lead.rep_id or 'the queue'}: reassigned in team {lead.team_id}"[:500],
        }
    return {"sla_clock_running": False, "escalated_to": done.manager or None}


# ---------------------------------------------------------------- validation of a rule set


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


@dataclass(frozen=True)
class RuleCatalogue:
    """What a rule set is checked against: known sources, active teams, their reps (with their
    team) and campaigns (None: no catalogue to check). A rule never gives leads to an inactive team."""

    sources: set[str]
    teams: set[str]
    rep_teams: dict[str, str]
    campaigns: set[str] | None


def is_valid_id(value: str) -> bool:
    """Whether value is an id a client may choose (rules, teams, reps): letters, digits and _.:-."""
    return bool(_ID.match(value))


def list_violations(path: str, values: Sequence[str], max_length: int) -> list[tuple[str, str]]:
    """What is wrong with a list of short texts (a rule's or a rep's territories, product lines…)."""
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
    new_id: Callable[[], object],
) -> list[RoutingRule]:
    """Check a whole rule set, reporting every bad field at once (`rules[2].team_id`); then two rules
    with one priority are a conflict (AlreadyExists → 409). campaigns None: no catalogue to check.
    new_id() names a rule sent without an id."""
    catalogue = RuleCatalogue(sources=sources, teams=teams, rep_teams=rep_teams, campaigns=campaigns)
    v: list[tuple[str, str]] = []
    if len(rules) > MAX_RULES:
        v.append(("rules", f"at most {MAX_RULES} rules"))
    seen_ids: set[str] = set()
    out: list[RoutingRule] = []
    for i, r in enumerate(rules):
        rule_id = r.id.strip() or str(new_id())
        v += _id_violations(f"rules[{i}]", rule_id, seen_ids)
        seen_ids.add(rule_id)
        rule = _checked_rule(f"rules[{i}]", r, rule_id, catalogue, v)
        if rule is not None:
            out.append(rule)
    if v:
        raise InvalidArgument("invalid routing rules: " + "; ".join(f"{f} {d}" for f, d in v[:20]), field_violations=v)
    _check_priorities(out)
    return out


def _id_violations(p: str, rule_id: str, seen_ids: set[str]) -> list[tuple[str, str]]:
    if not is_valid_id(rule_id):
        return [(f"{p}.id", "letters, digits and _.:- only, at most 64 characters")]
    if rule_id in seen_ids:
        return [(f"{p}.id", "appears twice in the rule set")]
    return []


def _checked_rule(
    p: str, r: RuleInput, rule_id: str, catalogue: RuleCatalogue, v: list[tuple[str, str]]
) -> RoutingRule | None:
    """The rule r as stored; None once anything in the set is wrong (added to v): it is refused."""
    name = " ".join(r.name.split())
    if not name or len(name) > 200:
        v.append((f"{p}.name", "is required, at most 200 characters"))
    if not -1_000_000 <= r.priority <= 1_000_000:
        v.append((f"{p}.priority", "must be between -1000000 and 1000000"))
    v += _criteria_violations(p, r, catalogue)
    strategy = r.strategy.strip().lower() or Strategy.ROUND_ROBIN.value
    team_id = _owner_team(p, strategy, r.team_id.strip(), r.rep_id.strip(), catalogue, v)
    if r.sla_seconds is not None and not 1 <= r.sla_seconds <= MAX_SLA_SECONDS:
        v.append((f"{p}.sla_seconds", f"between 1 and {MAX_SLA_SECONDS} (or null: no SLA)"))
    action = r.breach_action.strip().lower() or BreachAction.ESCALATE.value
    if action not in set(BreachAction):
        v.append((f"{p}.breach_action", f"must be one of: {', '.join(BreachAction)}"))
    if v:
        return None
    return RoutingRule(
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
        rep_id=r.rep_id.strip() if strategy == Strategy.NAMED_REP else "",
        sla_seconds=r.sla_seconds,
        breach_action=BreachAction(action),
    )


def _criteria_violations(p: str, r: RuleInput, catalogue: RuleCatalogue) -> list[tuple[str, str]]:
    """What is wrong with a rule's matching criteria (sources, campaigns, product lines, territories,
    languages)."""
    v: list[tuple[str, str]] = [
        (f"{p}.sources[{j}]", f"unknown source; one of: {', '.join(sorted(catalogue.sources))}")
        for j, source in enumerate(r.sources)
        if source not in catalogue.sources
    ]
    v += list_violations(f"{p}.campaign_ids", r.campaign_ids, 64)
    if catalogue.campaigns is not None:
        v += [
            (f"{p}.campaign_ids[{j}]", "unknown campaign")
            for j, campaign in enumerate(r.campaign_ids)
            if campaign.strip() and campaign not in catalogue.campaigns
        ]
    v += list_violations(f"{p}.product_lines", r.product_lines, 100)
    v += list_violations(f"{p}.territories", r.territories, 100)
    v += [
        (f"{p}.languages[{j}]", f"must be one of: {', '.join(LANGUAGES)}")
        for j, language in enumerate(r.languages)
        if language not in LANGUAGES
    ]
    return v


def _owner_team(
    p: str, strategy: str, team_id: str, rep_id: str, catalogue: RuleCatalogue, v: list[tuple[str, str]]
) -> str:
    """The team a rule gives leads to (a named rep's own team); what is wrong is added to v."""
    if strategy not in set(Strategy):
        v.append((f"{p}.strategy", f"must be one of: {', '.join(Strategy)}"))
    elif strategy == Strategy.NAMED_REP:
        if not rep_id:
            v.append((f"{p}.rep_id", "is required for strategy named_rep"))
        elif rep_id not in catalogue.rep_teams:
            v.append((f"{p}.rep_id", "unknown rep, or a rep of an inactive team"))
        elif team_id and catalogue.rep_teams[rep_id] != team_id:
            v.append((f"{p}.team_id", f"the rep belongs to team {catalogue.rep_teams[rep_id]}"))
        else:
            return catalogue.rep_teams[rep_id]
    else:
        if rep_id:
            v.append((f"{p}.rep_id", "only with strategy named_rep"))
        if not team_id:
            v.append((f"{p}.team_id", f"is required for strategy {strategy}"))
        elif team_id not in catalogue.teams:
            v.append((f"{p}.team_id", "unknown or inactive team"))
    return team_id


def _check_priorities(rules: Sequence[RoutingRule]) -> None:
    """Two rules with one priority are a conflict: the order of matching would be undefined."""
    by_priority: dict[int, int] = {}
    for i, rule in enumerate(rules):
        if rule.priority in by_priority:
            raise AlreadyExists(
                f"rules[{by_priority[rule.priority]}] and rules[{i}] have the same priority {rule.priority}",
                reason="RULE_PRIORITY_CONFLICT",
                metadata={"priority": str(rule.priority)},
            )
        by_priority[rule.priority] = i
