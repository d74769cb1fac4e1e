"""Business-hours calendars: weekly windows, holidays and short days, in an IANA time zone.

A calendar is data an administrator edits (the JSON shape of :func:`calendar_to_dict`, PUT through the API):
:func:`calendar_from_dict` checks that shape and :func:`build_calendar` the typed form, both raising
``InvalidArgument`` that names the offending field (``weekly.sunday[1]``, ``holidays[3].date``). Two calendars ship
with the service, Israel and Iran, generated into ``data/`` by ``scripts/sla_holidays.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from importlib import resources
from itertools import pairwise
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_kit.errors import InvalidArgument

MINUTES_PER_DAY = 24 * 60
# Index = date.weekday(): 0 is Monday.
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SHIPPED_CALENDARS: tuple[str, ...] = ("IL", "IR")

_CODE = re.compile(r"[A-Za-z0-9_-]{1,20}")  # the calendars table's key is String(20)
_NAME_LIMIT = 200
_TIME = re.compile(r"(\d{2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_KEYS = frozenset({"code", "name", "time_zone", "weekly", "holidays", "note"})
_HOLIDAY_KEYS = frozenset({"date", "name", "windows"})
_DATA_PACKAGE = "crm_support.sla"

Violations = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Window:
    """Business hours on one local day: [start_minute, end_minute) counted from local midnight, so
    0 <= start < end <= 1440 and 1440 is "24:00". Minutes (not ``time``) because a window may end at midnight."""

    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class Holiday:
    """A date off the weekly pattern: closed all day (no windows) or a short day with its own windows
    (an Israeli holiday eve is 08:00-13:00)."""

    day: date
    name: str
    windows: tuple[Window, ...] = ()


@dataclass(frozen=True)
class Calendar:
    """When the service desk works. ``weekly`` maps ``date.weekday()`` (0 = Monday) to that day's windows, sorted;
    a holiday replaces its date's windows. Build it with :func:`build_calendar` or :func:`calendar_from_dict`,
    which validate. Not hashable (its fields are mappings); the clock keeps its per-year tables in ``_memo``."""

    code: str
    name: str
    time_zone: str
    weekly: Mapping[int, tuple[Window, ...]]
    holidays: Mapping[date, Holiday]
    note: str = ""
    _memo: dict[object, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def windows_on(self, day: date) -> tuple[Window, ...]:
        """The business windows of a local date: its holiday's if it has one, else its weekday's."""
        holiday = self.holidays.get(day)
        if holiday is not None:
            return holiday.windows
        return self.weekly.get(day.weekday(), ())


def build_calendar(
    code: str,
    name: str,
    time_zone: str,
    weekly: Mapping[int, Sequence[Window]],
    holidays: Iterable[Holiday],
    *,
    note: str = "",
) -> Calendar:
    """A validated calendar: a known time zone, windows in range and neither overlapping nor touching (two touching
    windows are one window: write 12:00-14:00, so every schedule has one form), a date at most once among the
    holidays and some open time in the week. Windows may come unsorted; they are stored sorted."""
    violations: Violations = []
    _check_code(code, violations)
    _check_name(name, "name", violations)
    if not isinstance(note, str):
        violations.append(("note", "must be a string"))
    if not _known_zone(time_zone):
        violations.append(("time_zone", f"{time_zone!r} is not an IANA time zone (e.g. Asia/Jerusalem)"))
    violations += [("weekly", f"{key!r} is not a weekday 0..6 (0 = Monday)") for key in weekly if key not in range(7)]
    week = {day: _checked_windows(weekly.get(day, ()), f"weekly.{WEEKDAYS[day]}", violations) for day in range(7)}
    if not any(week.values()):
        violations.append(("weekly", "the week has no open window"))
    days = _checked_holidays(holidays, violations)
    _raise_if_any(violations)
    return Calendar(code, name, time_zone, MappingProxyType(week), MappingProxyType(days), note)


def calendar_from_dict(d: Mapping[str, Any]) -> Calendar:
    """A calendar from its JSON shape (:func:`calendar_to_dict`): weekdays by English name (a missing day is
    closed), times "HH:MM" with "24:00" allowed as an end, holidays as ``{"date", "name", "windows"}`` with no
    windows for a closed day. An optional "note" is kept. Every bad field is reported at once."""
    if not isinstance(d, Mapping):
        raise InvalidArgument("a calendar must be a JSON object", field_violations=[("calendar", "not an object")])
    violations: Violations = [(str(key), "unknown field") for key in d if key not in _KEYS]
    code = _json_text(d, "code", violations)
    name = _json_text(d, "name", violations)
    time_zone = _json_text(d, "time_zone", violations)
    note = _json_text(d, "note", violations, default="")
    weekly = _weekly_from_json(d.get("weekly"), violations)
    holidays = _holidays_from_json(d.get("holidays", []), violations)
    _raise_if_any(violations)
    return build_calendar(code, name, time_zone, weekly, holidays, note=note)


def calendar_to_dict(c: Calendar) -> dict[str, Any]:
    """The calendar's JSON shape, read back by :func:`calendar_from_dict`: all seven weekdays (closed = []),
    holidays by date."""
    out: dict[str, Any] = {"code": c.code, "name": c.name}
    if c.note:
        out["note"] = c.note
    out["time_zone"] = c.time_zone
    out["weekly"] = {WEEKDAYS[day]: _windows_to_json(c.weekly.get(day, ())) for day in range(7)}
    out["holidays"] = [
        {"date": h.day.isoformat(), "name": h.name, "windows": _windows_to_json(h.windows)}
        for h in sorted(c.holidays.values(), key=lambda h: h.day)
    ]
    return out


def shipped_calendar(code: str) -> Calendar:
    """A calendar shipped with the service: "IL" (Israel, Sunday-Thursday) or "IR" (Iran, Saturday-Wednesday),
    with holidays for 2026-2028 from data/il.json and data/ir.json. Iran's lunar (Hijri) holidays depend on the
    sighting of the moon and are announced late: the shipped dates are the expected ones, and an administrator
    corrects them as data (editing the calendar), never in code. One shared instance per code (it is immutable)."""
    key = code.upper() if isinstance(code, str) else ""
    if key not in SHIPPED_CALENDARS:
        raise InvalidArgument(
            f"no shipped calendar {code!r}", field_violations=[("code", f"one of {', '.join(SHIPPED_CALENDARS)}")]
        )
    return _load_shipped(key)


@cache
def _load_shipped(key: str) -> Calendar:
    text = (resources.files(_DATA_PACKAGE) / "data" / f"{key.lower()}.json").read_text(encoding="utf-8")
    return calendar_from_dict(json.loads(text))


def format_minute(minute: int) -> str:
    """Minutes since midnight as "HH:MM" (1440 is "24:00")."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_minute(text: object, *, end: bool) -> int | None:
    """ "HH:MM" as minutes since midnight, None if it is not a time; "24:00" only as an end (``end=True``)."""
    match = _TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[2]) > 59:
        return None
    minute = int(match[1]) * 60 + int(match[2])
    if minute < MINUTES_PER_DAY or (end and minute == MINUTES_PER_DAY):
        return minute
    return None


def _raise_if_any(violations: Violations) -> None:
    if violations:
        first_field, first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise InvalidArgument(f"invalid calendar: {first_field}: {first}{more}", field_violations=violations)


def _check_code(value: object, violations: Violations) -> None:
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        violations.append(("code", "1 to 20 letters, digits, '-' or '_'"))


def _check_name(value: object, path: str, violations: Violations) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > _NAME_LIMIT:
        violations.append((path, f"a non-blank text of at most {_NAME_LIMIT} characters"))


def _known_zone(key: object) -> bool:
    if not isinstance(key, str) or not key:
        return False
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _window_problem(window: object) -> str | None:
    if not isinstance(window, Window):
        return "not a Window"
    start, end = window.start_minute, window.end_minute
    if type(start) is not int or type(end) is not int:
        return "minutes must be integers"
    if not 0 <= start < MINUTES_PER_DAY or not 0 < end <= MINUTES_PER_DAY:
        return "minutes must be within 00:00..24:00"
    if end <= start:
        return f"ends ({format_minute(end)}) at or before it starts ({format_minute(start)})"
    return None


def _checked_windows(windows: Sequence[Window], path: str, violations: Violations) -> tuple[Window, ...]:
    """The windows sorted by start; overlapping or touching ones are reported on the later one's original index."""
    problems = [(f"{path}[{i}]", p) for i, w in enumerate(windows) if (p := _window_problem(w)) is not None]
    if problems:
        violations += problems
        return ()
    order = sorted(range(len(windows)), key=lambda i: windows[i].start_minute)
    for before, after in pairwise(order):
        gap = windows[after].start_minute - windows[before].end_minute
        if gap <= 0:
            how = "overlaps" if gap < 0 else "touches (merge them into one window)"
            violations.append((f"{path}[{after}]", f"{_shown(windows[after])} {how} {path}[{before}]"))
    return tuple(windows[i] for i in order)


def _shown(window: Window) -> str:
    return f"{format_minute(window.start_minute)}-{format_minute(window.end_minute)}"


def _checked_holidays(holidays: Iterable[Holiday], violations: Violations) -> dict[date, Holiday]:
    days: dict[date, Holiday] = {}
    where: dict[date, int] = {}
    for index, holiday in enumerate(holidays):
        path = f"holidays[{index}]"
        if not isinstance(holiday, Holiday):
            violations.append((path, "not a Holiday"))
            continue
        _check_name(holiday.name, f"{path}.name", violations)
        windows = _checked_windows(holiday.windows, f"{path}.windows", violations)
        if not isinstance(holiday.day, date) or isinstance(holiday.day, datetime):
            violations.append((f"{path}.date", "not a date"))
        elif holiday.day in where:
            violations.append((f"{path}.date", f"{holiday.day} is already holidays[{where[holiday.day]}]"))
        else:
            where[holiday.day] = index
            days[holiday.day] = Holiday(holiday.day, holiday.name, windows)
    return days


def _json_text(d: Mapping[str, Any], key: str, violations: Violations, default: str | None = None) -> str:
    value = d.get(key, default)
    if not isinstance(value, str):
        violations.append((key, "required, a string" if value is None else "must be a string"))
        return ""
    return value


def _weekly_from_json(value: object, violations: Violations) -> dict[int, tuple[Window, ...]]:
    if not isinstance(value, Mapping):
        violations.append(("weekly", "required, an object of weekday names (monday..sunday) to windows"))
        return {}
    weekly: dict[int, tuple[Window, ...]] = {}
    for key, windows in value.items():
        if key not in WEEKDAYS:
            violations.append((f"weekly.{key}", "not a weekday name (monday..sunday)"))
            continue
        weekly[WEEKDAYS.index(key)] = _windows_from_json(windows, f"weekly.{key}", violations)
    return weekly


def _windows_from_json(value: object, path: str, violations: Violations) -> tuple[Window, ...]:
    if not isinstance(value, list):
        violations.append((path, 'must be a list of ["HH:MM", "HH:MM"] pairs'))
        return ()
    windows = [_window_from_json(item, f"{path}[{i}]", violations) for i, item in enumerate(value)]
    return tuple(w for w in windows if w is not None)


def _window_from_json(item: object, path: str, violations: Violations) -> Window | None:
    if not isinstance(item, list) or len(item) != 2:
        violations.append((path, 'must be a ["HH:MM", "HH:MM"] pair'))
        return None
    start, end = parse_minute(item[0], end=False), parse_minute(item[1], end=True)
    if start is None or end is None:
        bad = item[0] if start is None else item[1]
        violations.append((path, f"{bad!r} is not a time HH:MM (00:00..23:59, or 24:00 as an end)"))
        return None
    return Window(start, end)


def _holidays_from_json(value: object, violations: Violations) -> list[Holiday]:
    if not isinstance(value, list):
        violations.append(("holidays", "must be a list"))
        return []
    holidays = [_holiday_from_json(item, f"holidays[{i}]", violations) for i, item in enumerate(value)]
    return [h for h in holidays if h is not None]


def _holiday_from_json(item: object, path: str, violations: Violations) -> Holiday | None:
    if not isinstance(item, Mapping):
        violations.append((path, 'must be an object {"date", "name", "windows"}'))
        return None
    violations += [(f"{path}.{key}", "unknown field") for key in item if key not in _HOLIDAY_KEYS]
    day = _date_from_json(item.get("date"))
    if day is None:
        violations.append((f"{path}.date", f"{item.get('date')!r} is not a date YYYY-MM-DD"))
    name = item.get("name")
    if not isinstance(name, str):
        violations.append((f"{path}.name", "required, a string"))
    windows = _windows_from_json(item.get("windows", []), f"{path}.windows", violations)
    if day is None or not isinstance(name, str):
        return None
    return Holiday(day, name, windows)


def _date_from_json(value: object) -> date | None:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _windows_to_json(windows: Iterable[Window]) -> list[list[str]]:
    return [[format_minute(w.start_minute), format_minute(w.end_minute)] for w in windows]
