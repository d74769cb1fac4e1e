"""Targets vs actual, the pure part: period bounds in the company's time zone, the run rate, the
share achieved, a target's validation and the report's rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from crm_kit.errors import InvalidArgument
from crm_reporting import targets
from crm_reporting.main import ReportingSettings
from crm_reporting.targets import Metric, PeriodKind, SubjectKind

pytestmark = pytest.mark.unit

JERUSALEM = targets.time_zone("Asia/Jerusalem")
TEHRAN = targets.time_zone("Asia/Tehran")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("day", "month_first", "quarter_first"),
    [
        (date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1)),
        (date(2026, 3, 31), date(2026, 3, 1), date(2026, 1, 1)),
        (date(2026, 4, 1), date(2026, 4, 1), date(2026, 4, 1)),
        (date(2026, 8, 15), date(2026, 8, 1), date(2026, 7, 1)),
        (date(2026, 12, 31), date(2026, 12, 1), date(2026, 10, 1)),
    ],
)
def test_the_first_day_of_a_month_quarter_and_year(day: date, month_first: date, quarter_first: date) -> None:
    assert targets.first_day_of(PeriodKind.MONTH, day) == month_first
    assert targets.first_day_of(PeriodKind.QUARTER, day) == quarter_first
    assert targets.first_day_of(PeriodKind.YEAR, day) == date(day.year, 1, 1)


def test_a_month_runs_from_local_midnight_to_local_midnight_across_a_clock_change() -> None:
    # Israel moved to summer time on Friday 28 March 2025: March starts at +02:00, ends at +03:00.
    march = targets.period_of(PeriodKind.MONTH, date(2025, 3, 17), JERUSALEM)
    assert (march.first_day, march.last_day) == (date(2025, 3, 1), date(2025, 3, 31))
    assert (march.start, march.end) == (utc(2025, 2, 28, 22), utc(2025, 3, 31, 21))
    assert march.end - march.start == timedelta(days=31) - timedelta(hours=1)
    assert march.time_zone == "Asia/Jerusalem"


def test_quarter_and_year_bounds() -> None:
    q4 = targets.period_of(PeriodKind.QUARTER, date(2026, 11, 15), JERUSALEM)
    assert (q4.first_day, q4.last_day) == (date(2026, 10, 1), date(2026, 12, 31))
    # 1 October is still summer time (+03:00); 1 January is winter time (+02:00).
    assert (q4.start, q4.end) == (utc(2026, 9, 30, 21), utc(2026, 12, 31, 22))
    q1 = targets.period_of(PeriodKind.QUARTER, date(2028, 2, 29), JERUSALEM)
    assert (q1.first_day, q1.last_day) == (date(2028, 1, 1), date(2028, 3, 31))
    year = targets.period_of(PeriodKind.YEAR, date(2026, 6, 1), JERUSALEM)
    assert (year.first_day, year.last_day) == (date(2026, 1, 1), date(2026, 12, 31))
    assert (year.start, year.end) == (utc(2025, 12, 31, 22), utc(2026, 12, 31, 22))
    december = targets.period_of(PeriodKind.MONTH, date(2026, 12, 5), JERUSALEM)
    assert (december.last_day, december.end) == (date(2026, 12, 31), utc(2026, 12, 31, 22))


def test_the_same_instant_is_in_another_month_in_another_zone() -> None:
    # 21:30 UTC on 31 March 2025: 00:30 on 1 April in Tel Aviv (+03:00), 01:00 in Tehran (+03:30),
    # still March in UTC.
    closed = utc(2025, 3, 31, 21, 30)
    assert targets.local_today(closed, JERUSALEM) == date(2025, 4, 1)
    april = targets.period_of(PeriodKind.MONTH, targets.local_today(closed, JERUSALEM), JERUSALEM)
    assert april.start <= closed < april.end
    march_utc = targets.period_of(PeriodKind.MONTH, closed.date(), targets.time_zone("UTC"))
    assert march_utc.start <= closed < march_utc.end and march_utc.first_day == date(2025, 3, 1)
    # 20:45 UTC: 23:45 in Tel Aviv (still March) but 00:15 on 1 April in Tehran.
    late = utc(2025, 3, 31, 20, 45)
    assert targets.local_today(late, JERUSALEM) == date(2025, 3, 31)
    assert targets.local_today(late, TEHRAN) == date(2025, 4, 1)


def test_a_day_whose_midnight_the_clock_skips_starts_when_the_clock_reads_one() -> None:
    # Brazil started summer time at 00:00 on 4 November 2018: clocks went from 23:59:59 to 01:00.
    sao_paulo = targets.time_zone("America/Sao_Paulo")
    start = targets.local_midnight(date(2018, 11, 4), sao_paulo)
    assert start == utc(2018, 11, 4, 3)
    assert start.astimezone(sao_paulo).hour == 1
    assert targets.local_midnight(date(2018, 11, 3), sao_paulo) == utc(2018, 11, 3, 3)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        targets.time_zone("Asia/Atlantis")
    # The service's setting refuses it when it starts, not at the first report.
    with pytest.raises(ValidationError, match="company_time_zone"):
        ReportingSettings(company_time_zone="Asia/Atlantis")
    assert ReportingSettings().company_time_zone == "Asia/Jerusalem"
    assert ReportingSettings(company_time_zone="Asia/Tehran").company_time_zone == "Asia/Tehran"


def test_elapsed_fraction_and_run_rate_by_time() -> None:
    april = targets.period_of(PeriodKind.MONTH, date(2026, 4, 1), JERUSALEM)  # 30 days, no clock change
    a_third = april.start + timedelta(days=10)
    assert targets.elapsed_fraction(april, a_third) == pytest.approx(1 / 3)
    assert targets.run_rate(1_000_000, april, a_third) == 3_000_000
    # Rounded half up in integers: 1 deal after 40 % of the month runs at 2.5 → 3.
    assert targets.run_rate(1, april, april.start + timedelta(days=12)) == 3
    # 2 deals after 3 of 30 days: exactly 20.
    assert targets.run_rate(2, april, april.start + timedelta(days=3)) == 20
    # Before the period and after it the projection is the actual.
    assert targets.elapsed_fraction(april, april.start - timedelta(seconds=1)) == 0.0
    assert targets.run_rate(7, april, april.start) == 7
    assert targets.elapsed_fraction(april, april.end) == 1.0
    assert targets.run_rate(7, april, april.end + timedelta(days=3)) == 7


def test_run_rate_counts_real_hours_in_a_month_with_a_clock_change() -> None:
    march = targets.period_of(PeriodKind.MONTH, date(2025, 3, 1), JERUSALEM)  # 743 hours
    half = march.start + (march.end - march.start) / 2
    assert targets.elapsed_fraction(march, half) == pytest.approx(0.5)
    assert targets.run_rate(459_900, march, half) == 919_800
    assert targets.elapsed_fraction(march, march.start + timedelta(hours=371)) == pytest.approx(371 / 743)


def test_achieved_percent_is_rounded_to_two_decimals() -> None:
    assert targets.achieved_percent(1, 3) == 33.33
    assert targets.achieved_percent(2, 3) == 66.67
    assert targets.achieved_percent(150, 100) == 150.0
    assert targets.achieved_percent(0, 100) == 0.0


def draft(**overrides: object) -> targets.TargetDraft:
    values: dict[str, object] = {
        "subject_kind": SubjectKind.REP,
        "subject_id": " rep-dana ",
        "period_kind": PeriodKind.QUARTER,
        "period_day": date(2026, 5, 20),
        "metric": Metric.WON_AMOUNT,
        "amount_minor": 5_000_000,
        "currency_code": "ils",
        "has_amount": True,
        "count": 0,
    }
    values.update(overrides)
    return targets.TargetDraft(**values)  # type: ignore[arg-type]


def violations(error: pytest.ExceptionInfo[InvalidArgument]) -> set[str]:
    return {field for field, _ in error.value.field_violations}


def test_a_target_is_stored_for_the_period_containing_its_day() -> None:
    target = targets.validate_target(draft())
    assert target == targets.Target(
        subject_kind=SubjectKind.REP,
        subject_id="rep-dana",
        period_kind=PeriodKind.QUARTER,
        period_start=date(2026, 4, 1),
        metric=Metric.WON_AMOUNT,
        value=5_000_000,
        currency_code="ILS",
    )
    leads = targets.validate_target(
        draft(
            subject_kind=SubjectKind.SOURCE,
            subject_id=" Radio ",
            period_kind=PeriodKind.MONTH,
            metric=Metric.LEADS,
            has_amount=False,
            amount_minor=0,
            currency_code="",
            count=40,
        )
    )
    assert (leads.subject_id, leads.period_start, leads.value, leads.currency_code) == (
        "radio",
        date(2026, 5, 1),
        40,
        "",
    )


def test_a_repeated_request_is_the_same_subject_period_and_metric_whatever_the_value() -> None:
    stored = targets.validate_target(draft())
    # Another day of the same quarter, another amount (PATCHed since, or a client's retry): the same.
    assert targets.same_request(stored, targets.validate_target(draft(period_day=date(2026, 6, 30), amount_minor=1)))
    for other in (
        draft(subject_id="rep-moshe"),
        draft(subject_kind=SubjectKind.TEAM),
        draft(period_kind=PeriodKind.MONTH),
        draft(period_day=date(2026, 7, 1)),
        draft(metric=Metric.WON_DEALS, has_amount=False, amount_minor=0, currency_code="", count=3),
    ):
        assert not targets.same_request(stored, targets.validate_target(other))
    reused = targets.request_id_in_use()
    assert (reused.reason, reused.metadata) == ("REQUEST_ID_IN_USE", {})


def test_every_missing_field_is_named_at_once() -> None:
    with pytest.raises(InvalidArgument) as error:
        targets.validate_target(
            targets.TargetDraft(subject_kind=None, subject_id="", period_kind=None, period_day=None, metric=None)
        )
    assert violations(error) == {"subject_kind", "period_kind", "period_start", "metric"}
    with pytest.raises(InvalidArgument) as no_id:
        targets.validate_target(draft(subject_id="  "))
    assert violations(no_id) == {"subject_id"}


def test_a_value_must_fit_the_metric() -> None:
    with pytest.raises(InvalidArgument) as amount_and_count:
        targets.validate_target(draft(count=3))
    assert violations(amount_and_count) == {"count"}
    with pytest.raises(InvalidArgument) as no_amount:
        targets.validate_target(draft(has_amount=False))
    assert violations(no_amount) == {"amount"}
    with pytest.raises(InvalidArgument) as bad_amount:
        targets.validate_target(draft(amount_minor=0, currency_code="shekel"))
    assert violations(bad_amount) == {"amount.amount_minor", "amount.currency_code"}
    with pytest.raises(InvalidArgument) as count_with_amount:
        targets.validate_target(draft(metric=Metric.WON_DEALS, count=5))
    assert violations(count_with_amount) == {"amount"}
    with pytest.raises(InvalidArgument) as no_count:
        targets.validate_target(draft(metric=Metric.LEADS, has_amount=False, count=0))
    assert violations(no_count) == {"count"}


def test_subject_ids_and_days_have_limits() -> None:
    with pytest.raises(InvalidArgument) as long_source:
        targets.validate_target(draft(subject_kind=SubjectKind.SOURCE, subject_id="s" * 51))
    assert violations(long_source) == {"subject_id"}
    assert targets.validate_target(draft(subject_kind=SubjectKind.PRODUCT_LINE, subject_id="p" * 100)).subject_id
    with pytest.raises(InvalidArgument) as ancient:
        targets.validate_target(draft(period_day=date(1999, 12, 31)))
    assert violations(ancient) == {"period_start"}
    with pytest.raises(InvalidArgument) as far:
        targets.check_day(date(2100, 1, 1), "date")
    assert violations(far) == {"date"}


def test_an_update_changes_only_the_value_of_the_targets_metric() -> None:
    assert targets.validate_update(Metric.WON_AMOUNT, draft(amount_minor=7_000, currency_code="usd"), ["amount"]) == (
        7_000,
        "USD",
    )
    assert targets.validate_update(Metric.LEADS, draft(has_amount=False, count=12), ["count"]) == (12, "")
    with pytest.raises(InvalidArgument) as identity:
        targets.validate_update(Metric.LEADS, draft(), ["subject_id", "period_start"])
    assert violations(identity) == {"subject_id", "period_start"}
    with pytest.raises(InvalidArgument) as other_value:
        targets.validate_update(Metric.WON_DEALS, draft(count=3), ["amount"])
    assert violations(other_value) == {"amount"}
    with pytest.raises(InvalidArgument) as nothing:
        targets.validate_update(Metric.LEADS, draft(), [])
    assert violations(nothing) == {"update_mask"}
    with pytest.raises(InvalidArgument) as zero:
        targets.validate_update(Metric.WON_DEALS, draft(has_amount=False, count=0), ["count"])
    assert violations(zero) == {"count"}


def stored(target_id: str, **overrides: object) -> targets.StoredTarget:
    return targets.StoredTarget(target_id, targets.validate_target(draft(**overrides)))


def test_report_rows_count_the_targets_currency_deals_and_leads() -> None:
    april = targets.period_of(PeriodKind.QUARTER, date(2026, 4, 1), JERUSALEM)
    now = april.start + (april.end - april.start) / 4
    amount = stored("t-amount")
    deals = stored("t-deals", metric=Metric.WON_DEALS, has_amount=False, count=8)
    leads = stored(
        "t-leads",
        subject_kind=SubjectKind.TEAM,
        subject_id="team-north",
        metric=Metric.LEADS,
        has_amount=False,
        count=100,
    )
    nobody = stored("t-nobody", subject_id="rep-new")
    won = targets.WonDeals()
    won.add("ILS", 2, 1_000_000)
    won.add("USD", 1, 50_000)
    rows = targets.report_rows(
        [amount, deals, leads, nobody],
        {targets.Subject(SubjectKind.REP, "rep-dana"): won},
        {targets.Subject(SubjectKind.TEAM, "team-north"): 30},
        april,
        now,
    )
    by_id = {row.target.id: row for row in rows}
    assert (by_id["t-amount"].actual, by_id["t-amount"].achieved_percent) == (1_000_000, 20.0)
    assert by_id["t-amount"].projected == 4_000_000
    assert by_id["t-amount"].other_currencies == (("USD", 50_000),)
    assert (by_id["t-deals"].actual, by_id["t-deals"].projected, by_id["t-deals"].achieved_percent) == (3, 12, 37.5)
    assert (by_id["t-leads"].actual, by_id["t-leads"].projected) == (30, 120)
    assert (by_id["t-nobody"].actual, by_id["t-nobody"].projected, by_id["t-nobody"].achieved_percent) == (0, 0, 0.0)


def test_a_scope_groups_its_subjects_by_kind() -> None:
    scope = targets.TargetScope(
        subjects=frozenset(
            {
                targets.Subject(SubjectKind.REP, "rep-b"),
                targets.Subject(SubjectKind.TEAM, "team-north"),
                targets.Subject(SubjectKind.REP, "rep-a"),
            }
        )
    )
    assert scope.ids_by_kind() == {SubjectKind.REP: ["rep-a", "rep-b"], SubjectKind.TEAM: ["team-north"]}
    assert targets.TargetScope().ids_by_kind() == {}
