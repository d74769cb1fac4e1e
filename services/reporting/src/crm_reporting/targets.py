"""Sales targets and the period maths of targets vs actual. Pure, no I/O.

A period is a Gregorian month, quarter or year in the company's time zone: it starts at local
midnight of its first day and ends (exclusive) at local midnight of the day after its last, so a
deal closed at 23:30 on 31 March in Tel Aviv is a March deal even though it is already 1 April
in UTC a few hours earlier. Month and year bounds come out of the zone's rules (zoneinfo), so a
period that contains a daylight-saving change is an hour shorter or longer than its days times 24.

The run-rate projection extrapolates the actual over the elapsed share of the period by time
(`actual / elapsed_fraction`): at the start of a period one early win projects huge, which is
what a run rate says; before a period starts and after it ends the projection is the actual.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

# The company's zone by name: the chassis' rule (CRM_COMPANY_TIME_ZONE is checked at start).
from crm_kit.company import DEFAULT_TIME_ZONE as DEFAULT_TIME_ZONE
from crm_kit.company import company_zone
from crm_kit.errors import AlreadyExists, InvalidArgument, NotFound

time_zone = company_zone

# Targets are business plans: anything outside this century is a typo.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
MAX_COUNT = 1_000_000_000
SUBJECT_ID_MAX = {"rep": 64, "team": 64, "source": 50, "product_line": 100}
VALUE_FIELDS = frozenset({"amount", "count"})


class PeriodKind(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class SubjectKind(StrEnum):
    REP = "rep"
    TEAM = "team"
    SOURCE = "source"
    PRODUCT_LINE = "product_line"


class Metric(StrEnum):
    WON_AMOUNT = "won_amount"
    WON_DEALS = "won_deals"
    LEADS = "leads"


# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class LocalPeriod:
    """A period of the company's calendar: its local days and the UTC instants [start, end)."""

    kind: PeriodKind
    first_day: date
    last_day: date
    start: datetime
    end: datetime
    time_zone: str


def first_day_of(kind: PeriodKind, day: date) -> date:
    """The first day of the month, quarter or year that contains day."""
    if kind is PeriodKind.YEAR:
        return date(day.year, 1, 1)
    if kind is PeriodKind.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, day.month, 1)


def _next_first_day(kind: PeriodKind, first: date) -> date:
    months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[kind]
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local day, in UTC. Where the clock jumps over midnight (a zone that
    started daylight saving at 00:00) the day starts when the clock reads 01:00: zoneinfo reads
    the missing 00:00 with the offset before the jump, which is that instant."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period_of(kind: PeriodKind, day: date, zone: ZoneInfo) -> LocalPeriod:
    """The period of `kind` that contains the local day."""
    first = first_day_of(kind, day)
    following = _next_first_day(kind, first)
    return LocalPeriod(
        kind=kind,
        first_day=first,
        last_day=date.fromordinal(following.toordinal() - 1),
        start=local_midnight(first, zone),
        end=local_midnight(following, zone),
        time_zone=zone.key,
    )


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def _micros(start: datetime, end: datetime) -> int:
    delta = end - start
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def elapsed_fraction(period: LocalPeriod, now: datetime) -> float:
    """How much of the period has passed by time: 0 before it, 1 after it."""
    if now <= period.start:
        return 0.0
    if now >= period.end:
        return 1.0
    return _micros(period.start, now) / _micros(period.start, period.end)


def run_rate(actual: int, period: LocalPeriod, now: datetime) -> int:
    """actual / elapsed fraction, rounded half up, in integers (minor units or a count): the
    actual itself outside the period."""
    if now <= period.start or now >= period.end:
        return actual
    elapsed = _micros(period.start, now)
    total = _micros(period.start, period.end)
    return (2 * actual * total + elapsed) // (2 * elapsed)


def achieved_percent(actual: int, target: int) -> float:
    """actual / target × 100, rounded to 2 decimals (a target is always positive)."""
    return round(actual * 100 / target, 2) if target > 0 else 0.0


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class TargetDraft:
    """A target as asked for; None where the request left an enum unset."""

    subject_kind: SubjectKind | None
    subject_id: str
    period_kind: PeriodKind | None
    period_day: date | None
    metric: Metric | None
    amount_minor: int = 0
    currency_code: str = ""
    has_amount: bool = False
    count: int = 0


@dataclass(frozen=True)
class Target:
    """A valid target: `value` is minor units of currency_code (won_amount) or a count."""

    subject_kind: SubjectKind
    subject_id: str
    period_kind: PeriodKind
    period_start: date
    metric: Metric
    value: int
    currency_code: str = ""


def _subject_violations(kind: SubjectKind | None, subject_id: str) -> list[tuple[str, str]]:
    if kind is None:
        return [("subject_kind", "must be rep, team, source or product_line")]
    limit = SUBJECT_ID_MAX[kind.value]
    if not subject_id:
        return [("subject_id", "is required")]
    if len(subject_id) > limit:
        return [("subject_id", f"at most {limit} characters for a {kind.value}")]
    return []


def _day_violations(day: date | None, name: str) -> list[tuple[str, str]]:
    if day is None:
        return [(name, "is required")]
    if not FIRST_DAY <= day <= LAST_DAY:
        return [(name, f"must be between {FIRST_DAY} and {LAST_DAY}")]
    return []


def check_day(day: date, name: str) -> date:
    """A day a period is asked for by: within this century (INVALID_ARGUMENT naming `name`)."""
    violations = _day_violations(day, name)
    if violations:
        raise InvalidArgument(f"invalid {name}", field_violations=violations)
    return day


def _period_violations(kind: PeriodKind | None, day: date | None) -> list[tuple[str, str]]:
    violations = [] if kind is not None else [("period_kind", "must be month, quarter or year")]
    return violations + _day_violations(day, "period_start")


def value_violations(metric: Metric, draft: TargetDraft) -> list[tuple[str, str]]:
    """A won_amount target is a positive amount in one currency and no count; a count target a
    positive count and no amount."""
    if metric is Metric.WON_AMOUNT:
        violations = [] if not draft.count else [("count", "must be empty for a won_amount target")]
        if not draft.has_amount:
            return [*violations, ("amount", "is required for a won_amount target")]
        if not 0 < draft.amount_minor < 2**63:
            violations.append(("amount.amount_minor", "must be positive"))
        if len(draft.currency_code) != 3 or not draft.currency_code.isascii() or not draft.currency_code.isalpha():
            violations.append(("amount.currency_code", "must be an ISO 4217 code, e.g. ILS"))
        return violations
    violations = [("amount", f"must be empty for a {metric.value} target")] if draft.has_amount else []
    if not 0 < draft.count <= MAX_COUNT:
        violations.append(("count", f"must be between 1 and {MAX_COUNT}"))
    return violations


def _clean_subject(kind: SubjectKind | None, subject_id: str) -> str:
    # Sources are lower-case codes in the leads catalogue; other ids are kept as they are.
    cleaned = subject_id.strip()
    return cleaned.lower() if kind is SubjectKind.SOURCE else cleaned


def validate_target(draft: TargetDraft) -> Target:
    """The target to store, for the period that contains the day asked; every violation at once."""
    subject_id = _clean_subject(draft.subject_kind, draft.subject_id)
    violations = _subject_violations(draft.subject_kind, subject_id)
    violations += _period_violations(draft.period_kind, draft.period_day)
    if draft.metric is None:
        violations.append(("metric", "must be won_amount, won_deals or leads"))
    else:
        violations += value_violations(draft.metric, replace(draft, currency_code=draft.currency_code.upper()))
    if violations:
        raise InvalidArgument("invalid target", field_violations=violations)
    assert draft.subject_kind and draft.period_kind and draft.period_day and draft.metric  # checked above
    amount = draft.metric is Metric.WON_AMOUNT
    return Target(
        subject_kind=draft.subject_kind,
        subject_id=subject_id,
        period_kind=draft.period_kind,
        period_start=first_day_of(draft.period_kind, draft.period_day),
        metric=draft.metric,
        value=draft.amount_minor if amount else draft.count,
        currency_code=draft.currency_code.upper() if amount else "",
    )


def same_request(stored: Target, asked: Target) -> bool:
    """Whether a create repeated with a stored target's request_id asks for that target: the same
    subject, period and metric (what a target is; its value may have been changed since)."""
    return (stored.subject_kind, stored.subject_id, stored.period_kind, stored.period_start, stored.metric) == (
        asked.subject_kind,
        asked.subject_id,
        asked.period_kind,
        asked.period_start,
        asked.metric,
    )


def request_id_in_use() -> AlreadyExists:
    """A request_id another target was created with: says nothing of that target (not its id, not
    its subject), so a reused or guessed key never reads a target the caller may not see."""
    return AlreadyExists("request_id was already used for another target", reason="REQUEST_ID_IN_USE")


def validate_update(metric: Metric, draft: TargetDraft, mask: Sequence[str]) -> tuple[int, str]:
    """The new (value, currency) an update asks for: only the value field of the target's metric
    may change (its subject, period and metric are what the target is)."""
    if not mask:
        raise InvalidArgument("update_mask is required", field_violations=[("update_mask", "name amount or count")])
    unknown = [p for p in mask if p not in VALUE_FIELDS]
    if unknown:
        raise InvalidArgument(
            "only a target's amount or count changes",
            field_violations=[(p, "cannot change: delete the target and create another") for p in unknown],
        )
    wanted = "amount" if metric is Metric.WON_AMOUNT else "count"
    wrong = [p for p in mask if p != wanted]
    if wrong:
        raise InvalidArgument(
            f"a {metric.value} target has no {wrong[0]}",
            field_violations=[(p, f"a {metric.value} target is set by its {wanted}") for p in wrong],
        )
    violations = value_violations(metric, replace(draft, currency_code=draft.currency_code.upper()))
    if violations:
        raise InvalidArgument("invalid target", field_violations=violations)
    if metric is Metric.WON_AMOUNT:
        return draft.amount_minor, draft.currency_code.upper()
    return draft.count, ""


def target_not_found(target_id: str) -> NotFound:
    return NotFound(f"target {target_id} not found", reason="TARGET_NOT_FOUND", metadata={"target_id": target_id})


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    id: str


@dataclass(frozen=True)
class TargetScope:
    """The targets a caller may see: every target, or those of the subjects and the kinds named.
    An empty scope holds nothing (the gateway says what each caller sees; fail closed)."""

    every_target: bool = False
    subjects: frozenset[Subject] = frozenset()
    kinds: frozenset[SubjectKind] = frozenset()

    def ids_by_kind(self) -> dict[SubjectKind, list[str]]:
        return ids_by_kind(self.subjects)


def ids_by_kind(subjects: Iterable[Subject]) -> dict[SubjectKind, list[str]]:
    """Subject ids grouped by kind, each list sorted and without repeats."""
    grouped: dict[SubjectKind, list[str]] = {}
    for subject in sorted(set(subjects), key=lambda s: (s.kind.value, s.id)):
        grouped.setdefault(subject.kind, []).append(subject.id)
    return grouped


@dataclass
class WonDeals:
    """A subject's won deals in the period: how many, and their totals per currency."""

    count: int = 0
    amounts: dict[str, int] = field(default_factory=dict)

    def add(self, currency_code: str, deals: int, total_minor: int) -> None:
        self.count += deals
        if currency_code:
            self.amounts[currency_code] = self.amounts.get(currency_code, 0) + total_minor


@dataclass(frozen=True)
class StoredTarget:
    """A target as stored, with its id (what the report rows are built from)."""

    id: str
    target: Target


@dataclass(frozen=True)
class ReportRow:
    target: StoredTarget
    actual: int
    projected: int
    achieved_percent: float
    # won_amount: what was won in other currencies (currency → minor units); not converted.
    other_currencies: tuple[tuple[str, int], ...] = ()


def report_rows(
    stored: Iterable[StoredTarget],
    won: Mapping[Subject, WonDeals],
    leads: Mapping[Subject, int],
    period: LocalPeriod,
    now: datetime,
) -> list[ReportRow]:
    """One row per target: its actual from the subject's won deals or leads in the period, the
    share achieved and the run rate to the period's end."""
    rows = []
    for item in stored:
        t = item.target
        subject = Subject(t.subject_kind, t.subject_id)
        deals = won.get(subject, WonDeals())
        others: tuple[tuple[str, int], ...] = ()
        if t.metric is Metric.WON_AMOUNT:
            actual = deals.amounts.get(t.currency_code, 0)
            others = tuple(sorted((c, a) for c, a in deals.amounts.items() if c != t.currency_code))
        elif t.metric is Metric.WON_DEALS:
            actual = deals.count
        else:
            actual = leads.get(subject, 0)
        rows.append(
            ReportRow(
                target=item,
                actual=actual,
                projected=run_rate(actual, period, now),
                achieved_percent=achieved_percent(actual, t.value),
                other_currencies=others,
            )
        )
    return rows
