"""SLA calendars: validation of the typed and the JSON form (naming the field), and the shipped Israeli and Iranian
calendars' data."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import date
from importlib import resources
from typing import Any

import jdatetime
import pytest

from crm_kit.errors import InvalidArgument
from crm_support.sla.calendar import (
    Calendar,
    Holiday,
    Window,
    build_calendar,
    calendar_from_dict,
    calendar_to_dict,
    format_minute,
    parse_minute,
    shipped_calendar,
)

pytestmark = pytest.mark.unit

MONDAY, SUNDAY = 0, 6
NINE_TO_FIVE = (Window(9 * 60, 17 * 60),)


def _fields(error: InvalidArgument) -> list[str]:
    return [field for field, _ in error.field_violations]


def _build(weekly: dict[int, tuple[Window, ...]] | None = None, holidays: list[Holiday] | None = None) -> Calendar:
    return build_calendar("T", "Test", "Asia/Jerusalem", weekly or {MONDAY: NINE_TO_FIVE}, holidays or [])


def _json() -> dict[str, Any]:
    return {
        "code": "T",
        "name": "Test",
        "time_zone": "Asia/Jerusalem",
        "weekly": {"sunday": [["08:00", "12:00"], ["13:00", "17:00"]], "monday": [["08:00", "24:00"]]},
        "holidays": [
            {"date": "2026-09-20", "name": "ערב יום כיפור", "windows": [["08:00", "13:00"]]},
            {"date": "2026-09-21", "name": "יום כיפור", "windows": []},
        ],
    }


# --- the typed form -----------------------------------------------------------------------------------------------


def test_windows_are_stored_sorted_and_missing_days_are_closed() -> None:
    cal = _build({SUNDAY: (Window(13 * 60, 17 * 60), Window(8 * 60, 12 * 60))})
    assert cal.weekly[SUNDAY] == (Window(480, 720), Window(780, 1020))
    assert cal.weekly[MONDAY] == ()
    assert cal.windows_on(date(2026, 6, 14)) == cal.weekly[SUNDAY]  # a Sunday


@pytest.mark.parametrize(
    ("windows", "field", "words"),
    [
        ((Window(480, 720), Window(600, 780)), "weekly.sunday[1]", "overlaps weekly.sunday[0]"),
        ((Window(600, 780), Window(480, 720)), "weekly.sunday[0]", "overlaps weekly.sunday[1]"),
        ((Window(480, 1020), Window(600, 660)), "weekly.sunday[1]", "overlaps"),
        ((Window(720, 780), Window(780, 840)), "weekly.sunday[1]", "touches"),
        ((Window(480, 480),), "weekly.sunday[0]", "at or before"),
        ((Window(600, 480),), "weekly.sunday[0]", "at or before"),
        ((Window(-1, 480),), "weekly.sunday[0]", "00:00..24:00"),
        ((Window(480, 1441),), "weekly.sunday[0]", "00:00..24:00"),
    ],
)
def test_bad_windows_are_rejected_naming_the_field(windows: tuple[Window, ...], field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _build({MONDAY: NINE_TO_FIVE, SUNDAY: windows})
    assert _fields(caught.value) == [field]
    assert words in caught.value.field_violations[0][1]


def test_touching_windows_are_rejected_as_one_window_written_twice() -> None:
    with pytest.raises(InvalidArgument, match="merge them into one window"):
        _build({MONDAY: (Window(720, 780), Window(780, 840))})
    assert _build({MONDAY: (Window(720, 840),)}).weekly[MONDAY] == (Window(720, 840),)


def test_a_whole_day_window_ends_at_24_00() -> None:
    assert _build({MONDAY: (Window(0, 1440),)}).weekly[MONDAY] == (Window(0, 1440),)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "Asia", "../etc/passwd", "/usr/share/zoneinfo/UTC", "asia/x"])
def test_unknown_time_zone_is_rejected(zone: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_calendar("T", "Test", zone, {MONDAY: NINE_TO_FIVE}, [])
    assert _fields(caught.value) == ["time_zone"]


def test_a_week_without_open_time_is_rejected() -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_calendar("T", "Test", "UTC", {}, [])
    assert _fields(caught.value) == ["weekly"]


def test_weekday_keys_are_0_to_6() -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_calendar("T", "Test", "UTC", {MONDAY: NINE_TO_FIVE, 7: NINE_TO_FIVE}, [])
    assert _fields(caught.value) == ["weekly"]


def test_a_holiday_date_twice_is_rejected() -> None:
    day = date(2026, 9, 21)
    with pytest.raises(InvalidArgument) as caught:
        _build(holidays=[Holiday(day, "a"), Holiday(date(2026, 9, 22), "b"), Holiday(day, "c")])
    assert _fields(caught.value) == ["holidays[2].date"]
    assert "holidays[0]" in caught.value.field_violations[0][1]


def test_holiday_windows_and_names_are_checked() -> None:
    holiday = Holiday(date(2026, 9, 20), " ", (Window(480, 600), Window(540, 780)))
    with pytest.raises(InvalidArgument) as caught:
        _build(holidays=[holiday])
    assert _fields(caught.value) == ["holidays[0].name", "holidays[0].windows[1]"]


def test_holiday_windows_are_stored_sorted() -> None:
    holiday = Holiday(date(2026, 9, 20), "eve", (Window(600, 780), Window(480, 540)))
    cal = _build(holidays=[holiday])
    assert cal.holidays[date(2026, 9, 20)].windows == (Window(480, 540), Window(600, 780))
    assert cal.windows_on(date(2026, 9, 20)) == (Window(480, 540), Window(600, 780))


@pytest.mark.parametrize("code", ["", "a b", "x" * 21, "קוד"])
def test_bad_codes_are_rejected(code: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_calendar(code, "Test", "UTC", {MONDAY: NINE_TO_FIVE}, [])
    assert _fields(caught.value) == ["code"]


def test_every_violation_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_calendar("", "", "Nowhere/Land", {MONDAY: (Window(600, 500),)}, [])
    assert _fields(caught.value) == ["code", "name", "time_zone", "weekly.monday[0]", "weekly"]


# --- the JSON form ------------------------------------------------------------------------------------------------


def test_json_round_trip() -> None:
    cal = calendar_from_dict(_json())
    assert cal.weekly[SUNDAY] == (Window(480, 720), Window(780, 1020))
    assert cal.weekly[MONDAY] == (Window(480, 1440),)
    assert cal.holidays[date(2026, 9, 21)] == Holiday(date(2026, 9, 21), "יום כיפור", ())
    out = calendar_to_dict(cal)
    assert out["weekly"]["monday"] == [["08:00", "24:00"]]
    assert out["weekly"]["friday"] == []
    assert calendar_from_dict(out) == cal
    assert calendar_from_dict(json.loads(json.dumps(out))) == cal


@pytest.mark.parametrize(
    ("text", "end", "minute"),
    [
        ("00:00", False, 0),
        ("08:30", False, 510),
        ("23:59", True, 1439),
        ("24:00", True, 1440),
        ("24:00", False, None),
        ("25:00", True, None),
        ("08:60", False, None),
        ("8:00", False, None),
        ("08:00:00", False, None),
        ("24:01", True, None),
        (800, False, None),
    ],
)
def test_parse_minute(text: object, end: bool, minute: int | None) -> None:
    assert parse_minute(text, end=end) == minute
    if minute is not None:
        assert format_minute(minute) == text


def _set(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    d = _json()
    target: Any = d
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("weekly", "sunday", 1), ["13:00", "25:00"], "weekly.sunday[1]"),
        (("weekly", "sunday", 0), ["24:00", "24:00"], "weekly.sunday[0]"),
        (("weekly", "sunday", 1), ["11:00", "14:00"], "weekly.sunday[1]"),
        (("weekly", "sunday", 1), ["12:00", "14:00"], "weekly.sunday[1]"),
        (("weekly", "sunday", 0), ["08:00"], "weekly.sunday[0]"),
        (("weekly", "sunday", 0), "08:00-12:00", "weekly.sunday[0]"),
        (("weekly", "sunday"), "08:00-17:00", "weekly.sunday"),
        (("weekly", "sun"), [], "weekly.sun"),
        (("weekly",), [], "weekly"),
        (("weekly",), _DELETE, "weekly"),
        (("time_zone",), "Asia/Atlantis", "time_zone"),
        (("time_zone",), _DELETE, "time_zone"),
        (("code",), 7, "code"),
        (("name",), _DELETE, "name"),
        (("note",), ["x"], "note"),
        (("colour",), "red", "colour"),
        (("holidays",), {}, "holidays"),
        (("holidays", 0), "2026-09-20", "holidays[0]"),
        (("holidays", 1, "date"), "2026-09-20", "holidays[1].date"),
        (("holidays", 1, "date"), "2026-02-30", "holidays[1].date"),
        (("holidays", 1, "date"), "20260921", "holidays[1].date"),
        (("holidays", 1, "date"), _DELETE, "holidays[1].date"),
        (("holidays", 1, "name"), None, "holidays[1].name"),
        (("holidays", 1, "name"), "", "holidays[1].name"),
        (("holidays", 1, "kind"), "public", "holidays[1].kind"),
        (("holidays", 0, "windows"), [["08:00", "13:00"], ["12:00", "14:00"]], "holidays[0].windows[1]"),
        (("holidays", 0, "windows", 0), ["13:00", "08:00"], "holidays[0].windows[0]"),
    ],
)
def test_bad_json_is_rejected_naming_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        calendar_from_dict(_set(path, value))
    assert _fields(caught.value) == [field]
    assert caught.value.message.startswith(f"invalid calendar: {field}: ")


def test_a_holiday_date_twice_in_json_names_the_later_one() -> None:
    d = _json()
    d["holidays"] += [{"date": "2026-10-01", "name": "x"}, {"date": "2026-09-21", "name": "again"}]
    with pytest.raises(InvalidArgument) as caught:
        calendar_from_dict(d)
    assert _fields(caught.value) == ["holidays[3].date"]


def test_holiday_windows_default_to_closed() -> None:
    d = _json()
    d["holidays"] = [{"date": "2026-10-01", "name": "x"}]
    assert calendar_from_dict(d).holidays[date(2026, 10, 1)].windows == ()


def test_a_calendar_must_be_an_object() -> None:
    with pytest.raises(InvalidArgument) as caught:
        calendar_from_dict([])  # type: ignore[arg-type]
    assert _fields(caught.value) == ["calendar"]


def test_the_input_is_not_modified() -> None:
    d = _json()
    before = copy.deepcopy(d)
    calendar_from_dict(d)
    assert d == before


# --- the shipped calendars ----------------------------------------------------------------------------------------


def test_the_data_files_are_package_data() -> None:
    for name in ("il.json", "ir.json"):
        assert (resources.files("crm_support.sla") / "data" / name).is_file()


def test_shipped_calendars_load_once_and_round_trip() -> None:
    for code in ("IL", "IR"):
        cal = shipped_calendar(code)
        assert cal.code == code
        assert shipped_calendar(code.lower()) is cal
        assert calendar_from_dict(calendar_to_dict(cal)) == cal
        assert "scripts/sla_holidays.py" in cal.note


def test_an_unknown_shipped_calendar_is_rejected() -> None:
    with pytest.raises(InvalidArgument) as caught:
        shipped_calendar("FR")
    assert _fields(caught.value) == ["code"]


def _per_year(cal: Calendar) -> Counter[int]:
    return Counter(day.year for day in cal.holidays)


def test_israel_hours_and_holidays() -> None:
    cal = shipped_calendar("IL")
    assert cal.time_zone == "Asia/Jerusalem"
    assert [cal.weekly[d] for d in (6, 0, 1, 2, 3)] == [(Window(480, 1020),)] * 5
    assert cal.weekly[4] == cal.weekly[5] == ()  # Friday, Saturday
    assert all(_per_year(cal)[year] >= 10 for year in (2026, 2027, 2028))
    closed = {
        date(2026, 9, 12): "ראש השנה",
        date(2026, 9, 13): "ראש השנה",
        date(2026, 9, 21): "יום כיפור",
        date(2026, 4, 2): "פסח",
        date(2026, 4, 8): "שביעי של פסח",
        date(2026, 5, 22): "שבועות",
        date(2026, 4, 22): "יום העצמאות",
        date(2027, 10, 11): "יום כיפור",
        date(2028, 9, 21): "ראש השנה",
    }
    for day, name in closed.items():
        assert cal.holidays[day] == Holiday(day, name, ()), day
    half_day = (Window(480, 780),)
    assert cal.holidays[date(2026, 9, 20)] == Holiday(date(2026, 9, 20), "ערב יום כיפור", half_day)  # a Sunday
    assert cal.holidays[date(2027, 4, 21)] == Holiday(date(2027, 4, 21), "ערב פסח", half_day)  # a Wednesday
    assert date(2026, 9, 11) not in cal.holidays  # Erev Rosh Hashana 5787 is a Friday: closed anyway
    eves = [h for h in cal.holidays.values() if h.windows]
    assert eves and all(h.windows == half_day and h.day.weekday() not in (4, 5) for h in eves)
    assert all(h.name.startswith("ערב") for h in eves)


def test_iran_hours_and_holidays() -> None:
    cal = shipped_calendar("IR")
    assert cal.time_zone == "Asia/Tehran"
    assert [cal.weekly[d] for d in (5, 6, 0, 1, 2)] == [(Window(480, 960),)] * 5
    assert cal.weekly[3] == cal.weekly[4] == ()  # Thursday, Friday
    assert all(_per_year(cal)[year] >= 20 for year in (2026, 2027, 2028))
    assert all(not h.windows for h in cal.holidays.values())
    assert "moon" in cal.note
    assert "نوروز" in cal.holidays[date(2026, 3, 21)].name
    assert "عاشورا" in cal.holidays[date(2026, 6, 25)].name


@pytest.mark.parametrize("solar_year", [1405, 1406, 1407])
def test_iran_solar_holidays_match_the_solar_hijri_calendar(solar_year: int) -> None:
    """Nowruz 1-4 Farvardin, 12 and 13 Farvardin, 14-15 Khordad, 22 Bahman and 29 Esfand, computed with jdatetime."""
    cal = shipped_calendar("IR")
    fixed = [(1, 1), (1, 2), (1, 3), (1, 4), (1, 12), (1, 13), (3, 14), (3, 15), (11, 22), (12, 29)]
    for month, day in fixed:
        gregorian = jdatetime.date(solar_year, month, day).togregorian()
        if gregorian.year <= 2028:
            assert gregorian in cal.holidays, (solar_year, month, day)
    assert jdatetime.date(1405, 1, 1).togregorian() == date(2026, 3, 21)
