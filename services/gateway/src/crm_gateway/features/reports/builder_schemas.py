"""The report builder's bodies (reporting's ReportBuilderService; docs/architecture.md, "The
report builder"). Measure and dimension names are checked by reporting, which owns the catalogue
(GET /reports/builder/catalog): a saved report may name one since removed, and still reads."""

from __future__ import annotations

import builtins
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt, StringConstraints

from crm_gateway.convert import NOT_BLANK, STRIPPED, IsoDate

Name = Annotated[str, StringConstraints(min_length=1, max_length=50)]
FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Grain = Literal["day", "week", "month", "quarter", "year", "fiscal_year"]
Calendar = Literal["gregorian", "jalali", "hebrew"]
WeekStart = Literal["", "saturday", "sunday", "monday"]
Range = Literal[
    "",
    "last_7_days",
    "last_30_days",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
]
Role = Literal["admin", "sales_manager", "sales_rep", "orders_clerk", "service_agent", "marketing"]
Locale = Literal["he", "fa", "en"]


class PeriodsIn(BaseModel):
    grain: Grain = "month"
    calendar: Calendar = "gregorian"
    # "": Saturday for Jalali (Iran), else Sunday (Israel).
    week_start: WeekStart = ""
    # The fiscal year's first month in the calendar's order (1: January, Farvardin or Tishrei).
    fiscal_year_start_month: Annotated[StrictInt, Field(ge=1, le=12)] = 1


class ReportDefinitionIn(BaseModel):
    """What to count (measures), by what (up to two dimensions; `period` by the periods below),
    which facts (filters: a dimension's values), over which days: a relative `range` in the
    report's calendar, or start_date and end_date (inclusive, the company's days)."""

    measures: Annotated[builtins.list[Name], Field(min_length=1, max_length=6)]
    dimensions: Annotated[builtins.list[Name], Field(max_length=2)] = []
    periods: PeriodsIn = PeriodsIn()
    filters: Annotated[
        dict[Name, Annotated[builtins.list[FilterValue], Field(min_length=1, max_length=50)]], Field(max_length=8)
    ] = {}
    range: Range = ""
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None


class Periods(BaseModel):
    grain: str
    calendar: str
    week_start: str
    fiscal_year_start_month: int


class ReportDefinition(BaseModel):
    measures: builtins.list[str]
    dimensions: builtins.list[str]
    periods: Periods
    filters: dict[str, builtins.list[str]]
    range: str
    start_date: date | None
    end_date: date | None


class ReportColumn(BaseModel):
    name: str
    kind: Literal["dimension", "measure"]
    # A measure's: count, money (minor units of currency_code), seconds or ratio (0 to 1).
    unit: str
    currency_code: str
    # The header in the request's language (a money column's with its currency).
    label: str = ""


class ReportRow(BaseModel):
    # Per dimension: the value (a period's first day, YYYY-MM-DD) and how to show it.
    keys: builtins.list[str]
    labels: builtins.list[str]
    # Per measure column; null: nothing to average (no closed deal, no resolved ticket).
    values: builtins.list[float | None]


class ChartSpec(BaseModel):
    """How the console draws it: a line over periods, else bars; one series per value of the
    second dimension (or per measure column without one)."""

    type: Literal["line", "bar", "none"]
    x: str
    series: str
    # The measure column drawn (index into the measure columns).
    measure: int


class ReportResult(BaseModel):
    columns: builtins.list[ReportColumn]
    rows: builtins.list[ReportRow]
    total: ReportRow
    # The days reported (a relative range resolved).
    start_date: date
    end_date: date
    chart: ChartSpec
    # "Total" in the request's language.
    total_label: str = ""


class CatalogMeasure(BaseModel):
    name: str
    unit: str
    dimensions: builtins.list[str]
    # Whether reps and managers may report it (its facts have owners).
    owned: bool


class ReportCatalog(BaseModel):
    measures: builtins.list[CatalogMeasure]
    grains: builtins.list[str]
    calendars: builtins.list[str]
    week_starts: builtins.list[str]
    ranges: builtins.list[str]


class SavedReportIn(BaseModel):
    name: Annotated[str, StringConstraints(max_length=200), STRIPPED, NOT_BLANK]
    definition: ReportDefinitionIn
    # Roles that also see it: of team_id when set (a manager's: their own team only), else of the company.
    shared_roles: Annotated[builtins.list[Role], Field(max_length=6)] = []
    team_id: Annotated[str, StringConstraints(max_length=64)] = ""
    request_id: Annotated[str, StringConstraints(max_length=200)] = ""


class SavedReport(BaseModel):
    id: str
    name: str
    definition: ReportDefinition
    owner_id: str
    team_id: str
    shared_roles: builtins.list[str]
    create_time: datetime | None


class SavedReports(BaseModel):
    reports: builtins.list[SavedReport]


Address = Annotated[str, StringConstraints(min_length=3, max_length=254), STRIPPED]


class ReportScheduleIn(BaseModel):
    """When and to whom the saved report is e-mailed (PDF with a PNG chart), at the company's local
    hour. Addresses must be of the company's mail domains (reporting checks; 422 naming the one)."""

    cadence: Literal["weekly", "monthly"]
    # weekly: 0 Monday … 6 Sunday.
    weekday: Annotated[StrictInt, Field(ge=0, le=6)] = 0
    # monthly: 1-28 (a day every month has).
    day_of_month: Annotated[StrictInt, Field(ge=1, le=28)] = 1
    hour: Annotated[StrictInt, Field(ge=0, le=23)]
    recipients: Annotated[builtins.list[Address], Field(min_length=1, max_length=20)]
    # The language of the e-mail, the PDF and period names.
    locale: Locale = "he"
    request_id: Annotated[str, StringConstraints(max_length=200)] = ""


class ReportSchedule(BaseModel):
    id: str
    saved_report_id: str
    report_name: str
    owner_id: str
    cadence: str
    weekday: int
    day_of_month: int
    hour: int
    recipients: builtins.list[str]
    locale: str
    next_run_time: datetime | None
    last_run_time: datetime | None
    # Why the last delivery was not made ("" when it was).
    last_error: str
    create_time: datetime | None


class ReportSchedules(BaseModel):
    schedules: builtins.list[ReportSchedule]
