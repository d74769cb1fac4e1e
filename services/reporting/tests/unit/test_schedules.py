"""When a scheduled report is sent next: the first scheduled local hour strictly after a moment,
weekly or monthly, across a clock change; and what a schedule may ask for."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crm_kit.errors import InvalidArgument
from crm_reporting.schedules import When, check, next_run

pytestmark = pytest.mark.unit

JERUSALEM = ZoneInfo("Asia/Jerusalem")
TEHRAN = ZoneInfo("Asia/Tehran")


def test_weekly_is_the_next_such_weekday_at_the_local_hour() -> None:
    sunday_8 = When("weekly", 6, 1, 8)
    # Wednesday 2 December 2026, noon UTC → Sunday 6 December, 08:00 Jerusalem (06:00 UTC).
    assert next_run(sunday_8, datetime(2026, 12, 2, 12, tzinfo=UTC), JERUSALEM) == datetime(2026, 12, 6, 6, tzinfo=UTC)
    # Exactly at the time: the next week's (strictly after).
    at = datetime(2026, 12, 6, 6, tzinfo=UTC)
    assert next_run(sunday_8, at, JERUSALEM) == datetime(2026, 12, 13, 6, tzinfo=UTC)


def test_monthly_on_a_day_every_month_has_and_across_a_clock_change() -> None:
    first_9 = When("monthly", 0, 1, 9)
    # Israel moves to summer time on Friday 27 March 2026: 1 April 09:00 is 06:00 UTC, not 07:00.
    assert next_run(first_9, datetime(2026, 3, 15, tzinfo=UTC), JERUSALEM) == datetime(2026, 4, 1, 6, tzinfo=UTC)
    assert next_run(first_9, datetime(2026, 1, 31, 23, tzinfo=UTC), JERUSALEM) == datetime(2026, 2, 1, 7, tzinfo=UTC)
    # Tehran keeps +03:30 all year.
    assert next_run(When("monthly", 0, 28, 7), datetime(2026, 2, 28, 4, tzinfo=UTC), TEHRAN) == datetime(
        2026, 3, 28, 3, 30, tzinfo=UTC
    )


def test_recipients_are_the_companys_addresses_each_once() -> None:
    kept = check(
        When("weekly", 0, 1, 8), [" Sara@Shop.Example ", "sara@shop.example", "ali@shop.example"], ["shop.example"]
    )
    assert kept == ["sara@shop.example", "ali@shop.example"]
    with pytest.raises(InvalidArgument) as bad:
        check(When("daily", 9, 0, -1), ["x@evil.example", "not-an-address"], ["@shop.example"])
    assert [f for f, _ in bad.value.field_violations] == ["cadence", "hour", "recipients[0]", "recipients[1]"]
    with pytest.raises(InvalidArgument, match="recipients"):
        check(When("weekly", 0, 1, 8), ["sara@shop.example"], [])
    with pytest.raises(InvalidArgument, match="recipients"):
        check(When("weekly", 0, 1, 8), [f"r{i}@shop.example" for i in range(21)], ["shop.example"])
