"""Business time and the SLA clock of a ticket, from its status history and a calendar.

Instants are handled as integer microseconds since the Unix epoch (UTC), so arithmetic is exact and never confused
by the calendar's wall clock. A calendar's windows are wall-clock times: each local day's windows are turned into
UTC intervals through zoneinfo (a window edge in a DST gap moves forward by the gap, 02:30 reading as 03:30; in an
overlap it is the first occurrence), clamped so intervals never overlap. The intervals of one local year, with
their running totals, are built once per calendar and year and kept in the calendar's memo: a sum of business time
over months is then two binary searches per year, fast enough to measure every open ticket in an SLA scan.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from crm_support.sla.calendar import Calendar

RUNNING = "running"
PAUSED = "paused"
MET = "met"
BREACHED = "breached"

NO_ESCALATION = 0
WARNING = 1
BREACH = 2
ESCALATED = 3

# add_business_seconds gives up when a calendar has no open time for this many years after its start.
LOOKAHEAD_YEARS = 3

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PER_SECOND = 1_000_000
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of a ticket's life: the clock running, or not (``reason`` says why: the pause's reason, or the
    status that stopped it, e.g. "resolved"). ``end`` is None for the current span."""

    start: datetime
    end: datetime | None
    running: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ClockState:
    """An SLA clock measured at an instant. ``state`` is "running", "paused", "met" or "breached"; ``due_at`` is
    when the target is (or was) reached, None while paused before reaching it; ``remaining_seconds`` is rounded up,
    so it is 0 only once the target is reached."""

    elapsed_seconds: int
    target_seconds: int
    due_at: datetime | None
    state: str
    paused_reason: str
    breached_at: datetime | None
    remaining_seconds: int


@dataclass(frozen=True, slots=True)
class _Year:
    """A calendar's business intervals in one local year, as sorted disjoint UTC microsecond intervals, with the
    business time before (``before``) and up to the end (``through``) of each."""

    starts: list[int]
    ends: list[int]
    before: list[int]
    through: list[int]

    @property
    def total(self) -> int:
        return self.through[-1] if self.through else 0

    def elapsed_until(self, instant: int) -> int:
        """Business microseconds of this year before ``instant``."""
        i = bisect_right(self.starts, instant) - 1
        if i < 0:
            return 0
        return self.before[i] + min(instant, self.ends[i]) - self.starts[i]

    def instant_after(self, amount: int) -> int:
        """The instant when ``amount`` (0 < amount <= total) business microseconds of this year have passed."""
        i = bisect_left(self.through, amount)
        return self.starts[i] + amount - self.before[i]


def business_seconds(cal: Calendar, start: datetime, end: datetime) -> int:
    """Whole business seconds in [start, end) (aware datetimes, any zone); 0 when end <= start."""
    return _business_micros(cal, _micros(start), _micros(end)) // _PER_SECOND


def add_business_seconds(cal: Calendar, start: datetime, seconds: int) -> datetime:
    """The first instant at which ``seconds`` of business time have passed since ``start``, in the calendar's zone.
    Outside hours the count starts at the next opening; 0 seconds is ``start`` itself (nothing to wait for).
    The inverse of :func:`business_seconds`: ``business_seconds(cal, s, add_business_seconds(cal, s, n)) == n``.
    Raises ValueError for negative seconds or a calendar with no open time for LOOKAHEAD_YEARS years."""
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    return _aware(cal, _add_business_micros(cal, _micros(start), seconds * _PER_SECOND))


def clock_spans(
    history: Sequence[tuple[datetime, str]],
    *,
    paused_statuses: Mapping[str, str],
    stop_statuses: frozenset[str],
) -> list[Span]:
    """The clock's spans from a ticket's status changes ``(at, new_status)`` in time order, the first being its
    creation. A status in ``stop_statuses`` stops the clock (reason: the status), one in ``paused_statuses`` pauses
    it (reason: the mapped text), any other runs it — so a reopen resumes it. Spans are contiguous; consecutive
    changes with the same effect are one span, and a span of no length is dropped."""
    spans: list[Span] = []
    for at, status in history:
        if spans and at < spans[-1].start:
            raise ValueError(f"history is not in time order: {at.isoformat()} after {spans[-1].start.isoformat()}")
        if status in stop_statuses:
            running, reason = False, status
        else:
            running, reason = status not in paused_statuses, paused_statuses.get(status, "")
        _extend(spans, at, running, reason)
    return spans


def measure(
    cal: Calendar, spans: Sequence[Span], target_seconds: int, now: datetime, *, met_at: datetime | None
) -> ClockState:
    """The clock at ``now``: business time over the running spans until ``met_at`` (the metric was met) or ``now``.
    Breached when that exceeds the target (met late included, ``breached_at`` being the due instant); met when met in
    time; paused when the clock is not running at ``now``; else running. ``due_at``: the instant the running time
    reaches the target — already passed, or ahead if the clock keeps running from now (None while paused), or, once
    met in time, when it would have been due had it kept running."""
    if target_seconds < 0:
        raise ValueError(f"target_seconds must not be negative, got {target_seconds}")
    if not spans:
        raise ValueError("no spans: the history starts with the ticket's creation")
    horizon = _micros(met_at if met_at is not None else now)
    target = target_seconds * _PER_SECOND
    elapsed, due, current = _walk(cal, spans, horizon, target)
    running = current.running and (current.end is None or _micros(current.end) > horizon)
    if due is None and (met_at is not None or running):
        due = _add_business_micros(cal, horizon, target - elapsed)
    if elapsed > target:
        state = BREACHED
    elif met_at is not None:
        state = MET
    else:
        state = RUNNING if running else PAUSED
    return ClockState(
        elapsed_seconds=elapsed // _PER_SECOND,
        target_seconds=target_seconds,
        due_at=None if due is None else _aware(cal, due),
        state=state,
        paused_reason=current.reason if met_at is None and not running else "",
        breached_at=_aware(cal, due) if state == BREACHED and due is not None else None,
        remaining_seconds=-(-max(0, target - elapsed) // _PER_SECOND),
    )


def escalation_level(
    state: ClockState, warn_before_seconds: int, after_breach_seconds: int, cal: Calendar, now: datetime
) -> int:
    """0 nothing to do; 1 warning: running with at most ``warn_before_seconds`` (and more than 0) business seconds
    left; 2 breached; 3 breached for more than ``after_breach_seconds`` of business time at ``now``."""
    if state.state == BREACHED:
        since = state.breached_at
        if since is not None and business_seconds(cal, since, now) > after_breach_seconds:
            return ESCALATED
        return BREACH
    if state.state == RUNNING and 0 < state.remaining_seconds <= warn_before_seconds:
        return WARNING
    return NO_ESCALATION


def _extend(spans: list[Span], at: datetime, running: bool, reason: str) -> None:
    """Close the current span at ``at`` and open one with this effect, merging equal neighbours."""
    if spans and (spans[-1].running, spans[-1].reason) == (running, reason):
        return
    if spans:
        last = spans.pop()
        if at > last.start:
            spans.append(Span(last.start, at, last.running, last.reason))
        elif spans and (spans[-1].running, spans[-1].reason) == (running, reason):
            spans[-1] = Span(spans[-1].start, None, running, reason)
            return
    spans.append(Span(at, None, running, reason))


def _walk(cal: Calendar, spans: Sequence[Span], horizon: int, target: int) -> tuple[int, int | None, Span]:
    """Business microseconds run until ``horizon``, the instant the target was reached (None if not yet) and the
    span in effect at ``horizon``."""
    elapsed, due, current = 0, None, spans[0]
    for span in spans:
        start = _micros(span.start)
        if start > horizon:
            break
        current = span
        if not span.running:
            continue
        end = horizon if span.end is None else min(_micros(span.end), horizon)
        amount = _business_micros(cal, start, end)
        if due is None and elapsed + amount >= target:
            due = _add_business_micros(cal, start, target - elapsed)
        elapsed += amount
    return elapsed, due, current


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got {moment.isoformat()}")
    return (moment - _EPOCH) // _MICROSECOND


def _aware(cal: Calendar, instant: int) -> datetime:
    return (_EPOCH + instant * _MICROSECOND).astimezone(_zone(cal))


def _zone(cal: Calendar) -> ZoneInfo:
    zone = cal._memo.get("zone")
    if not isinstance(zone, ZoneInfo):
        zone = cal._memo["zone"] = ZoneInfo(cal.time_zone)
    return zone


def _local_year(cal: Calendar, instant: int) -> int:
    return _aware(cal, instant).year


def _business_micros(cal: Calendar, start: int, end: int) -> int:
    if end <= start:
        return 0
    total = 0
    for year in range(_local_year(cal, start), _local_year(cal, end) + 1):
        table = _year(cal, year)
        total += table.elapsed_until(end) - table.elapsed_until(start)
    return total


def _add_business_micros(cal: Calendar, start: int, amount: int) -> int:
    if amount <= 0:
        return start
    year = last_open = _local_year(cal, start)
    table = _year(cal, year)
    consumed = table.elapsed_until(start)
    while consumed + amount > table.total:
        if table.total > consumed:
            last_open = year
        amount -= table.total - consumed
        consumed, year = 0, year + 1
        if year - last_open > LOOKAHEAD_YEARS:
            raise ValueError(f"calendar {cal.code!r} has no open time for {LOOKAHEAD_YEARS} years after {year - 1}")
        table = _year(cal, year)
    return table.instant_after(consumed + amount)


def _year(cal: Calendar, year: int) -> _Year:
    table = cal._memo.get(year)
    if not isinstance(table, _Year):
        table = cal._memo[year] = _build_year(cal, year)
    return table


def _build_year(cal: Calendar, year: int) -> _Year:
    """The year's windows as UTC intervals: each local day's windows through zoneinfo, kept within the local year
    and after the previous interval, so a DST change never overlaps or double counts them."""
    if not 1 < year < 9999:
        raise ValueError(f"year {year} is outside the range the clock can compute")
    zone = _zone(cal)
    floor = _micros(datetime(year, 1, 1, tzinfo=zone))
    ceiling = _micros(datetime(year + 1, 1, 1, tzinfo=zone))
    starts: list[int] = []
    ends: list[int] = []
    before: list[int] = []
    through: list[int] = []
    last, total = floor, 0
    for ordinal in range(date(year, 1, 1).toordinal(), date(year + 1, 1, 1).toordinal()):
        day = date.fromordinal(ordinal)
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        for window in cal.windows_on(day):
            start = max(_micros(midnight + window.start_minute * _MINUTE), last)
            end = min(_micros(midnight + window.end_minute * _MINUTE), ceiling)
            if end <= start:
                continue
            starts.append(start)
            ends.append(end)
            before.append(total)
            total += end - start
            through.append(total)
            last = end
    return _Year(starts, ends, before, through)
