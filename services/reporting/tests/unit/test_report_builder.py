"""The report builder's rules: periods of three calendars with their names, relative ranges in the
report's calendar, the checks that name the wrong field, and the adding up of day rows into a
report (money per currency, averages of the items, quiet periods as zeros)."""

from __future__ import annotations

from datetime import date

import pytest

from crm_kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from crm_reporting.builder import (
    DayRow,
    Periods,
    Query,
    Reach,
    add_up,
    check_names,
    check_reach,
    period_label,
    periods_between,
    resolve_range,
    validate,
)

pytestmark = pytest.mark.unit

YEAR = (date(2026, 1, 1), date(2026, 12, 31))


def _starts(periods: Periods, start: date = YEAR[0], end: date = YEAR[1]) -> list[str]:
    return [p.start.isoformat() for p in periods_between(start, end, periods)]


def test_gregorian_months_quarters_and_a_fiscal_year_starting_in_april() -> None:
    assert len(_starts(Periods("month"))) == 12
    assert _starts(Periods("quarter")) == ["2026-01-01", "2026-04-01", "2026-07-01", "2026-10-01"]
    assert _starts(Periods("fiscal_year", fiscal_year_start_month=4)) == ["2025-04-01", "2026-04-01"]


def test_weeks_start_on_the_day_the_country_starts_them() -> None:
    # 2026-12-07 is a Monday.
    monday = date(2026, 12, 7)
    assert _starts(Periods("week", "jalali"), monday, monday) == ["2026-12-05"]  # Saturday, Iran
    assert _starts(Periods("week"), monday, monday) == ["2026-12-06"]  # Sunday, Israel
    assert _starts(Periods("week", week_start="monday"), monday, monday) == ["2026-12-07"]


def test_jalali_months_and_years_start_where_iran_starts_them() -> None:
    months = periods_between(date(2026, 3, 21), date(2026, 5, 21), Periods("month", "jalali"))
    # 1 Farvardin 1405 is 21 March 2026; Ordibehesht has 31 days too.
    assert [p.start.isoformat() for p in months] == ["2026-03-21", "2026-04-21"]
    assert months[0].start == date(2026, 3, 21) and months[0].end == date(2026, 4, 20)
    assert period_label(months[0], Periods("month", "jalali"), "fa") == "فروردین ۱۴۰۵"
    assert period_label(months[0], Periods("month", "jalali"), "en") == "Farvardin 1405"
    assert _starts(Periods("year", "jalali")) == ["2025-03-21", "2026-03-21"]


def test_hebrew_months_and_a_year_from_tishrei_with_its_leap_month() -> None:
    # 5787 is a leap year: 13 months from 1 Tishrei (12 September 2026).
    year = periods_between(date(2026, 9, 12), date(2027, 10, 1), Periods("month", "hebrew"))
    assert year[0].start == date(2026, 9, 12) and len(year) == 13
    assert period_label(year[0], Periods("month", "hebrew"), "he") == "תשרי תשפ״ז"
    assert period_label(year[0], Periods("year", "hebrew"), "he") == "תשפ״ז"
    assert period_label(year[0], Periods("month", "hebrew"), "en") == "Tishrei 5787"


def test_relative_ranges_are_in_the_report_calendar() -> None:
    today = date(2026, 12, 7)
    assert resolve_range("last_quarter", today, Periods()) == (date(2026, 7, 1), date(2026, 9, 30))
    # 16 Azar 1405: the last Jalali quarter is Tir to Shahrivar.
    assert resolve_range("last_quarter", today, Periods(calendar="jalali")) == (date(2026, 6, 22), date(2026, 9, 22))
    assert resolve_range("this_year", today, Periods(calendar="hebrew")) == (date(2026, 9, 12), today)
    assert resolve_range("last_30_days", today, Periods()) == (date(2026, 11, 8), today)


def _query(**changes: object) -> Query:
    values: dict[str, object] = {"measures": ("leads",), "dimensions": ("source",), "start": YEAR[0], "end": YEAR[1]}
    values.update(changes)
    return Query(**values)  # type: ignore[arg-type]


def _violations(error: pytest.ExceptionInfo[InvalidArgument]) -> dict[str, str]:
    return dict(error.value.field_violations)


def test_a_measure_that_does_not_fit_a_dimension_names_both() -> None:
    with pytest.raises(InvalidArgument) as error:
        validate(_query(measures=("tickets",), dimensions=("source",)))
    assert "tickets cannot be broken down by source" in _violations(error)["dimensions"]
    with pytest.raises(InvalidArgument) as error:
        validate(_query(measures=("cost",), dimensions=("period",)))
    assert "cost cannot be broken down by period" in _violations(error)["dimensions"]
    with pytest.raises(InvalidArgument) as error:
        validate(_query(measures=("messages",), dimensions=(), filters={"rep": ("r1",)}))
    assert "messages cannot be broken down by rep" in _violations(error)["filters.rep"]
    # Stages are counted from the deals entering them; a closed deal's count has no stage.
    validate(_query(measures=("deals_reached",), dimensions=("rep", "stage")))
    with pytest.raises(InvalidArgument) as error:
        validate(_query(measures=("deals_won",), dimensions=("stage",)))
    assert "deals_won cannot be broken down by stage" in _violations(error)["dimensions"]


def test_each_wrong_field_is_named() -> None:
    with pytest.raises(InvalidArgument) as error:
        validate(
            _query(
                measures=(),
                dimensions=("source", "rep", "team"),
                start=YEAR[1],
                end=YEAR[0],
                periods=Periods("fortnight", "mayan", "friday", 13),
            )
        )
    assert set(_violations(error)) >= {
        "measures",
        "dimensions",
        "end_date",
        "periods.grain",
        "periods.calendar",
        "periods.week_start",
        "periods.fiscal_year_start_month",
    }
    with pytest.raises(InvalidArgument) as error:
        validate(_query(periods=Periods("quarter", "hebrew")))
    assert "no quarters" in _violations(error)["periods.grain"]


def test_a_range_too_long_for_its_grain_is_refused() -> None:
    with pytest.raises(InvalidArgument) as error:
        validate(_query(dimensions=("period",), periods=Periods("day"), start=date(2024, 1, 1)))
    assert "at most 400 days" in _violations(error)["start_date"]
    validate(_query(dimensions=("period",), periods=Periods("month"), start=date(2024, 1, 1)))


def test_unknown_names_are_invalid_in_a_query_and_outdated_in_a_saved_report() -> None:
    with pytest.raises(InvalidArgument) as error:
        check_names(["leads", "happiness"], ["weather"], ["period"], saved=False)
    assert set(_violations(error)) == {"measures", "dimensions", "filters.period"}
    with pytest.raises(FailedPrecondition) as outdated:
        check_names(["happiness"], [], [], saved=True)
    assert outdated.value.reason == "SAVED_REPORT_OUTDATED" and "happiness" in outdated.value.message


def test_facts_without_owners_are_only_for_callers_who_see_everything() -> None:
    check_reach(_query(measures=("tickets",), dimensions=()), Reach())
    check_reach(_query(measures=("leads", "revenue")), Reach(rep_id="r1"))
    with pytest.raises(PermissionDenied):
        check_reach(_query(measures=("leads", "messages"), dimensions=()), Reach(team_id="t1"))


def test_adding_up_keeps_money_per_currency_and_averages_the_items() -> None:
    query = _query(measures=("deals_won", "revenue", "win_rate", "speed_to_assign_seconds"))
    rows = [
        DayRow("deals", None, ("radio",), "ILS", {"won": 2, "revenue": 5000, "closed": 4}),
        DayRow("deals", None, ("radio",), "USD", {"won": 1, "revenue": 700, "closed": 1}),
        DayRow("deals", None, ("web",), "ILS", {"won": 0, "revenue": 0, "closed": 3}),
        DayRow("leads", None, ("radio",), "", {"speed_sum": 30, "speed_n": 3}),
    ]
    result = add_up(query, rows, "en")
    names = [(c.name, c.currency) for c in result.columns]
    assert names == [
        ("source", ""),
        ("deals_won", ""),
        ("revenue", "ILS"),
        ("revenue", "USD"),
        ("win_rate", ""),
        ("speed_to_assign_seconds", ""),
    ]
    by_source = {r.keys[0]: r.values for r in result.rows}
    assert by_source["radio"] == [3, 5000, 700, 0.6, 10.0]
    # web: no lead was assigned, so there is no average (not a zero).
    assert by_source["web"] == [0, 0, 0, 0.0, None]
    assert [r.keys[0] for r in result.rows] == ["radio", "web"]
    assert result.total.values == [3, 5000, 700, 3 / 8, 10.0]


def test_a_time_series_shows_quiet_periods_as_zeros_in_order() -> None:
    query = _query(dimensions=("period",), start=date(2026, 1, 1), end=date(2026, 3, 31))
    rows = [
        DayRow("leads", date(2026, 3, 2), (), "", {"n": 4}),
        DayRow("leads", date(2026, 1, 31), (), "", {"n": 1}),
        DayRow("leads", date(2026, 3, 30), (), "", {"n": 2}),
    ]
    result = add_up(query, rows, "en")
    assert [(r.keys, r.labels, r.values) for r in result.rows] == [
        (("2026-01-01",), ("January 2026",), [1]),
        (("2026-02-01",), ("February 2026",), [0.0]),
        (("2026-03-01",), ("March 2026",), [6]),
    ]


def test_too_many_rows_is_refused_not_truncated() -> None:
    rows = [DayRow("leads", None, (f"c{i}",), "", {"n": 1}) for i in range(5001)]
    with pytest.raises(InvalidArgument, match="more than 5000 rows"):
        add_up(_query(dimensions=("campaign",)), rows, "en")
