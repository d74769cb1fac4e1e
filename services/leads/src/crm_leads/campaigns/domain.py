"""Sources and campaigns: a new source, a campaign's fields and money, an update's mask. Pure, no I/O."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date

from crm_kit.errors import InvalidArgument
from crm_leads.leads.domain import SOURCE_CODE

_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_MINOR_UNITS = 2**63 - 1
_NAME_MAX = 100
# What UpdateCampaign's update_mask may name.
UPDATABLE = ("name", "starts_on", "ends_on", "budget", "actual_cost")


@dataclass(frozen=True)
class CampaignRef:
    """The campaign a lead belongs to: id in the catalogue ("" when none) and its name."""

    id: str
    name: str


NO_CAMPAIGN = CampaignRef(id="", name="")


def is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


@dataclass(frozen=True)
class NewSource:
    code: str
    display_name: str


def validate_new_source(*, code: str, display_name: str) -> NewSource:
    """A source an admin adds: a code of the catalogue's format and a display name."""
    violations: list[tuple[str, str]] = []
    normalized = code.strip()
    if not SOURCE_CODE.fullmatch(normalized):
        violations.append(("code", "must match [a-z][a-z0-9_]{1,49}"))
    name = " ".join(display_name.split())
    if not name:
        violations.append(("display_name", "is required"))
    elif len(name) > _NAME_MAX:
        violations.append(("display_name", f"at most {_NAME_MAX} characters"))
    if violations:
        raise InvalidArgument("invalid source", field_violations=violations)
    return NewSource(code=normalized, display_name=name)


@dataclass(frozen=True)
class CampaignFields:
    """A campaign's editable fields; money in integer minor units of one ISO 4217 currency."""

    name: str
    starts_on: date | None
    ends_on: date | None
    budget_minor: int
    actual_cost_minor: int
    budget_currency: str
    actual_cost_currency: str


@dataclass(frozen=True)
class ValidCampaign:
    name: str
    starts_on: date | None
    ends_on: date | None
    budget_minor: int
    actual_cost_minor: int
    currency_code: str


def validate_campaign(fields: CampaignFields) -> ValidCampaign:
    """Check a campaign (new, or as it would be after an update), reporting every bad field at once."""
    violations: list[tuple[str, str]] = []
    name = " ".join(fields.name.split())
    if not name:
        violations.append(("name", "is required"))
    elif len(name) > _NAME_MAX:
        violations.append(("name", f"at most {_NAME_MAX} characters"))
    if fields.starts_on and fields.ends_on and fields.ends_on < fields.starts_on:
        violations.append(("ends_on", "must not be before starts_on"))
    currencies = _money_currencies(fields, violations)
    if violations:
        message = "invalid campaign: " + "; ".join(f"{f} {d}" for f, d in violations)
        raise InvalidArgument(message, field_violations=violations)
    return ValidCampaign(
        name=name,
        starts_on=fields.starts_on,
        ends_on=fields.ends_on,
        budget_minor=fields.budget_minor,
        actual_cost_minor=fields.actual_cost_minor,
        currency_code=next(iter(currencies.values()), ""),
    )


def _money_currencies(fields: CampaignFields, violations: list[tuple[str, str]]) -> dict[str, str]:
    """The currency of each amount that names one (budget and actual cost must share it); adds
    what is wrong with the amounts and currencies to violations."""
    currencies: dict[str, str] = {}
    for label, amount, currency in (
        ("budget", fields.budget_minor, fields.budget_currency),
        ("actual_cost", fields.actual_cost_minor, fields.actual_cost_currency),
    ):
        if amount < 0 or amount > MAX_MINOR_UNITS:
            violations.append((f"{label}.amount_minor", "must be a non-negative integer of minor units"))
        code = currency.strip().upper()
        if code and not _CURRENCY.fullmatch(code):
            violations.append((f"{label}.currency_code", "must be an ISO 4217 code, e.g. ILS"))
        elif code:
            currencies[label] = code
        elif amount > 0:
            violations.append((f"{label}.currency_code", "is required with an amount"))
    if len(set(currencies.values())) > 1:
        violations.append(("actual_cost.currency_code", "must be the budget's currency"))
    return currencies


def mask_paths(paths: list[str]) -> frozenset[str]:
    """The fields an update_mask names ("budget.amount_minor" counts as "budget"); "*" is all."""
    if not paths:
        raise InvalidArgument("update_mask is required", field_violations=[("update_mask", "name the fields")])
    if paths == ["*"]:
        return frozenset(UPDATABLE)
    named = {p.split(".")[0] for p in paths}
    unknown = sorted(named - set(UPDATABLE))
    if unknown:
        raise InvalidArgument(
            f"update_mask names fields that cannot be updated: {', '.join(unknown)}",
            field_violations=[("update_mask", f"updatable: {', '.join(UPDATABLE)}")],
        )
    return frozenset(named)


@dataclass(frozen=True)
class CampaignPatch:
    """An update: the masked fields (mask_paths) and their new values; the others are ignored."""

    campaign_id: str
    fields: frozenset[str]
    name: str = ""
    starts_on: date | None = None
    ends_on: date | None = None
    budget_minor: int = 0
    budget_currency: str = ""
    actual_cost_minor: int = 0
    actual_cost_currency: str = ""


def patched(patch: CampaignPatch, current: ValidCampaign) -> CampaignFields:
    """The campaign as it would be after patch: masked fields from it, the rest as stored. An amount
    sent without a currency keeps the stored one."""
    budget = (
        (patch.budget_minor, patch.budget_currency)
        if "budget" in patch.fields
        else (current.budget_minor, current.currency_code)
    )
    cost = (
        (patch.actual_cost_minor, patch.actual_cost_currency)
        if "actual_cost" in patch.fields
        else (current.actual_cost_minor, current.currency_code)
    )
    return CampaignFields(
        name=patch.name if "name" in patch.fields else current.name,
        starts_on=patch.starts_on if "starts_on" in patch.fields else current.starts_on,
        ends_on=patch.ends_on if "ends_on" in patch.fields else current.ends_on,
        budget_minor=budget[0],
        actual_cost_minor=cost[0],
        budget_currency=budget[1] or (current.currency_code if budget[0] else ""),
        actual_cost_currency=cost[1] or (current.currency_code if cost[0] else ""),
    )
