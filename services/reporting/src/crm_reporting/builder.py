"""The report builder's vocabulary and arithmetic. Pure, no I/O.

A report is measures (leads, deals won, revenue, tickets, …) broken down by up to two dimensions
(source, campaign, rep, team, pipeline, product line, period, …) over a range of the company's
days, with filters. Each measure is counted from one fact table, and a fact table knows only some
dimensions: a measure that does not fit a dimension or a filter is refused, naming both, never
answered with an empty chart.

Periods come in three calendars — Gregorian, the Solar Hijri (Jalali) of Iran and the Hebrew — by
day, week (starting Saturday as in Iran, Sunday as in Israel, or Monday as ISO), month, quarter
(Gregorian and Jalali: the Hebrew year has no quarters), year, or fiscal year starting in a chosen
month. The store sums each fact table by the company's local day; this module turns the days into
periods, so one SQL shape serves every calendar.

Money is kept per currency: revenue and cost are one column per currency seen, never added across
currencies. Averages are kept as sums and counts until the end, so a month's average is the
average of its deals, not of its days' averages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import jdatetime
from babel.dates import format_date
from pyluach import dates as hebrew_dates
from pyluach import hebrewcal

from crm_kit.calendars import JALALI_MONTHS, format_day, is_persian, persian_digits
from crm_kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied, raise_all

MAX_MEASURES = 6
MAX_DIMENSIONS = 2
MAX_FILTER_VALUES = 50
MAX_FILTER_VALUE_LENGTH = 200
# What a report may span, by grain: a daily report of more than a year or a weekly one of more
# than five is a spreadsheet nobody reads and a query that is all cost.
MAX_DAYS = {"day": 400, "week": 5 * 371}
MAX_DAYS_OTHERWISE = 10 * 366
# Rows a report answers; the day rows the store may read before refusing (memory stays bounded).
MAX_ROWS = 5000
MAX_DAY_ROWS = 300_000
PERIOD = "period"
GRAINS = ("day", "week", "month", "quarter", "year", "fiscal_year")
CALENDARS = ("gregorian", "jalali", "hebrew")
WEEK_STARTS = {"monday": 0, "saturday": 5, "sunday": 6}
RANGES = (
    "last_7_days",
    "last_30_days",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
)
JALALI_MONTHS_LATIN = (
    "Farvardin", "Ordibehesht", "Khordad", "Tir", "Mordad", "Shahrivar",
    "Mehr", "Aban", "Azar", "Dey", "Bahman", "Esfand",
)  # fmt: skip


# ---------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Fact:
    """A fact table the store sums: its time column (none: not by period), the column of each
    dimension it knows, and the owner columns a rep's or a team's report is held to (none: the
    facts are nobody's, and only a caller who sees everything may report them)."""

    name: str
    time_column: str
    dimensions: Mapping[str, str]
    rep_column: str = ""
    team_column: str = ""
    # Money parts are summed per this column's value (a currency).
    currency_column: str = ""
    # Rows whose value in this column is "" are not facts of this table (a deal's opening among
    # the stage entries).
    skip_blank: str = ""


@dataclass(frozen=True)
class Part:
    """One aggregate the store computes: count(*) or sum(column), optionally of the rows where a
    boolean column is true (`when`) or false (`when` starting with "not ")."""

    name: str
    fn: str
    column: str = ""
    when: str = ""
    money: bool = False


@dataclass(frozen=True)
class Measure:
    name: str
    fact: str
    # count, money (minor units of the column's currency), seconds or ratio.
    unit: str
    parts: tuple[Part, ...]
    # numerator / denominator parts (an average or a rate); empty: the one part's value.
    ratio: tuple[str, str] = ("", "")


FACTS = {
    "leads": Fact(
        "leads",
        "captured_at",
        {
            "source": "source",
            "campaign": "campaign",
            # The lead's owner now (its latest assignment).
            "rep": "owner_rep_id",
            "team": "owner_team_id",
            "product_line": "product_line",
            "city": "city",
            PERIOD: "",
        },
        rep_column="owner_rep_id",
        team_column="owner_team_id",
    ),
    "deals": Fact(
        "deals",
        "closed_at",
        {
            "source": "source",
            "campaign": "campaign",
            "rep": "owner_rep_id",
            "team": "owner_team_id",
            "pipeline": "pipeline_id",
            "product_line": "product_line",
            PERIOD: "",
        },
        rep_column="owner_rep_id",
        team_column="owner_team_id",
        currency_column="currency_code",
    ),
    "tickets": Fact(
        "tickets",
        "opened_at",
        {
            "kind": "kind",
            "channel": "channel",
            "priority": "priority",
            "queue": "queue_id",
            "agent": "assignee_id",
            PERIOD: "",
        },
    ),
    # Each deal's first entry into each stage (DealStageChanged), by the stage's name.
    "stages": Fact(
        "stages",
        "entered_at",
        {"stage": "stage_name", "pipeline": "pipeline_id", "rep": "owner_rep_id", "team": "owner_team_id", PERIOD: ""},
        rep_column="owner_rep_id",
        team_column="owner_team_id",
        skip_blank="stage_id",
    ),
    "messages": Fact("messages", "at", {"status": "status", "promotion": "promotion_id", PERIOD: ""}),
    # Each campaign's whole actual cost (CampaignChanged): not spread over days, so not by period.
    "campaigns": Fact("campaigns", "", {"source": "source", "campaign": "name"}, currency_column="currency_code"),
}

_COUNT = Part("n", "count")
MEASURES = {
    m.name: m
    for m in (
        Measure("leads", "leads", "count", (_COUNT,)),
        Measure(
            "speed_to_assign_seconds",
            "leads",
            "seconds",
            (
                Part("speed_sum", "sum", "speed_to_assign_seconds"),
                Part("speed_n", "count", "speed_to_assign_seconds"),
            ),
            ratio=("speed_sum", "speed_n"),
        ),
        Measure("deals_won", "deals", "count", (Part("won", "count", when="won"),)),
        Measure("deals_lost", "deals", "count", (Part("lost", "count", when="not won"),)),
        Measure(
            "win_rate",
            "deals",
            "ratio",
            (Part("won", "count", when="won"), Part("closed", "count")),
            ratio=("won", "closed"),
        ),
        Measure("revenue", "deals", "money", (Part("revenue", "sum", "total_minor", when="won", money=True),)),
        Measure("tickets", "tickets", "count", (_COUNT,)),
        Measure("sla_breaches", "tickets", "count", (Part("breaches", "sum", "breaches"),)),
        Measure(
            "resolution_seconds",
            "tickets",
            "seconds",
            (
                Part("resolution_sum", "sum", "resolution_seconds"),
                Part("resolution_n", "count", "resolution_seconds"),
            ),
            ratio=("resolution_sum", "resolution_n"),
        ),
        Measure("deals_reached", "stages", "count", (_COUNT,)),
        Measure("messages", "messages", "count", (_COUNT,)),
        Measure("cost", "campaigns", "money", (Part("cost", "sum", "actual_cost_minor", money=True),)),
    )
}
DIMENSIONS = tuple(dict.fromkeys(d for f in FACTS.values() for d in f.dimensions))


def facts_of(measures: Iterable[str]) -> list[Fact]:
    return [FACTS[f] for f in dict.fromkeys(MEASURES[m].fact for m in measures)]


# ---------------------------------------------------------------- the query


@dataclass(frozen=True)
class Periods:
    grain: str = "month"
    calendar: str = "gregorian"
    # Empty: the calendar's custom (Saturday for Jalali, else Sunday).
    week_start: str = ""
    # The fiscal year's first month, in the calendar's order (1: January, Farvardin or Tishrei).
    fiscal_year_start_month: int = 1

    @property
    def first_weekday(self) -> int:
        return WEEK_STARTS[self.week_start or ("saturday" if self.calendar == "jalali" else "sunday")]


@dataclass(frozen=True)
class Query:
    measures: tuple[str, ...]
    dimensions: tuple[str, ...]
    # Inclusive, the company's local days.
    start: date
    end: date
    periods: Periods = Periods()
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Reach:
    """Whose facts a report counts: a rep's own, a team's, or (both empty) everyone's."""

    rep_id: str = ""
    team_id: str = ""

    @property
    def everything(self) -> bool:
        return not self.rep_id and not self.team_id


def check_names(measures: Sequence[str], dimensions: Sequence[str], filters: Iterable[str], *, saved: bool) -> None:
    """Every name known; a saved report naming one that is gone is FAILED_PRECONDITION (the report
    must be edited), a new query's INVALID_ARGUMENT."""
    unknown = [("measures", m) for m in measures if m not in MEASURES]
    unknown += [("dimensions", d) for d in dimensions if d not in DIMENSIONS]
    unknown += [(f"filters.{f}", f) for f in filters if f not in DIMENSIONS or f == PERIOD]
    if not unknown:
        return
    names = ", ".join(f"{where} {name!r}" for where, name in unknown)
    if saved:
        raise FailedPrecondition(
            f"the saved report names what the report builder no longer has ({names}): edit or delete it",
            reason="SAVED_REPORT_OUTDATED",
            field_violations=[(where, f"{name!r} no longer exists") for where, name in unknown],
        )
    raise_all(
        [
            InvalidArgument(
                f"unknown {where.split('.')[0].rstrip('s')} {name!r}",
                field_violations=[(where, _known(where))],
            )
            for where, name in unknown
        ]
    )


def _known(where: str) -> str:
    if where == "measures":
        return "one of " + ", ".join(MEASURES)
    return "one of " + ", ".join(d for d in DIMENSIONS if where == "dimensions" or d != PERIOD)


def validate(query: Query) -> None:
    """INVALID_ARGUMENT naming every wrong field (names must be known: check_names first)."""
    errors = _shape_errors(query) + _fit_errors(query) + _period_errors(query) + _range_errors(query)
    raise_all(errors)


def _shape_errors(query: Query) -> list[InvalidArgument]:
    errors = []
    if not 1 <= len(query.measures) <= MAX_MEASURES or len(set(query.measures)) != len(query.measures):
        errors.append(_bad("measures", f"1 to {MAX_MEASURES} different measures"))
    if len(query.dimensions) > MAX_DIMENSIONS or len(set(query.dimensions)) != len(query.dimensions):
        errors.append(_bad("dimensions", f"at most {MAX_DIMENSIONS} different dimensions"))
    for name, values in query.filters.items():
        if not 1 <= len(values) <= MAX_FILTER_VALUES:
            errors.append(_bad(f"filters.{name}", f"1 to {MAX_FILTER_VALUES} values"))
        elif any(not v or len(v) > MAX_FILTER_VALUE_LENGTH for v in values):
            errors.append(_bad(f"filters.{name}", f"values of 1 to {MAX_FILTER_VALUE_LENGTH} characters"))
    return errors


def _fit_errors(query: Query) -> list[InvalidArgument]:
    """A measure counted from a fact table that does not know a dimension or filter field."""
    errors = []
    for measure in query.measures:
        fact = FACTS[MEASURES[measure].fact]
        for where, names in (("dimensions", query.dimensions), ("filters", tuple(query.filters))):
            for name in names:
                if name not in fact.dimensions:
                    field_name = where if where == "dimensions" else f"filters.{name}"
                    errors.append(
                        _bad(
                            field_name,
                            f"{measure} cannot be broken down by {name} (it can by {', '.join(fact.dimensions)})",
                        )
                    )
    return errors


def _period_errors(query: Query) -> list[InvalidArgument]:
    p = query.periods
    errors = []
    if p.grain not in GRAINS:
        errors.append(_bad("periods.grain", "one of " + ", ".join(GRAINS)))
    if p.calendar not in CALENDARS:
        errors.append(_bad("periods.calendar", "one of " + ", ".join(CALENDARS)))
    if p.week_start and p.week_start not in WEEK_STARTS:
        errors.append(_bad("periods.week_start", "one of " + ", ".join(WEEK_STARTS)))
    if not 1 <= p.fiscal_year_start_month <= 12:
        errors.append(_bad("periods.fiscal_year_start_month", "a month from 1 to 12"))
    if p.calendar == "hebrew" and p.grain == "quarter":
        errors.append(_bad("periods.grain", "the Hebrew calendar has no quarters: use month or year"))
    if p.calendar == "hebrew" and p.fiscal_year_start_month != 1:
        errors.append(
            _bad(
                "periods.fiscal_year_start_month", "a Hebrew fiscal year starts in Tishrei (1): leap years move months"
            )
        )
    return errors


def _range_errors(query: Query) -> list[InvalidArgument]:
    if query.end < query.start:
        return [_bad("end_date", "on or after start_date")]
    days = (query.end - query.start).days + 1
    limit = MAX_DAYS.get(query.periods.grain, MAX_DAYS_OTHERWISE) if PERIOD in query.dimensions else MAX_DAYS_OTHERWISE
    if days > limit:
        by = f"by {query.periods.grain} " if PERIOD in query.dimensions else ""
        return [_bad("start_date", f"a report {by}spans at most {limit} days; this one spans {days}")]
    return []


def _bad(field_name: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"{field_name}: {description}", field_violations=[(field_name, description)])


def check_reach(query: Query, reach: Reach) -> None:
    """A rep's or a team's report counts only facts that have owners."""
    if reach.everything:
        return
    for fact in facts_of(query.measures):
        if not fact.rep_column:
            raise PermissionDenied(
                f"{fact.name} are not kept per rep or team: only a caller who sees every record reports them",
                reason="REPORT_OUTSIDE_REACH",
            )


# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """One period of a report: its first and last local day and its name in the caller's language."""

    start: date
    end: date


def period_start(day: date, periods: Periods) -> date:
    """The first day of the period `day` falls in."""
    if periods.grain == "day":
        return day
    if periods.grain == "week":
        return day - timedelta(days=(day.weekday() - periods.first_weekday) % 7)
    if periods.calendar == "jalali":
        return _jalali_start(day, periods)
    if periods.calendar == "hebrew":
        return _hebrew_start(day, periods.grain)
    return _gregorian_start(day, periods)


def _months_back(year: int, month: int, first_month: int, size: int) -> tuple[int, int]:
    """The (year, month) a block of `size` months starting at first_month holds (year, month) in."""
    offset = (month - first_month) % size
    month -= offset
    if month < 1:
        return year - 1, month + 12
    return year, month


def _block(grain: str, fiscal_start: int) -> tuple[int, int]:
    """(first month, months) of the block a grain takes: a month, a quarter, a year, a fiscal year."""
    return {"month": (1, 1), "quarter": (1, 3), "year": (1, 12)}.get(grain, (fiscal_start, 12))


def _gregorian_start(day: date, periods: Periods) -> date:
    first, size = _block(periods.grain, periods.fiscal_year_start_month)
    year, month = _months_back(day.year, day.month, first, size)
    return date(year, month, 1)


def _jalali_start(day: date, periods: Periods) -> date:
    j = jdatetime.date.fromgregorian(date=day)
    first, size = _block(periods.grain, periods.fiscal_year_start_month)
    year, month = _months_back(j.year, j.month, first, size)
    start: date = jdatetime.date(year, month, 1).togregorian()
    return start


def _hebrew_start(day: date, grain: str) -> date:
    h = hebrew_dates.GregorianDate.from_pydate(day).to_heb()
    if grain == "month":
        start: date = hebrew_dates.HebrewDate(h.year, h.month, 1).to_pydate()
        return start
    # A year (and a fiscal year, which starts in Tishrei) starts on 1 Tishrei.
    year_start: date = hebrew_dates.HebrewDate(h.year, 7, 1).to_pydate()
    return year_start


def periods_between(start: date, end: date, periods: Periods) -> list[Period]:
    """Every period from the one holding `start` to the one holding `end`, in order."""
    found = []
    first = period_start(start, periods)
    while first <= end:
        following = _next_start(first, periods)
        found.append(Period(first, following - timedelta(days=1)))
        first = following
    return found


def _next_start(start: date, periods: Periods) -> date:
    if periods.grain == "day":
        return start + timedelta(days=1)
    if periods.grain == "week":
        return start + timedelta(days=7)
    # Any day past the longest period of the grain (a 13-month Hebrew year is 385 days) lands in
    # the next period or the one after; step back until it is the next.
    step = {"month": 32, "quarter": 93, "year": 386, "fiscal_year": 386}[periods.grain]
    probe = period_start(start + timedelta(days=step), periods)
    while (before := period_start(probe - timedelta(days=1), periods)) > start:
        probe = before
    return probe


def resolve_range(name: str, today: date, periods: Periods) -> tuple[date, date]:
    """A relative range ("last_quarter") as days, in the report's calendar: last quarter in a
    Jalali report is the previous Jalali quarter."""
    if name == "last_7_days":
        return today - timedelta(days=6), today
    if name == "last_30_days":
        return today - timedelta(days=29), today
    grain = name.split("_", 1)[1]
    by = Periods(grain, periods.calendar, periods.week_start, periods.fiscal_year_start_month)
    if periods.calendar == "hebrew" and grain == "quarter":
        raise InvalidArgument(
            "the Hebrew calendar has no quarters", field_violations=[("range", "the Hebrew calendar has no quarters")]
        )
    current = period_start(today, by)
    if name.startswith("this_"):
        return current, today
    previous = period_start(current - timedelta(days=1), by)
    return previous, current - timedelta(days=1)


# ---------------------------------------------------------------- period names


def period_label(period: Period, periods: Periods, locale: str) -> str:
    """The period's name as a reader of `locale` writes it, in the report's calendar."""
    grain = periods.grain
    if grain in ("day", "week"):
        return _day_label(period.start, periods.calendar, locale)
    if periods.calendar == "jalali":
        return _jalali_label(period.start, grain, locale)
    if periods.calendar == "hebrew":
        return _hebrew_label(period.start, grain, locale)
    return _gregorian_label(period, grain, locale, periods.fiscal_year_start_month)


def native(text: str, locale: str) -> str:
    """Digits as the reader writes them: Persian for fa, else as they are."""
    return persian_digits(text) if is_persian(locale) else text


def _day_label(day: date, calendar: str, locale: str) -> str:
    if calendar == "hebrew":
        h = hebrew_dates.GregorianDate.from_pydate(day).to_heb()
        if locale.startswith("he"):
            text: str = h.hebrew_date_string()
            return text
        return native(f"{h.day} {h.month_name()} {h.year}", locale)
    return format_day(day, locale, calendar + ",long")


def _jalali_label(start: date, grain: str, locale: str) -> str:
    j = jdatetime.date.fromgregorian(date=start)
    persian = is_persian(locale)
    if grain == "month":
        names = JALALI_MONTHS if persian else JALALI_MONTHS_LATIN
        return native(f"{names[j.month - 1]} {j.year}", locale)
    if grain == "quarter":
        quarter = (j.month - 1) // 3 + 1
        text = f"سه‌ماهه {quarter} {j.year}" if persian else f"Q{quarter} {j.year}"
        return native(text, locale)
    return native(_fiscal(j.year, grain, j.month != 1, locale), locale)


def _hebrew_label(start: date, grain: str, locale: str) -> str:
    h = hebrew_dates.GregorianDate.from_pydate(start).to_heb()
    hebrew = locale.startswith("he")
    if grain == "month":
        if hebrew:
            text: str = hebrewcal.Month(h.year, h.month).month_string()
            return text
        return native(f"{h.month_name()} {h.year}", locale)
    if hebrew:
        year: str = hebrewcal.Year(h.year).year_string()
        return year if grain == "year" else f"שנת כספים {year}"
    return native(_fiscal(h.year, grain, False, locale), locale)


def _gregorian_label(period: Period, grain: str, locale: str, fiscal_start: int) -> str:
    start = period.start
    if grain == "month":
        return native(format_date(start, "LLLL y", locale=locale.replace("-", "_")), locale)
    if grain == "quarter":
        quarter = (start.month - 1) // 3 + 1
        if locale.startswith("he"):
            return f"רבעון {quarter} {start.year}"
        return native(f"سه‌ماهه {quarter} {start.year}" if is_persian(locale) else f"Q{quarter} {start.year}", locale)
    return native(_fiscal(start.year, grain, fiscal_start != 1, locale), locale)


def _fiscal(year: int, grain: str, spans_two: bool, locale: str) -> str:
    """A year's name; a fiscal year's "FY2026" (or "FY2026/27" when it spans two calendar years)."""
    if grain == "year":
        return str(year)
    name = f"{year}/{(year + 1) % 100:02d}" if spans_two else str(year)
    if locale.startswith("he"):
        return f"שנת כספים {name}"
    return f"سال مالی {name}" if is_persian(locale) else f"FY{name}"


# ---------------------------------------------------------------- adding up


@dataclass(frozen=True)
class DayRow:
    """What the store read: one fact table's parts for one local day (None: not by period), one
    combination of dimension values, one currency ("" without money)."""

    fact: str
    day: date | None
    keys: tuple[str, ...]
    currency: str
    parts: Mapping[str, float]


@dataclass(frozen=True)
class RowShape:
    """What a store's statement for one fact table returns per row: the local day first (by_day),
    `width` dimension values, the currency (money), then one value per part."""

    by_day: bool
    width: int
    money: bool
    parts: tuple[Part, ...]


def row_shape(fact: Fact, query: Query) -> RowShape:
    parts: dict[str, Part] = {}
    for name in query.measures:
        if MEASURES[name].fact == fact.name:
            parts.update((p.name, p) for p in MEASURES[name].parts)
    width = len([d for d in query.dimensions if d != PERIOD])
    return RowShape(PERIOD in query.dimensions, width, any(p.money for p in parts.values()), tuple(parts.values()))


def day_rows_of(fact: Fact, shape: RowShape, rows: Sequence[Sequence[object]]) -> list[DayRow]:
    """A statement's rows as day rows; more than MAX_DAY_ROWS is refused (the statement reads one
    more to know)."""
    if len(rows) > MAX_DAY_ROWS:
        raise InvalidArgument(
            "the report reads too many rows: filter it, choose fewer dimensions or a shorter range",
            field_violations=[("dimensions", f"more than {MAX_DAY_ROWS} day rows")],
        )
    first = int(shape.by_day)
    values = first + shape.width + int(shape.money)
    return [
        DayRow(
            fact=fact.name,
            day=row[0] if shape.by_day else None,  # type: ignore[arg-type]
            keys=tuple("" if v is None else str(v) for v in row[first : first + shape.width]),
            currency=str(row[values - 1]) if shape.money else "",
            parts={p.name: float(row[values + i]) for i, p in enumerate(shape.parts)},  # type: ignore[arg-type]
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    unit: str = ""
    currency: str = ""


@dataclass
class Row:
    keys: tuple[str, ...]
    labels: tuple[str, ...]
    # One per measure column; None: nothing to average.
    values: list[float | None]


@dataclass
class Result:
    columns: list[Column]
    rows: list[Row]
    total: Row
    periods: list[Period] = field(default_factory=list)


def _key(query: Query, row: DayRow, starts: Mapping[date, date]) -> tuple[str, ...]:
    """The row's key in the report: its dimension values, the period as its first day."""
    keys = []
    values = iter(row.keys)
    for dimension in query.dimensions:
        if dimension == PERIOD:
            keys.append(starts[row.day].isoformat() if row.day else "")
        else:
            keys.append(next(values) or "")
    return tuple(keys)


def add_up(query: Query, rows: Iterable[DayRow], locale: str) -> Result:
    """The report from the store's day rows: parts summed per report row (and in total), money
    per currency, then each measure's value. RESOURCE-bounded: more than MAX_ROWS rows is refused."""
    periods = periods_between(query.start, query.end, query.periods) if PERIOD in query.dimensions else []
    starts: dict[date, date] = {}
    for period in periods:
        for offset in range((period.end - period.start).days + 1):
            starts[period.start + timedelta(days=offset)] = period.start
    sums: dict[tuple[str, ...], dict[str, float]] = {}
    total: dict[str, float] = {}
    currencies: set[str] = set()
    money = {p.name for m in query.measures for p in MEASURES[m].parts if p.money}
    for row in rows:
        key = _key(query, row, starts)
        bucket = sums.setdefault(key, {})
        if len(sums) > MAX_ROWS:
            raise InvalidArgument(
                f"the report has more than {MAX_ROWS} rows: filter it or choose a coarser period",
                field_violations=[("dimensions", f"more than {MAX_ROWS} rows")],
            )
        for name, value in row.parts.items():
            part = f"{name}:{row.currency}" if name in money else f"{row.fact}.{name}"
            if name in money:
                currencies.add(row.currency)
            bucket[part] = bucket.get(part, 0.0) + value
            total[part] = total.get(part, 0.0) + value
    if query.dimensions == (PERIOD,):
        # A time series shows its quiet periods as zeros, not as gaps a chart would bridge.
        for period in periods:
            sums.setdefault((period.start.isoformat(),), {})
    columns = _columns(query, sorted(currencies))
    labels = {p.start.isoformat(): period_label(p, query.periods, locale) for p in periods}
    out = [
        Row(key, tuple(labels.get(k, k) if d == PERIOD else k for d, k in zip(query.dimensions, key, strict=True)),
            _values(columns, parts))
        for key, parts in sums.items()
    ]  # fmt: skip
    out.sort(key=lambda r: _order(query, r))
    return Result(columns, out, Row((), (), _values(columns, total)), periods)


def _order(query: Query, row: Row) -> tuple[object, ...]:
    """Period rows in time order; otherwise the first measure, largest first, then the keys."""
    if PERIOD in query.dimensions:
        return tuple(row.keys)
    first = row.values[0] if row.values else None
    return (-(first or 0.0), row.keys)


def _columns(query: Query, currencies: list[str]) -> list[Column]:
    columns = [Column(d, "dimension") for d in query.dimensions]
    for name in query.measures:
        measure = MEASURES[name]
        if measure.unit == "money":
            columns += [Column(name, "measure", "money", c) for c in currencies or [""]]
        else:
            columns.append(Column(name, "measure", measure.unit))
    return columns


def _values(columns: Sequence[Column], parts: Mapping[str, float]) -> list[float | None]:
    values: list[float | None] = []
    for column in columns:
        if column.kind != "measure":
            continue
        measure = MEASURES[column.name]
        if measure.unit == "money":
            values.append(parts.get(f"{measure.parts[0].name}:{column.currency}", 0.0))
            continue
        prefix = f"{measure.fact}."
        top, bottom = measure.ratio
        if not top:
            values.append(parts.get(prefix + measure.parts[0].name, 0.0))
            continue
        denominator = parts.get(prefix + bottom, 0.0)
        values.append(parts.get(prefix + top, 0.0) / denominator if denominator else None)
    return values
