"""Business time over the shipped calendars (weekends, holidays, short days, DST) and the SLA clock of a ticket:
pauses, stops, reopens, met and breached, escalation levels."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm_support.sla.calendar import Calendar, Holiday, Window, build_calendar, shipped_calendar
from crm_support.sla.clock import (
    ClockState,
    Span,
    add_business_seconds,
    business_seconds,
    clock_spans,
    escalation_level,
    measure,
)

pytestmark = pytest.mark.unit

JERUSALEM = ZoneInfo("Asia/Jerusalem")
TEHRAN = ZoneInfo("Asia/Tehran")
HOUR = 3600
PAUSED = {"pending_customer": "waiting for the customer"}
STOPPED = frozenset({"resolved", "closed"})
IL = shipped_calendar("IL")
IR = shipped_calendar("IR")


def il(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=JERUSALEM)


def ir(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TEHRAN)


def around_the_clock(zone: str) -> Calendar:
    return build_calendar("ALL", "24/7", zone, {day: (Window(0, 1440),) for day in range(7)}, [])


def day_of(zone: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return start, start + timedelta(days=1)


def spans_of(*history: tuple[datetime, str]) -> list[Span]:
    return clock_spans(history, paused_statuses=PAUSED, stop_statuses=STOPPED)


# --- business time ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cal", "start", "end", "hours"),
    [
        (IL, il(2026, 6, 15, 10), il(2026, 6, 15, 12, 30), 2.5),
        (IL, il(2026, 6, 15, 6), il(2026, 6, 15, 20), 9),
        (IL, il(2026, 6, 14), il(2026, 6, 21), 45),  # Sunday to Sunday, no holidays
        (IL, il(2026, 6, 12), il(2026, 6, 14), 0),  # Friday and Saturday
        (IL, il(2026, 6, 11, 16, 30), il(2026, 6, 14, 8, 30), 1),  # Thursday evening to Sunday morning
        (IL, il(2026, 9, 11), il(2026, 9, 14), 0),  # Friday (Erev Rosh Hashana), Rosh Hashana on Saturday and Sunday
        (IL, il(2026, 9, 20), il(2026, 9, 21), 5),  # Erev Yom Kippur, a Sunday: 08:00-13:00
        (IL, il(2026, 9, 21), il(2026, 9, 22), 0),  # Yom Kippur, a Monday
        (IL, il(2027, 4, 21), il(2027, 4, 22), 5),  # Erev Pesach, a Wednesday
        (IL, il(2026, 10, 25), il(2026, 10, 26), 9),  # DST ends that night: still 08:00-17:00
        (IR, ir(2026, 7, 9), ir(2026, 7, 11), 0),  # Thursday and Friday
        (IR, ir(2026, 7, 11), ir(2026, 7, 12), 8),  # Saturday
        (IR, ir(2026, 3, 19), ir(2026, 3, 25), 0),  # Thursday, Friday (29 Esfand), Nowruz Saturday-Tuesday
        (IR, ir(2026, 3, 25), ir(2026, 3, 26), 8),  # Wednesday after Nowruz
        (IR, ir(2026, 7, 11), ir(2026, 7, 18), 40),
        (IL, il(2026, 6, 15, 12), il(2026, 6, 15, 11), 0),  # end before start
    ],
)
def test_business_seconds(cal: Calendar, start: datetime, end: datetime, hours: float) -> None:
    assert business_seconds(cal, start, end) == hours * HOUR
    assert business_seconds(cal, start.astimezone(UTC), end.astimezone(ZoneInfo("America/New_York"))) == hours * HOUR


def test_business_seconds_across_years_counts_every_day_once() -> None:
    cal = around_the_clock("Asia/Jerusalem")
    assert business_seconds(cal, il(2026, 1, 1), il(2029, 1, 1)) == (365 * 3 + 1) * 24 * HOUR
    assert business_seconds(cal, il(2026, 12, 31, 23), il(2027, 1, 1, 1)) == 2 * HOUR


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        business_seconds(IL, datetime(2026, 6, 15, 10), il(2026, 6, 15, 12))


def test_dst_days_last_23_and_25_hours_in_israel() -> None:
    cal = around_the_clock("Asia/Jerusalem")
    autumn, spring = date(2026, 10, 25), date(2026, 3, 27)
    assert il(2026, 10, 24, 12).utcoffset() != il(2026, 10, 26, 12).utcoffset()
    assert il(2026, 3, 26, 12).utcoffset() != il(2026, 3, 28, 12).utcoffset()
    assert business_seconds(cal, *day_of(JERUSALEM, autumn)) == 25 * HOUR
    assert business_seconds(cal, *day_of(JERUSALEM, spring)) == 23 * HOUR
    assert business_seconds(IL, *day_of(JERUSALEM, autumn)) == 9 * HOUR


def test_iran_has_no_dst() -> None:
    cal = around_the_clock("Asia/Tehran")
    assert ir(2026, 1, 15).utcoffset() == ir(2026, 7, 15).utcoffset() == timedelta(hours=3, minutes=30)
    assert business_seconds(cal, *day_of(TEHRAN, date(2026, 3, 22))) == 24 * HOUR
    assert business_seconds(cal, *day_of(TEHRAN, date(2026, 9, 22))) == 24 * HOUR


def test_windows_in_a_dst_gap_are_not_counted_twice() -> None:
    """2026-03-27 in Israel: 02:00 jumps to 03:00, so 02:30 never happens (it is read as 03:30, after the jump) and
    the second window's start (03:00) falls before the first one's end: the time between counts once."""
    friday = (Window(60, 150), Window(180, 300))
    cal = build_calendar("GAP", "gap", "Asia/Jerusalem", {4: friday}, [])
    start, end = day_of(JERUSALEM, date(2026, 3, 27))
    real = il(2026, 3, 27, 5).astimezone(UTC) - il(2026, 3, 27, 1).astimezone(UTC)
    assert business_seconds(cal, start, end) == 3 * HOUR == real.total_seconds()
    assert add_business_seconds(cal, start, 3 * HOUR) == il(2026, 3, 27, 5)


@pytest.mark.parametrize(
    ("cal", "start", "seconds", "due"),
    [
        (IL, il(2026, 6, 11, 16, 30), HOUR, il(2026, 6, 14, 8, 30)),  # Thursday 16:30 -> Sunday 08:30
        (IL, il(2026, 6, 15, 10), 2 * HOUR, il(2026, 6, 15, 12)),
        (IL, il(2026, 6, 15, 18), 1, il(2026, 6, 16, 8, 0, 1)),  # after hours: from the next opening
        (IL, il(2026, 6, 15, 10), 7 * HOUR, il(2026, 6, 15, 17)),  # exactly at closing, not the next opening
        (IL, il(2026, 9, 18, 12), 6 * HOUR, il(2026, 9, 22, 9)),  # Friday; Sunday eve 5h; Monday Yom Kippur
        (IR, ir(2026, 7, 8, 15, 30), HOUR, ir(2026, 7, 11, 8, 30)),  # Wednesday 15:30 -> Saturday 08:30
        (IR, ir(2026, 3, 18, 15, 30), HOUR, ir(2026, 3, 25, 8, 30)),  # over 29 Esfand and Nowruz
        (IL, il(2026, 6, 15, 10), 0, il(2026, 6, 15, 10)),
        (IL, il(2026, 6, 13, 10), 0, il(2026, 6, 13, 10)),  # 0 seconds is the start, even on a Saturday
    ],
)
def test_add_business_seconds(cal: Calendar, start: datetime, seconds: int, due: datetime) -> None:
    found = add_business_seconds(cal, start, seconds)
    assert found == due
    assert found.tzinfo == ZoneInfo(cal.time_zone)
    assert business_seconds(cal, start, found) == seconds


def test_negative_seconds_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_seconds(IL, il(2026, 6, 15, 10), -1)


def test_a_calendar_closed_for_years_gives_up() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=w) for w in range(52 * 6)]
    cal = build_calendar("SHUT", "shut", "UTC", {0: (Window(540, 600),)}, [Holiday(d, "closed") for d in mondays])
    with pytest.raises(ValueError, match="no open time"):
        add_business_seconds(cal, datetime(2026, 1, 1, tzinfo=UTC), 1)


def _random_instant(rng: random.Random) -> datetime:
    start = datetime(2025, 12, 1, tzinfo=UTC)
    return start + timedelta(seconds=rng.randrange(3 * 366 * 24 * HOUR))


@pytest.mark.parametrize("cal", [IL, IR], ids=["IL", "IR"])
def test_add_is_the_inverse_of_business_seconds(cal: Calendar) -> None:
    rng = random.Random(20260912)
    for _ in range(500):
        start = _random_instant(rng)
        seconds = rng.choice([rng.randrange(1, 120), rng.randrange(1, 10 * HOUR), rng.randrange(1, 400 * HOUR)])
        due = add_business_seconds(cal, start, seconds)
        assert due > start
        assert business_seconds(cal, start, due) == seconds, (start, seconds)
        assert business_seconds(cal, start, due - timedelta(seconds=1)) == seconds - 1, (start, seconds)
        local = due.astimezone(ZoneInfo(cal.time_zone))
        minute = local.hour * 60 + local.minute + (local.second > 0)
        assert any(w.start_minute < minute <= w.end_minute for w in cal.windows_on(local.date())), due


def _open_minutes(cal: Calendar, start: datetime, end: datetime) -> int:
    """The oracle: every minute in [start, end), looked up on the local wall clock."""
    zone, count, moment = ZoneInfo(cal.time_zone), 0, start
    while moment < end:
        local = moment.astimezone(zone)
        minute = local.hour * 60 + local.minute
        count += any(w.start_minute <= minute < w.end_minute for w in cal.windows_on(local.date()))
        moment += timedelta(minutes=1)
    return count


@pytest.mark.parametrize("cal", [IL, IR, around_the_clock("Asia/Jerusalem")], ids=["IL", "IR", "24/7"])
def test_business_seconds_matches_counting_minutes(cal: Calendar) -> None:
    rng = random.Random(5787)
    near = [datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 3, 26, tzinfo=UTC), datetime(2026, 9, 10, tzinfo=UTC)]
    for i in range(40):
        base = near[i % 3] if i < 12 else _random_instant(rng)
        start = base.replace(second=0) + timedelta(minutes=rng.randrange(3 * 24 * 60))
        end = start + timedelta(minutes=rng.randrange(2 * 24 * 60))
        assert business_seconds(cal, start, end) == 60 * _open_minutes(cal, start, end), (start, end)


# --- the clock ----------------------------------------------------------------------------------------------------


def test_spans_pause_stop_and_reopen() -> None:
    spans = spans_of(
        (il(2026, 6, 15, 9), "new"),
        (il(2026, 6, 15, 10), "open"),
        (il(2026, 6, 15, 11), "pending_customer"),
        (il(2026, 6, 15, 14), "open"),
        (il(2026, 6, 15, 15), "resolved"),
        (il(2026, 6, 15, 16), "closed"),
        (il(2026, 6, 16, 9), "open"),
    )
    assert spans == [
        Span(il(2026, 6, 15, 9), il(2026, 6, 15, 11), True, ""),
        Span(il(2026, 6, 15, 11), il(2026, 6, 15, 14), False, "waiting for the customer"),
        Span(il(2026, 6, 15, 14), il(2026, 6, 15, 15), True, ""),
        Span(il(2026, 6, 15, 15), il(2026, 6, 15, 16), False, "resolved"),
        Span(il(2026, 6, 15, 16), il(2026, 6, 16, 9), False, "closed"),
        Span(il(2026, 6, 16, 9), None, True, ""),
    ]


def test_spans_of_no_length_are_dropped() -> None:
    ten = il(2026, 6, 15, 10)
    assert spans_of((ten, "new"), (ten, "pending_customer")) == [Span(ten, None, False, "waiting for the customer")]
    nine = il(2026, 6, 15, 9)
    assert spans_of((nine, "new"), (ten, "pending_customer"), (ten, "open")) == [Span(nine, None, True, "")]
    assert spans_of() == []


def test_history_out_of_order_is_refused() -> None:
    with pytest.raises(ValueError, match="time order"):
        spans_of((il(2026, 6, 15, 10), "new"), (il(2026, 6, 15, 9), "open"))


def mon(hour: int, minute: int = 0) -> datetime:
    """Monday 2026-06-15, a working day in Israel, at a wall-clock time in Jerusalem."""
    return il(2026, 6, 15, hour, minute)


DAY = ((mon(10), "new"), (mon(11), "pending_customer"), (mon(14), "open"), (mon(15), "resolved"))
WAITING = "waiting for the customer"


def _measure(history: tuple[tuple[datetime, str], ...], target: int, now: datetime, met: datetime | None) -> ClockState:
    return measure(IL, spans_of(*history), target, now, met_at=met)


@pytest.mark.parametrize(
    ("target", "now", "met", "expected"),
    [
        # met in 2 business hours: the 3 hours waiting for the customer do not count
        (3 * HOUR, mon(16), mon(15), ClockState(7200, 10800, mon(16), "met", "", None, 3600)),
        (HOUR, mon(16), mon(15), ClockState(7200, 3600, mon(11), "breached", "", mon(11), 0)),
        (2 * HOUR, mon(16), mon(15), ClockState(7200, 7200, mon(15), "met", "", None, 0)),  # met exactly when due
        # while waiting for the customer
        (3 * HOUR, mon(12), None, ClockState(3600, 10800, None, "paused", WAITING, None, 7200)),
        (HOUR // 2, mon(12), None, ClockState(3600, 1800, mon(10, 30), "breached", WAITING, mon(10, 30), 0)),
        # running again after the customer answered
        (3 * HOUR, mon(14, 30), None, ClockState(5400, 10800, mon(16), "running", "", None, 5400)),
        (HOUR, mon(14, 30), None, ClockState(5400, 3600, mon(11), "breached", "", mon(11), 0)),
        # resolved but not counted as met: the clock stands still
        (3 * HOUR, mon(16), None, ClockState(7200, 10800, None, "paused", "resolved", None, 3600)),
    ],
)
def test_measure_a_paused_and_resolved_ticket(
    target: int, now: datetime, met: datetime | None, expected: ClockState
) -> None:
    assert _measure(DAY, target, now, met) == expected


def test_a_reopen_after_resolve_resumes_the_clock() -> None:
    history = ((il(2026, 6, 15, 10), "new"), (il(2026, 6, 15, 11), "resolved"), (il(2026, 6, 15, 13), "open"))
    state = _measure(history, 3 * HOUR, il(2026, 6, 15, 14), None)
    assert (state.state, state.elapsed_seconds, state.due_at) == ("running", 2 * HOUR, il(2026, 6, 15, 15))
    resolved = _measure(history[:2], 3 * HOUR, il(2026, 6, 15, 12), None)
    assert (resolved.state, resolved.paused_reason, resolved.elapsed_seconds) == ("paused", "resolved", HOUR)


def test_the_clock_waits_over_the_weekend() -> None:
    history = ((il(2026, 6, 11, 16, 30), "new"),)  # a Thursday
    friday = _measure(history, HOUR, il(2026, 6, 12, 12), None)
    assert (friday.state, friday.elapsed_seconds, friday.due_at) == ("running", 1800, il(2026, 6, 14, 8, 30))
    sunday = _measure(history, HOUR, il(2026, 6, 14, 8, 45), None)
    assert (sunday.state, sunday.breached_at, sunday.remaining_seconds) == ("breached", il(2026, 6, 14, 8, 30), 0)


def test_the_iranian_clock_skips_thursday_and_friday() -> None:
    spans = spans_of((ir(2026, 7, 8, 15, 30), "new"))  # a Wednesday
    state = measure(IR, spans, HOUR, ir(2026, 7, 9, 12), met_at=None)
    assert (state.state, state.due_at, state.remaining_seconds) == ("running", ir(2026, 7, 11, 8, 30), 1800)


def test_remaining_seconds_round_up() -> None:
    spans = spans_of((il(2026, 6, 15, 10), "new"))
    state = measure(IL, spans, HOUR, il(2026, 6, 15, 10, 59, 59, 500000), met_at=None)
    assert (state.elapsed_seconds, state.remaining_seconds, state.state) == (3599, 1, "running")


def test_measure_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="no spans"):
        measure(IL, [], HOUR, il(2026, 6, 15, 10), met_at=None)
    with pytest.raises(ValueError, match="negative"):
        measure(IL, spans_of((il(2026, 6, 15, 10), "new")), -1, il(2026, 6, 15, 10), met_at=None)


# --- escalation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "now", "met", "level"),
    [
        (((il(2026, 6, 15, 10), "new"),), mon(10, 30), None, 0),  # 30 minutes left
        (((il(2026, 6, 15, 10), "new"),), il(2026, 6, 15, 10, 45), None, 1),  # 15 minutes left: warn
        (((il(2026, 6, 15, 10), "new"),), il(2026, 6, 15, 10, 50), None, 1),
        (((il(2026, 6, 15, 10), "new"),), il(2026, 6, 15, 11), None, 0),  # due now, not yet breached
        (((il(2026, 6, 15, 10), "new"),), il(2026, 6, 15, 11, 10), None, 2),
        (((il(2026, 6, 15, 10), "new"),), il(2026, 6, 15, 11, 30), None, 2),  # breached for exactly 30 minutes
        (((il(2026, 6, 15, 10), "new"),), il(2026, 6, 15, 11, 31), None, 3),
        (((mon(15, 50), "new"),), il(2026, 6, 16, 8, 15), None, 2),  # breached at 16:50, 25 business minutes ago
        (((il(2026, 6, 15, 10), "new"), (il(2026, 6, 15, 10, 50), "pending_customer")), il(2026, 6, 15, 11), None, 0),
        (((il(2026, 6, 15, 10), "new"),), il(2026, 6, 15, 12), il(2026, 6, 15, 10, 50), 0),  # met
    ],
)
def test_escalation_levels(
    history: tuple[tuple[datetime, str], ...], now: datetime, met: datetime | None, level: int
) -> None:
    state = _measure(history, HOUR, now, met)
    assert escalation_level(state, 15 * 60, 30 * 60, IL, now) == level
