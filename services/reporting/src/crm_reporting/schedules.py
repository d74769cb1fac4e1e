"""Report schedules (pure): when a saved report is e-mailed next, and what a schedule may ask for.

A schedule is weekly (a weekday) or monthly (a day 1-28, so every month has it), at a whole hour
of the company's local time. The next delivery is the first such hour strictly after a moment:
after the last delivery, after a "send now", or after the schedule is made. A service that was
down over several due times sends once when it is back, then keeps the regular times (no backlog
of copies of one report).

Recipients are e-mail addresses of the company's own mail domains only (`allowed_domains`, the
setting `CRM_REPORT_MAIL_DOMAINS`): a report carries the data of its owner's reach, and an address
outside the company is a leak the owner cannot take back. No domain configured: scheduling is off
(a clear INVALID_ARGUMENT, never a silent drop).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm_kit.errors import InvalidArgument

CADENCES = ("weekly", "monthly")
MAX_RECIPIENTS = 20
MAX_SCHEDULES_PER_OWNER = 50
# A monthly report's day: the 28th is in every month.
LAST_MONTH_DAY = 28
# The local part and domain of an address a relay takes (no quoted local parts, no IP literals).
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+)$")


@dataclass(frozen=True)
class When:
    cadence: str
    # weekly: 0 Monday … 6 Sunday (date.weekday()).
    weekday: int
    # monthly: 1-28.
    day_of_month: int
    # 0-23, local.
    hour: int


def _when_problems(when: When) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if when.cadence not in CADENCES:
        problems.append(("cadence", "weekly or monthly"))
    if when.cadence == "weekly" and not 0 <= when.weekday <= 6:
        problems.append(("weekday", "0 (Monday) to 6 (Sunday)"))
    if when.cadence == "monthly" and not 1 <= when.day_of_month <= LAST_MONTH_DAY:
        problems.append(("day_of_month", f"1 to {LAST_MONTH_DAY}: a day every month has"))
    if not 0 <= when.hour <= 23:
        problems.append(("hour", "0 to 23, the company's local hour"))
    return problems


def _recipient_problems(kept: Sequence[str], allowed_domains: Sequence[str]) -> list[tuple[str, str]]:
    domains = {d.strip().lower().lstrip("@") for d in allowed_domains if d.strip()}
    if not kept or len(kept) > MAX_RECIPIENTS:
        return [("recipients", f"1 to {MAX_RECIPIENTS} e-mail addresses")]
    if not domains:
        return [("recipients", "scheduled reports are off: no company mail domain is configured")]
    problems: list[tuple[str, str]] = []
    for i, address in enumerate(kept):
        found = _ADDRESS.match(address) if len(address) <= 254 else None
        if found is None:
            problems.append((f"recipients[{i}]", "an e-mail address"))
        elif found.group(1) not in domains:
            problems.append((f"recipients[{i}]", "an address of the company: " + ", ".join(sorted(domains))))
    return problems


def check(when: When, recipients: Sequence[str], allowed_domains: Sequence[str]) -> list[str]:
    """The recipients as kept (trimmed, lower-case, each once); INVALID_ARGUMENT naming every wrong field."""
    kept = list(dict.fromkeys(r.strip().lower() for r in recipients if r.strip()))
    problems = _when_problems(when) + _recipient_problems(kept, allowed_domains)
    if problems:
        raise InvalidArgument(
            "the schedule cannot be kept: " + ", ".join(dict.fromkeys(p for p, _ in problems)),
            field_violations=problems,
        )
    return kept


def _falls_on(when: When, day: date) -> bool:
    if when.cadence == "weekly":
        return day.weekday() == when.weekday
    return day.day == when.day_of_month


def next_run(when: When, after: datetime, zone: ZoneInfo) -> datetime:
    """The first scheduled local hour strictly after `after`, in UTC. On a day when the clocks
    skip that hour it is the same wall-clock time read in the new offset (zoneinfo's rule)."""
    local = after.astimezone(zone)
    # A month has the day within 31 days, a week within 7; one day more for an hour already past.
    for offset in range(0, 33):
        day = local.date() + timedelta(days=offset)
        if not _falls_on(when, day):
            continue
        candidate = datetime.combine(day, time(when.hour), tzinfo=zone).astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError(f"no {when.cadence} day within 33 days of {after.isoformat()}")
