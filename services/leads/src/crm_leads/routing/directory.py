"""The sales organisation, pure: teams and reps as admins create and edit them (validation, update
masks, etags) and the rules that keep it consistent with routing. No I/O (crm_leads.routing.commands
applies it in one unit of work).

The directory stays in leads (docs/architecture.md, Decisions): routing reads reps, their
availability and capacity inside the capture's transaction, so an edit takes effect on the very
next capture and there is one writer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from crm_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from crm_leads.routing import availability
from crm_leads.routing.domain import fold, is_valid_id, list_violations

DEFAULT_TIME_ZONE = "Asia/Jerusalem"
MAX_NAME = 200
MAX_CODE = 100
# What UpdateTeam's and UpdateRep's update_mask may name.
TEAM_FIELDS = ("name", "manager_id", "active")
REP_FIELDS = (
    "name",
    "team_id",
    "active",
    "away",
    "capacity",
    "time_zone",
    "working_hours",
    "territories",
    "product_lines",
)
# A user id of the identity provider: printable, no spaces (e-mail addresses and "idp|123" included).
_USER_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")

Violations = list[tuple[str, str]]


def new_id(given: str, path: str, generate: Callable[[], str]) -> str:
    """A client-chosen id (the one the identity provider's tokens name), or a generated one."""
    chosen = given.strip()
    if not chosen:
        return generate()
    if not is_valid_id(chosen):
        raise InvalidArgument(
            f"invalid {path}", field_violations=[(path, "letters, digits and _.:- only, at most 64 characters")]
        )
    return chosen


def _name(value: str, path: str, v: Violations) -> str:
    name = " ".join(value.split())
    if not name or len(name) > MAX_NAME:
        v.append((path, f"is required, at most {MAX_NAME} characters"))
    return name


def _manager(value: str, path: str, v: Violations) -> str | None:
    manager = value.strip()
    if manager and not _USER_ID.match(manager):
        v.append((path, "a user id: at most 64 characters, no spaces"))
    return manager or None


def _codes(values: Sequence[str], path: str, v: Violations) -> list[str]:
    """Territory or product-line codes, spacing normalised and each once (case ignored)."""
    found = list_violations(path, values, MAX_CODE)
    v += found
    if found:
        return []
    kept: dict[str, str] = {}
    for value in values:
        code = " ".join(value.split())
        kept.setdefault(fold(code), code)
    return list(kept.values())


def _raise(what: str, v: Violations) -> None:
    if v:
        raise InvalidArgument(f"invalid {what}: " + "; ".join(f"{f} {d}" for f, d in v[:20]), field_violations=v)


def _mask(paths: Sequence[str], allowed: Sequence[str], v: Violations) -> list[str]:
    named = list(dict.fromkeys(paths))
    if not named:
        v.append(("update_mask", "name at least one field"))
    v += [(f"update_mask.paths[{i}]", f"one of: {', '.join(allowed)}") for i, p in enumerate(named) if p not in allowed]
    return named


# ---------------------------------------------------------------- teams


def team_not_found(team_id: str) -> NotFound:
    return NotFound(f"team {team_id} not found", reason="TEAM_NOT_FOUND", metadata={"team_id": team_id})


@dataclass(frozen=True)
class TeamInput:
    """A team as sent (CreateTeam, or UpdateTeam's values for the masked fields)."""

    name: str = ""
    manager_id: str = ""
    active: bool = True


def new_team(team_id: str, team: TeamInput) -> dict[str, Any]:
    """The teams row of a new team; InvalidArgument naming every bad field at once."""
    v: Violations = []
    values = {
        "id": team_id,
        "name": _name(team.name, "team.name", v),
        "manager_id": _manager(team.manager_id, "team.manager_id", v),
        "active": team.active,
    }
    _raise("team", v)
    return values


def team_changes(paths: Sequence[str], team: TeamInput) -> dict[str, Any]:
    """The teams columns an update sets (the masked fields); every bad path and value at once."""
    v: Violations = []
    named = _mask(paths, TEAM_FIELDS, v)
    checks: dict[str, Callable[[], Any]] = {
        "name": lambda: _name(team.name, "team.name", v),
        "manager_id": lambda: _manager(team.manager_id, "team.manager_id", v),
        "active": lambda: team.active,
    }
    values = {name: check() for name, check in checks.items() if name in named}
    _raise("team update", v)
    return values


def check_team_deactivation(team_id: str, active_reps: Sequence[str], rule_ids: Sequence[str]) -> None:
    """A team is deactivated only once nothing gives it work: no active rep (they would keep
    getting its leads) and no routing rule (its leads would wait in a queue nobody manages)."""
    if active_reps:
        shown = ", ".join(active_reps[:10])
        raise FailedPrecondition(
            f"team {team_id} has active reps ({shown}): deactivate or move them first",
            reason="TEAM_HAS_ACTIVE_REPS",
            field_violations=[("team.active", f"the team has {len(active_reps)} active rep(s): {shown}")],
            metadata={"team_id": team_id, "active_reps": ",".join(active_reps[:50])},
        )
    if rule_ids:
        shown = ", ".join(rule_ids[:10])
        raise FailedPrecondition(
            f"routing rules give team {team_id} leads ({shown}): change the rule set first",
            reason="TEAM_IN_ROUTING_RULES",
            field_violations=[("team.active", f"routing rules give the team leads: {shown}")],
            metadata={"team_id": team_id, "rule_ids": ",".join(rule_ids[:50])},
        )


# ---------------------------------------------------------------- reps


@dataclass(frozen=True)
class RepInput:
    """A rep as sent (CreateRep, or UpdateRep's values for the masked fields); capacity None: no cap."""

    name: str = ""
    team_id: str = ""
    active: bool = True
    away: bool = False
    capacity: int | None = None
    time_zone: str = ""
    working_hours: tuple[tuple[str, str, str], ...] = ()
    territories: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()


@dataclass
class _RepChecks:
    """Each rep field's check, collecting what is wrong in v."""

    rep: RepInput
    v: Violations = field(default_factory=list)

    def checks(self) -> dict[str, Callable[[], Any]]:
        rep, v = self.rep, self.v
        return {
            "name": lambda: _name(rep.name, "rep.name", v),
            "team_id": lambda: self._team(),
            "active": lambda: rep.active,
            "away": lambda: rep.away,
            "capacity": lambda: self._capacity(),
            "time_zone": lambda: self._time_zone(),
            "working_hours": lambda: self._hours(),
            "territories": lambda: _codes(rep.territories, "rep.territories", v),
            "product_lines": lambda: _codes(rep.product_lines, "rep.product_lines", v),
        }

    def _team(self) -> str:
        team_id = self.rep.team_id.strip()
        if not team_id:
            self.v.append(("rep.team_id", "is required"))
        return team_id

    def _capacity(self) -> int | None:
        capacity = self.rep.capacity
        if capacity is not None and not 0 <= capacity <= availability.MAX_CAPACITY:
            self.v.append(("rep.capacity", f"between 0 and {availability.MAX_CAPACITY} (or absent: no cap)"))
        return capacity

    def _time_zone(self) -> str:
        if not availability.validate_time_zone(self.rep.time_zone):
            self.v.append(("rep.time_zone", "an IANA time zone, e.g. Asia/Jerusalem or Asia/Tehran"))
        return self.rep.time_zone

    def _hours(self) -> list[dict[str, str]]:
        try:
            spans = availability.validate_working_hours(self.rep.working_hours, "rep.working_hours")
            return [h.as_dict() for h in spans]
        except InvalidArgument as exc:
            self.v += exc.field_violations
            return []


def new_rep(rep_id: str, rep: RepInput) -> dict[str, Any]:
    """The reps row of a new rep (time zone Asia/Jerusalem unless sent); every bad field at once."""
    if not rep.time_zone.strip():
        rep = replace(rep, time_zone=DEFAULT_TIME_ZONE)
    checked = _RepChecks(rep)
    values = {"id": rep_id, **{name: check() for name, check in checked.checks().items()}}
    _raise("rep", checked.v)
    return values


def rep_changes(paths: Sequence[str], rep: RepInput) -> dict[str, Any]:
    """The reps columns an update sets (the masked fields); every bad path and value at once."""
    checked = _RepChecks(rep)
    named = _mask(paths, REP_FIELDS, checked.v)
    values = {name: check() for name, check in checked.checks().items() if name in named}
    _raise("rep update", checked.v)
    return values


@dataclass(frozen=True)
class TeamState:
    """What a rep's team must be for the rep: it exists, and is active if the rep is."""

    exists: bool
    active: bool = False


def check_rep_team(team_id: str, team: TeamState, rep_active: bool) -> None:
    """A rep belongs to an existing team; an active rep to an active team (an inactive team has
    nobody taking its leads, by check_team_deactivation)."""
    if not team.exists:
        raise InvalidArgument(f"unknown team {team_id!r}", field_violations=[("rep.team_id", "unknown team")])
    if rep_active and not team.active:
        raise InvalidArgument(
            f"team {team_id} is inactive",
            field_violations=[("rep.team_id", "the team is inactive: an active rep needs an active team")],
        )


def check_rep_move(rep_id: str, team_id: str, named_rule_ids: Sequence[str]) -> None:
    """A rep that named_rep rules give leads to stays in the team those rules name (the rules say
    which team the leads go to); change the rules first."""
    if named_rule_ids:
        shown = ", ".join(named_rule_ids[:10])
        raise FailedPrecondition(
            f"routing rules name rep {rep_id} for their team ({shown}): change the rule set first",
            reason="REP_IN_ROUTING_RULES",
            field_violations=[("rep.team_id", f"named_rep routing rules give the rep leads: {shown}")],
            metadata={"rep_id": rep_id, "team_id": team_id, "rule_ids": ",".join(named_rule_ids[:50])},
        )
