"""A ticket's SLA clocks (first response, next response, resolution), computed from its status
history, its policy version and its queue's calendar whenever it is read or scanned — never
stored, so a corrected holiday or a late status change is reflected at once.

Calendars and policy versions are read from the database and kept in process: a policy version
never changes once written; a calendar is re-read after CALENDAR_TTL_SECONDS (another replica may
have edited it) or at once when this process edits it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_support import domain
from crm_support.db import calendars, sla_policies
from crm_support.sla import clock as sla_clock
from crm_support.sla.calendar import Calendar, calendar_from_dict

CALENDAR_TTL_SECONDS = 30.0

_calendars: dict[str, tuple[float, Calendar]] = {}
_policies: dict[int, Any] = {}


def forget_calendar(code: str) -> None:
    _calendars.pop(code, None)


async def calendar(uow: UnitOfWork, code: str) -> Calendar:
    cached = _calendars.get(code)
    if cached and time.monotonic() - cached[0] < CALENDAR_TTL_SECONDS:
        return cached[1]
    row = (await uow.conn.execute(select(calendars.c.body).where(calendars.c.code == code))).first()
    if row is None:
        raise NotFound(f"no calendar {code!r}", reason="CALENDAR_NOT_FOUND")
    found = calendar_from_dict(row.body)
    _calendars[code] = (time.monotonic(), found)
    return found


async def policy_version(uow: UnitOfWork, version: int) -> Any:
    """A policy version's row; versions are immutable, so kept for the life of the process."""
    if version not in _policies:
        row = (await uow.conn.execute(select(sla_policies).where(sla_policies.c.version == version))).first()
        if row is None:
            raise NotFound(f"no SLA policy version {version}", reason="SLA_POLICY_NOT_FOUND")
        _policies[version] = row
    return _policies[version]


@dataclass(frozen=True)
class Clock:
    metric: domain.Metric
    state: str
    target_seconds: int
    elapsed_seconds: int
    due_at: datetime | None
    met_at: datetime | None
    breached_at: datetime | None
    paused_reason: str
    level: int
    # When this clock needs looking at again (its next escalation level); None when it cannot change.
    next_check: datetime | None


def _next_check(
    cal: Calendar, state: sla_clock.ClockState, level: int, warn: int, after: int, now: datetime, *, met: bool
) -> Any:
    """When the clock can next change level; always after now. A clock exactly at its target when
    the business day ends is not breached until a business second more has passed: its check is
    then the next opening, not the past closing time (or the scan would take it up on every pass
    all night)."""
    if met or state.state in ("met", "paused") or state.due_at is None:
        return None
    if level == 0 and state.remaining_seconds > warn:
        candidate = sla_clock.add_business_seconds(cal, now, state.remaining_seconds - warn)
    elif level in (0, 1):
        candidate = state.due_at
    elif level == 2:
        candidate = sla_clock.add_business_seconds(cal, state.due_at, after)
    else:
        return None
    return candidate if candidate > now else sla_clock.add_business_seconds(cal, now, 1)


def _clock(
    metric: domain.Metric,
    cal: Calendar,
    history: Sequence[tuple[datetime, str]],
    target: int,
    met_at: datetime | None,
    policy: Any,
    now: datetime,
) -> Clock:
    spans = sla_clock.clock_spans(history, paused_statuses=domain.PAUSED, stop_statuses=domain.STOPPED)
    state = sla_clock.measure(cal, spans, target, now, met_at=met_at)
    warn, after = policy.warn_before_minutes * 60, policy.escalate_after_minutes * 60
    level = sla_clock.escalation_level(state, warn, after, cal, now)
    return Clock(
        metric=metric,
        state=state.state,
        target_seconds=target,
        elapsed_seconds=state.elapsed_seconds,
        due_at=state.due_at,
        met_at=met_at if state.state in ("met", "breached") else None,
        breached_at=state.breached_at,
        paused_reason=state.paused_reason,
        level=level,
        next_check=_next_check(cal, state, level, warn, after, now, met=met_at is not None),
    )


def ticket_clocks(
    row: Any, history: Sequence[tuple[datetime, str]], cal: Calendar, policy: Any, now: datetime
) -> list[Clock]:
    """The ticket's clocks that have a target. A ticket resolved without a reply counts its first
    response as given at the resolution (the customer got an answer)."""
    targets: dict[str, int] = row.sla_targets
    clocks: list[Clock] = []
    if domain.Metric.FIRST_RESPONSE in targets:
        met = row.first_response_at or row.resolved_at
        clocks.append(_clock(domain.Metric.FIRST_RESPONSE, cal, history, targets["first_response"], met, policy, now))
    rounds: list[dict[str, str]] = row.next_responses
    if domain.Metric.NEXT_RESPONSE in targets and (row.awaiting_reply_since or rounds):
        since = row.awaiting_reply_since or datetime.fromisoformat(rounds[-1]["since"])
        met_at = None if row.awaiting_reply_since else datetime.fromisoformat(rounds[-1]["met"])
        since_history = [(since, domain.Status.OPEN.value), *((at, s) for at, s in history if at > since)]
        clocks.append(
            _clock(domain.Metric.NEXT_RESPONSE, cal, since_history, targets["next_response"], met_at, policy, now)
        )
    if domain.Metric.RESOLUTION in targets:
        resolved = row.resolved_at if row.status in domain.STOPPED else None
        clocks.append(_clock(domain.Metric.RESOLUTION, cal, history, targets["resolution"], resolved, policy, now))
    return clocks


def check_at(clocks: Sequence[Clock]) -> datetime | None:
    """When the SLA scan must look at the ticket again."""
    due = [c.next_check for c in clocks if c.next_check is not None]
    return min(due) if due else None


def at_risk(clocks: Sequence[Clock]) -> bool:
    """Whether a clock that still runs is at a warning or past its target."""
    return any(c.level >= 1 and c.met_at is None for c in clocks)
