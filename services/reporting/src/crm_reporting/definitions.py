"""A report definition (proto) read as a checked builder query: the one reading, for a run, a save
and a scheduled delivery."""

from __future__ import annotations

from datetime import date

from crm.reporting.v1 import report_builder_pb2 as pb
from crm_kit.errors import InvalidArgument, require
from crm_reporting import builder
from crm_reporting.targets import FIRST_DAY, LAST_DAY


def _day(value: str, field_name: str) -> date:
    """A report's day: ISO, in this century (anything else is a typo, and a year 9999 would overflow)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidArgument(
            f"{field_name}: not a date of 2000-2099",
            field_violations=[(field_name, "an ISO date (YYYY-MM-DD) from 2000-01-01 to 2099-12-31")],
        )
    return day


def to_query(definition: pb.ReportDefinition, today: date, *, saved: bool = False) -> builder.Query:
    """The definition as a checked query: INVALID_ARGUMENT naming every wrong field (a saved
    report's removed names: FAILED_PRECONDITION)."""
    filters: dict[str, tuple[str, ...]] = {}
    for f in definition.filters:
        if f.field in filters:
            raise InvalidArgument(f"filters.{f.field} given twice", field_violations=[(f"filters.{f.field}", "once")])
        filters[f.field] = tuple(f.values)
    builder.check_names(definition.measures, definition.dimensions, filters, saved=saved)
    periods = builder.Periods(
        definition.grain or "month",
        definition.calendar or "gregorian",
        definition.week_start,
        definition.fiscal_year_start_month or 1,
    )
    if definition.range:
        if definition.range not in builder.RANGES:
            raise InvalidArgument(
                f"range: unknown {definition.range!r}",
                field_violations=[("range", "one of " + ", ".join(builder.RANGES))],
            )
        start, end = builder.resolve_range(definition.range, today, periods)
    else:
        require({"start_date": definition.start_date, "end_date": definition.end_date})
        start, end = _day(definition.start_date, "start_date"), _day(definition.end_date, "end_date")
    query = builder.Query(tuple(definition.measures), tuple(definition.dimensions), start, end, periods, filters)
    builder.validate(query)
    return query
