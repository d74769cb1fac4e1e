"""Dates picked in the Solar Hijri calendar, read back as the Gregorian dates the gateway takes."""

from __future__ import annotations

import pytest

from crm_console.dates import jalali_of, jalali_years, picked_date

pytestmark = pytest.mark.unit


def test_jalali_selects_become_the_gregorian_date() -> None:
    # 1 Farvardin 1405 is Nowruz, 21 March 2026; 15 Azar 1405 is 6 December 2026.
    assert picked_date({"d__jy": "1405", "d__jm": "1", "d__jd": "1"}, "d") == ("2026-03-21", True)
    assert picked_date({"d__jy": "۱۴۰۵", "d__jm": "9", "d__jd": "15"}, "d") == ("2026-12-06", True)
    assert jalali_of("2026-12-06T10:00:00Z") == (1405, 9, 15)


@pytest.mark.parametrize(
    "form",
    [
        {"d__jy": "1405", "d__jm": "7", "d__jd": "31"},  # Mehr has 30 days
        {"d__jy": "1404", "d__jm": "12", "d__jd": "30"},  # Esfand 1404 has 29
        {"d__jy": "1405", "d__jm": "", "d__jd": "3"},  # half picked
    ],
)
def test_a_day_that_does_not_exist_is_refused_not_moved(form: dict[str, str]) -> None:
    assert picked_date(form, "d") == ("", False)


def test_a_plain_date_input_and_an_empty_optional_date_pass_as_sent() -> None:
    assert picked_date({"d": " 2026-12-31 "}, "d") == ("2026-12-31", True)
    assert picked_date({"d__jy": "", "d__jm": "", "d__jd": ""}, "d") == ("", True)
    assert picked_date({}, "d") == ("", True)
    assert jalali_of("") is None and jalali_of("not a date") is None


def test_the_year_select_offers_the_years_around_today_and_the_values_own() -> None:
    years = jalali_years("2010-01-01")
    assert 1388 in years and len(years) == 5
    assert years == sorted(years)
