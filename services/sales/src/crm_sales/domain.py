"""Sales domain rules: a deal's life (open, moved through its pipeline's open stages, then won or
lost), what a move, an edit and a close must carry, the etag that guards them, and what a deal
list, a board and a forecast may ask for. No I/O. The rules of a pipeline's shape are in
`crm_sales.pipelines`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from crm_kit.errors import FailedPrecondition, InvalidArgument

# A deal's, pipeline's, product's and quote's etag: the chassis' (re-exported for the sales modules).
from crm_kit.etags import check_etag as check_etag
from crm_kit.etags import etag as etag

TITLE_MAX = 200
# The deal fields a stage may require and UpdateDeal may change (their Deal message names).
DEAL_FIELDS = ("title", "expected_close_date", "amount")


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class NewDeal:
    """A deal to open, with the facts of the converted lead it starts from."""

    deal_id: str
    lead_id: str
    title: str
    owner_rep_id: str
    owner_team_id: str
    source: str
    campaign: str
    # Since when lead_id is its lead (None: now).
    lead_since: datetime | None = None
    # The pipeline to open it in ("": the default one).
    pipeline_id: str = ""


@dataclass(frozen=True)
class Item:
    sku: str
    description: str
    quantity: int
    unit_price_minor: int
    currency_code: str


def validate_new_deal(deal: NewDeal) -> NewDeal:
    """The deal to open, its title trimmed to the column; INVALID_ARGUMENT names missing ids."""
    violations = [(name, "is required") for name in ("deal_id", "lead_id") if not getattr(deal, name).strip()]
    if not deal.title.strip():
        violations.append(("title", "is required"))
    if violations:
        raise InvalidArgument("invalid deal", field_violations=violations)
    return NewDeal(
        deal_id=deal.deal_id.strip(),
        lead_id=deal.lead_id.strip(),
        title=deal.title.strip()[:TITLE_MAX],
        owner_rep_id=deal.owner_rep_id,
        owner_team_id=deal.owner_team_id,
        source=deal.source,
        campaign=deal.campaign,
        lead_since=deal.lead_since,
        pipeline_id=deal.pipeline_id.strip(),
    )


class MergeOrder(StrEnum):
    """Where a LeadsMerged stands against the deal's lead (move_deal_to_lead)."""

    APPLY = "apply"  # the deal is on the merged lead: move it
    DONE = "done"  # the deal's lead was set at or after the merge: already in it
    WAIT = "wait"  # an earlier merge (or the deal's opening) has not been applied yet


def merge_order(
    *, deal_lead: str | None, deal_lead_since: datetime | None, merged_lead: str, merged_at: datetime
) -> MergeOrder:
    """Merges can arrive out of order (a held event is retried while later ones go on, replicas):
    a merge moves the deal only from the lead it merged away, and one older than the deal's lead is
    already reflected in it (a copy from leads, or a later open)."""
    if deal_lead == merged_lead:
        return MergeOrder.APPLY
    if deal_lead is not None and deal_lead_since is not None and merged_at <= deal_lead_since:
        return MergeOrder.DONE
    return MergeOrder.WAIT


def _item_violations(i: int, item: Item) -> list[tuple[str, str]]:
    violations: list[tuple[str, str]] = []
    if not item.sku.strip():
        violations.append((f"items[{i}].sku", "is required"))
    if item.quantity < 1:
        violations.append((f"items[{i}].quantity", "must be at least 1"))
    if item.unit_price_minor < 0:
        violations.append((f"items[{i}].unit_price.amount_minor", "must not be negative"))
    if len(item.currency_code) != 3 or not item.currency_code.isalpha():
        violations.append((f"items[{i}].unit_price.currency_code", "must be an ISO 4217 code"))
    return violations


def validate_close(status: DealStatus, won: bool, items: list[Item]) -> tuple[int, str]:
    """Check a close is allowed; returns the total (minor units, currency) of a won deal."""
    if status is not DealStatus.OPEN:
        raise FailedPrecondition(f"deal is already {status.value}", reason="DEAL_ALREADY_CLOSED")
    if not won:
        return 0, ""
    if not items:
        raise InvalidArgument("a won deal needs its line items", field_violations=[("items", "at least one item")])
    violations = [v for i, item in enumerate(items) for v in _item_violations(i, item)]
    currencies = {item.currency_code.upper() for item in items}
    if len(currencies) > 1:
        violations.append(("items", "all items must share one currency"))
    if violations:
        raise InvalidArgument("invalid line items", field_violations=violations)
    return sum(i.quantity * i.unit_price_minor for i in items), currencies.pop()


def check_lost_reason(won: bool, code: str, known: Sequence[str]) -> None:
    """A lost reason code is one of the list, and only for a lost deal (the code is optional so
    callers from before the list keep working; lost_reason stays the free-text note)."""
    if code and won:
        raise InvalidArgument(
            "a won deal has no lost reason", field_violations=[("lost_reason_code", "only when lost")]
        )
    if code and code not in known:
        raise InvalidArgument(
            f"unknown lost reason {code}",
            field_violations=[("lost_reason_code", f"must be one of {', '.join(known)}")],
        )


def clean_item(item: Item) -> Item:
    """An item as stored and published: trimmed text, upper-case currency."""
    return Item(
        sku=item.sku.strip(),
        description=item.description.strip(),
        quantity=item.quantity,
        unit_price_minor=item.unit_price_minor,
        currency_code=item.currency_code.upper(),
    )


class StageOutcome(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class Stage:
    """A stage as a deal meets it."""

    id: str
    pipeline_id: str
    name: str
    outcome: StageOutcome
    required_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class DealFields:
    """The fields of a deal a stage may require (None: not set)."""

    title: str
    expected_close_date: date | None = None
    amount_minor: int | None = None
    amount_currency: str | None = None


def missing_fields(stage: Stage, fields: DealFields) -> list[str]:
    """The fields `stage` requires that are empty on the deal, in DEAL_FIELDS order."""
    present = {
        "title": bool(fields.title.strip()),
        "expected_close_date": fields.expected_close_date is not None,
        "amount": fields.amount_minor is not None,
    }
    return [name for name in DEAL_FIELDS if name in stage.required_fields and not present[name]]


def require_stage_fields(stage: Stage, fields: DealFields) -> None:
    """FAILED_PRECONDITION naming each field `stage` requires that is empty on the deal."""
    missing = missing_fields(stage, fields)
    if missing:
        raise FailedPrecondition(
            f"stage {stage.name} requires {', '.join(missing)}",
            reason="REQUIRED_FIELDS_MISSING",
            field_violations=[(name, f"required by stage {stage.name}") for name in missing],
            metadata={"stage_id": stage.id, "missing": ",".join(missing)},
        )


def validate_move(status: DealStatus, pipeline_id: str, target: Stage | None, fields: DealFields) -> Stage:
    """A move goes from an open deal to an open stage of its own pipeline whose required fields
    are set; won and lost stages are entered only by a close, which carries what they need."""
    if status is not DealStatus.OPEN:
        raise FailedPrecondition(f"deal is already {status.value}", reason="DEAL_ALREADY_CLOSED")
    if target is None or target.pipeline_id != pipeline_id:
        raise InvalidArgument(
            "unknown stage", field_violations=[("stage_id", f"is not a stage of pipeline {pipeline_id}")]
        )
    if target.outcome is not StageOutcome.OPEN:
        raise InvalidArgument(
            "a won or lost stage is entered by closing the deal",
            field_violations=[("stage_id", "must be an open stage (close the deal to win or lose it)")],
        )
    require_stage_fields(target, fields)
    return target


def _money_violations(minor: int | None, currency: str | None) -> list[tuple[str, str]]:
    violations: list[tuple[str, str]] = []
    if minor is not None and minor < 0:
        violations.append(("deal.amount.amount_minor", "must not be negative"))
    if minor is not None and (currency is None or len(currency) != 3 or not currency.isalpha()):
        violations.append(("deal.amount.currency_code", "must be an ISO 4217 code"))
    return violations


def apply_deal_update(
    status: DealStatus, stage: Stage, current: DealFields, requested: DealFields, mask: Sequence[str]
) -> DealFields:
    """The deal's fields after an UpdateDeal of the paths in `mask`. Only an open deal changes
    (a closed one is the record of what happened), and never so that its stage's required fields
    are empty again."""
    unknown = [path for path in mask if path not in DEAL_FIELDS]
    if not mask or unknown:
        raise InvalidArgument(
            "invalid update_mask",
            field_violations=[("update_mask", f"name some of {', '.join(DEAL_FIELDS)}; unknown: {unknown}")],
        )
    violations = _money_violations(requested.amount_minor, requested.amount_currency) if "amount" in mask else []
    if "title" in mask and not requested.title.strip():
        violations.append(("deal.title", "is required"))
    if violations:
        raise InvalidArgument("invalid deal", field_violations=violations)
    if status is not DealStatus.OPEN:
        raise FailedPrecondition(f"deal is already {status.value}", reason="DEAL_ALREADY_CLOSED")
    updated = current
    if "title" in mask:
        updated = replace(updated, title=requested.title.strip()[:TITLE_MAX])
    if "expected_close_date" in mask:
        updated = replace(updated, expected_close_date=requested.expected_close_date)
    if "amount" in mask:
        currency = (requested.amount_currency or "").upper() if requested.amount_minor is not None else None
        updated = replace(updated, amount_minor=requested.amount_minor, amount_currency=currency)
    require_stage_fields(stage, updated)
    return updated


def seconds_in_stage(entered: datetime | None, left: datetime) -> int:
    """Whole seconds a deal spent in a stage (0 for its first, and for clocks that disagree)."""
    return max(0, int((left - entered).total_seconds())) if entered else 0


# ---------------------------------------------------------------- deal lists, the board, the forecast

TITLE_SEARCH_MAX = 100
BOARD_DEALS_DEFAULT = 10
BOARD_DEALS_MAX = 50
# The won and lost columns of a board show this many days of closes unless asked for another start.
BOARD_CLOSED_DAYS = 30


class DealOrder(StrEnum):
    """A deal list's order (AIP-132 `order_by`), each ending in the id so it is total."""

    EXPECTED_CLOSE = "expected_close_date"  # soonest first, deals without a date last
    CREATE_TIME_DESC = "create_time desc"  # newest first
    CLOSE_TIME_DESC = "close_time desc"  # most recently closed first; closed deals only


@dataclass(frozen=True)
class DealFilter:
    """What a deal list is narrowed to; an empty or None field filters nothing."""

    pipeline_id: str = ""
    stage_id: str = ""
    status: DealStatus | None = None
    owner_rep_id: str = ""
    owner_team_id: str = ""
    expected_close_from: date | None = None
    expected_close_to: date | None = None
    amount_currency: str = ""
    amount_min: int | None = None
    amount_max: int | None = None
    close_time_from: datetime | None = None
    title_contains: str = ""


def parse_order(order_by: str) -> DealOrder:
    """The order an `order_by` names (spaces and case as a client types them); "" is the default."""
    words = " ".join(order_by.lower().split())
    if not words:
        return DealOrder.EXPECTED_CLOSE
    try:
        return DealOrder(words)
    except ValueError:
        allowed = ", ".join(f'"{o.value}"' for o in DealOrder)
        raise InvalidArgument(
            "unknown order_by", field_violations=[("order_by", f"must be one of {allowed}")]
        ) from None


def _range_violations(f: DealFilter) -> list[tuple[str, str]]:
    violations: list[tuple[str, str]] = []
    if f.expected_close_from and f.expected_close_to and f.expected_close_from > f.expected_close_to:
        violations.append(("expected_close_to", "must not be before expected_close_from"))
    bounded = f.amount_min is not None or f.amount_max is not None
    if f.amount_currency and (len(f.amount_currency) != 3 or not f.amount_currency.isalpha()):
        violations.append(("amount_currency_code", "must be an ISO 4217 code"))
    elif bounded and not f.amount_currency:
        violations.append(
            ("amount_currency_code", "is required with an amount bound (amounts of different currencies never compare)")
        )
    for name, bound in (("amount_min_minor", f.amount_min), ("amount_max_minor", f.amount_max)):
        if bound is not None and bound < 0:
            violations.append((name, "must not be negative"))
    if f.amount_min is not None and f.amount_max is not None and f.amount_min > f.amount_max:
        violations.append(("amount_max_minor", "must not be below amount_min_minor"))
    return violations


def validate_filter(f: DealFilter) -> DealFilter:
    """The filter trimmed, its currency upper-cased; INVALID_ARGUMENT names every bad field."""
    violations = _range_violations(f)
    if len(f.title_contains.strip()) > TITLE_SEARCH_MAX:
        violations.append(("title_contains", f"at most {TITLE_SEARCH_MAX} characters"))
    if violations:
        raise InvalidArgument("invalid deal filter", field_violations=violations)
    return replace(
        f,
        pipeline_id=f.pipeline_id.strip(),
        stage_id=f.stage_id.strip(),
        owner_rep_id=f.owner_rep_id.strip(),
        owner_team_id=f.owner_team_id.strip(),
        amount_currency=f.amount_currency.upper(),
        title_contains=f.title_contains.strip(),
    )


def board_deals_per_stage(requested: int) -> int:
    """How many deals a board lists per stage: 0 is the default; more than the cap is refused."""
    if not 0 <= requested <= BOARD_DEALS_MAX:
        raise InvalidArgument(
            "deals_per_stage out of range", field_violations=[("deals_per_stage", f"must be 0-{BOARD_DEALS_MAX}")]
        )
    return requested or BOARD_DEALS_DEFAULT


def board_close_time_from(requested: datetime | None, now: datetime) -> datetime:
    """Since when the won and lost columns of a board count closes."""
    return requested if requested is not None else now - timedelta(days=BOARD_CLOSED_DAYS)


def weighted_minor(amount_times_probability: int) -> int:
    """Sum of amount × probability (in percent) as minor units, rounded half up once for the whole
    sum: rounding each deal first would drift by up to half a unit per deal."""
    return (amount_times_probability + 50) // 100


class ForecastGroup(StrEnum):
    OWNER_REP = "owner_rep"
    OWNER_TEAM = "owner_team"
    PIPELINE = "pipeline"
    MONTH = "month"


def validate_period(start: date | None, end: date | None) -> None:
    if start and end and start > end:
        raise InvalidArgument("invalid period", field_violations=[("period_end", "must not be before period_start")])


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a day of the company's calendar, in UTC (where the clock skips midnight,
    when it reads 01:00: zoneinfo reads the missing 00:00 with the offset before the jump). The
    same bounds as reporting's targets vs actual, so a forecast's month is a target's month."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period_instants(start: date | None, end: date | None, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """The instants [from, until) a period of the company's days covers, both days included; None
    for an open end."""
    return (
        local_midnight(start, zone) if start is not None else None,
        local_midnight(end + timedelta(days=1), zone) if end is not None else None,
    )
