"""The consent rules in force, per country, as configuration: what holds before anyone said
anything, and which ways of saying yes to advertising count (with what proof). A refusal is
honoured at once whatever its source, in every country: that is not configurable.

Shipped: Israel (`IL`, the default: Communications Law §30A, amendment 40) and Iran (`IR`: the
CRA's rules for advertising SMS, where a reply of 12 re-subscribes). `CRM_CONSENT_RULES` names
one of them or a JSON file of the same shape for another country. The rules the sender applies to
each advertising message (the "פרסומת" marker, the opt-out text and reply keywords) are
notifications' (`crm_notifications.advertising`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_kit import country_rules

DATA = Path(__file__).resolve().parent / "data"
SHIPPED = {"IL": DATA / "consent_il.json", "IR": DATA / "consent_ir.json"}
SOURCES = ("web_form", "recorded_call", "written", "reply", "agent")
PURPOSES = ("service", "marketing")
# Whoever records a yes to advertising on the customer's behalf in the CRM is not proof of it.
NEVER_GRANTS = frozenset({"agent"})


@dataclass(frozen=True)
class ConsentRules:
    country: str
    law: str
    # What holds per purpose before any record: {"service": True, "marketing": False}.
    defaults: dict[str, bool]
    # The sources a consent to advertising may come from, and whether it needs its evidence.
    marketing_grant_sources: frozenset[str]
    marketing_evidence_required: bool


class InvalidConsentRules(ValueError):
    """A rules file that cannot be right; the service refuses to start with it."""


def parse(data: Any, where: str) -> ConsentRules:
    """The rules from their JSON shape, checked whole."""
    try:
        defaults = {purpose: data["defaults"][purpose] for purpose in PURPOSES}
        grant = data["marketing_grant"]
        sources = frozenset(grant["sources"])
        rules = ConsentRules(
            country=str(data["country"]),
            law=str(data["law"]),
            defaults=defaults,
            marketing_grant_sources=sources,
            marketing_evidence_required=grant["evidence_required"],
        )
    except (KeyError, TypeError) as exc:
        raise InvalidConsentRules(f"{where}: missing or malformed {exc}") from exc
    problems = []
    if not all(isinstance(v, bool) for v in defaults.values()):
        problems.append("defaults must be true or false per purpose")
    if unknown := sorted(sources - set(SOURCES)):
        problems.append(f"unknown sources {unknown} (known: {', '.join(SOURCES)})")
    if sources & NEVER_GRANTS:
        problems.append("an agent's say-so is no proof of a consent to advertising")
    if not isinstance(rules.marketing_evidence_required, bool):
        problems.append("marketing_grant.evidence_required must be true or false")
    if problems:
        raise InvalidConsentRules(f"{where}: {'; '.join(problems)}")
    return rules


def load(name: str) -> ConsentRules:
    """A shipped country's rules by its code (IL, IR), or a rules file by its path."""
    try:
        data, where = country_rules.read(name, SHIPPED, "consent rules")
    except country_rules.UnreadableRules as exc:
        raise InvalidConsentRules(str(exc)) from exc
    return parse(data, where)
