"""Days as Israel and Iran write them (crm_kit.calendars)."""

from datetime import date

import pytest

from crm_kit import calendars

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("day", "jalali"),
    [
        (date(2026, 12, 3), (1405, 9, 12)),
        (date(2026, 3, 21), (1405, 1, 1)),  # Nowruz
        (date(2026, 3, 20), (1404, 12, 29)),  # the last day of 1404 (a common year)
        (date(2025, 3, 20), (1403, 12, 30)),  # 30 Esfand of the leap year 1403
    ],
)
def test_the_solar_hijri_day_of_a_gregorian_day(day: date, jalali: tuple[int, int, int]) -> None:
    assert calendars.jalali(day) == jalali


@pytest.mark.parametrize(
    ("locale", "spec", "expected"),
    [
        ("fa-IR", "", "۱۴۰۵/۰۹/۱۲"),
        ("fa", "long", "۱۲ آذر ۱۴۰۵"),
        ("fa_IR", "long,latn", "12 آذر 1405"),
        ("fa-IR", "gregorian", "۲۰۲۶/۱۲/۳"),
        ("he-IL", "", "3.12.2026"),
        ("he-IL", "long", "3 בדצמבר 2026"),
        ("he-IL", "jalali", "1405/09/12"),
        ("en-US", "", "12/3/26"),
        ("en-US", " LONG ", "December 3, 2026"),
    ],
)
def test_format_day_per_locale_and_spec(locale: str, spec: str, expected: str) -> None:
    assert calendars.format_day(date(2026, 12, 3), locale, spec) == expected


@pytest.mark.parametrize("spec", ["lng", "long,short", "jalali,gregorian", "latn,native", "long;latn"])
def test_an_unknown_or_contradictory_spec_is_refused_by_name(spec: str) -> None:
    with pytest.raises(calendars.UnknownDateFormat):
        calendars.format_day(date(2026, 12, 3), "fa-IR", spec)


def test_persian_digits_leave_everything_else() -> None:
    assert calendars.persian_digits("RR123IL 2026") == "RR۱۲۳IL ۲۰۲۶"
