"""The catalog's rules: what a product, a price list, an item's price and a VAT rate must be, and
what an update may change. No I/O. Field names in violations are the REST body's (`sku`,
`items[2].unit_price.amount_minor`), which the gateway passes through as they are."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from crm_kit.errors import InvalidArgument
from crm_sales.catalog import money

SKU_MAX = 100
NAME_MAX = 200
PRODUCT_LINE_MAX = 100
# The languages quotes are written in; a product needs a name in at least one.
LANGUAGES = ("he", "en", "fa")
# A closed list, so a quote can name the unit in each language.
UNITS = ("unit", "hour", "day", "week", "month", "year", "kg", "g", "m", "m2", "l", "licence")
PRODUCT_FIELDS = ("sku", "names", "unit", "tax_class", "product_line", "active")
PRICE_LIST_FIELDS = ("name", "valid_from", "valid_to", "active")
_SKU = re.compile(r"^\S{1,100}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class TaxClass(StrEnum):
    STANDARD = "standard"
    ZERO = "zero"
    EXEMPT = "exempt"


TAX_CLASSES = tuple(c.value for c in TaxClass)


@dataclass(frozen=True)
class ProductDraft:
    sku: str
    names: Mapping[str, str]
    unit: str
    tax_class: str
    product_line: str
    active: bool


@dataclass(frozen=True)
class ItemDraft:
    product_id: str
    unit_price_minor: int
    # Empty: the price list's.
    currency_code: str


@dataclass(frozen=True)
class PriceListDraft:
    name: str
    currency: str
    country: str
    valid_from: date | None
    valid_to: date | None
    active: bool
    items: tuple[ItemDraft, ...] = ()


@dataclass(frozen=True)
class TaxRateDraft:
    country: str
    tax_class: str
    rate_bp: int
    valid_from: date | None


@dataclass(frozen=True)
class TaxRate:
    country: str
    tax_class: str
    rate_bp: int
    valid_from: date


def _raise(violations: list[tuple[str, str]], what: str) -> None:
    if violations:
        raise InvalidArgument(
            f"invalid {what}: {', '.join(dict.fromkeys(f for f, _ in violations))}", field_violations=violations
        )


def _names(names: Mapping[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    cleaned = {lang: text.strip() for lang, text in names.items() if text.strip()}
    violations = [
        (f"names.{lang}", f"must be one of {', '.join(LANGUAGES)}") for lang in cleaned if lang not in LANGUAGES
    ]
    violations += [
        (f"names.{lang}", f"at most {NAME_MAX} characters") for lang, t in cleaned.items() if len(t) > NAME_MAX
    ]
    if not cleaned:
        violations.append(("names", f"needs a name in at least one of {', '.join(LANGUAGES)}"))
    return cleaned, violations


def validate_product(draft: ProductDraft, fields: Sequence[str] = PRODUCT_FIELDS) -> ProductDraft:
    """The product's `fields` checked and trimmed; INVALID_ARGUMENT naming every bad one."""
    violations: list[tuple[str, str]] = []
    sku, product_line = draft.sku.strip(), draft.product_line.strip()
    names, name_violations = _names(draft.names)
    if "sku" in fields and not _SKU.match(sku):
        violations.append(("sku", f"is required: 1-{SKU_MAX} characters without spaces"))
    if "names" in fields:
        violations += name_violations
    if "unit" in fields and draft.unit not in UNITS:
        violations.append(("unit", f"must be one of {', '.join(UNITS)}"))
    if "tax_class" in fields and draft.tax_class not in TAX_CLASSES:
        violations.append(("tax_class", f"must be one of {', '.join(TAX_CLASSES)}"))
    if "product_line" in fields and len(product_line) > PRODUCT_LINE_MAX:
        violations.append(("product_line", f"at most {PRODUCT_LINE_MAX} characters"))
    _raise(violations, "product")
    return replace(draft, sku=sku, names=names, product_line=product_line)


def check_mask(mask: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """The distinct paths of an update mask, all of them among `allowed`."""
    unknown = [path for path in mask if path not in allowed]
    if not mask or unknown:
        raise InvalidArgument(
            "invalid update_mask",
            field_violations=[("update_mask", f"name some of {', '.join(allowed)}; unknown: {unknown}")],
        )
    return list(dict.fromkeys(mask))


def _validity(valid_from: date | None, valid_to: date | None) -> list[tuple[str, str]]:
    if valid_from is None:
        return [("valid_from", "is required")]
    if valid_to is not None and valid_to < valid_from:
        return [("valid_to", "must not be before valid_from")]
    return []


def validate_item(item: ItemDraft, currency: str, at: str = "") -> ItemDraft:
    """An item's price: not negative, in the list's currency, whole rials in IRR."""
    violations: list[tuple[str, str]] = []
    if not item.product_id.strip():
        violations.append((f"{at}product_id", "is required"))
    if item.currency_code and item.currency_code != currency:
        violations.append((f"{at}unit_price.currency_code", f"must be the price list's currency {currency}"))
    if item.unit_price_minor < 0:
        violations.append((f"{at}unit_price.amount_minor", "must not be negative"))
    elif item.unit_price_minor % money.rounding_step(currency):
        violations.append(
            (f"{at}unit_price.amount_minor", f"must be a multiple of {money.rounding_step(currency)} in {currency}")
        )
    _raise(violations, "price list item")
    return replace(item, product_id=item.product_id.strip(), currency_code=currency)


def validate_new_price_list(draft: PriceListDraft) -> PriceListDraft:
    """A new price list: name, a currency we price in, a country code, its validity, its items
    (each product once)."""
    violations: list[tuple[str, str]] = []
    name = draft.name.strip()
    if not name or len(name) > NAME_MAX:
        violations.append(("name", f"is required, at most {NAME_MAX} characters"))
    if draft.currency not in money.CURRENCIES:
        violations.append(("currency_code", f"must be one of {', '.join(money.CURRENCIES)}"))
    if not _COUNTRY.match(draft.country):
        violations.append(("country_code", "must be an ISO 3166-1 alpha-2 code, e.g. IL"))
    violations += _validity(draft.valid_from, draft.valid_to)
    _raise(violations, "price list")
    items = tuple(validate_item(item, draft.currency, f"items[{i}].") for i, item in enumerate(draft.items))
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.product_id in seen:
            _raise([(f"items[{i}].product_id", "is already in the list")], "price list")
        seen.add(item.product_id)
    return replace(draft, name=name, items=items)


def apply_price_list_update(current: PriceListDraft, requested: PriceListDraft, mask: Sequence[str]) -> PriceListDraft:
    """The list after an update of the paths in `mask` (name, validity, active)."""
    updated = current
    if "name" in mask:
        name = requested.name.strip()
        _raise(
            [("name", f"is required, at most {NAME_MAX} characters")] if not name or len(name) > NAME_MAX else [],
            "price list",
        )
        updated = replace(updated, name=name)
    if "valid_from" in mask:
        updated = replace(updated, valid_from=requested.valid_from)
    if "valid_to" in mask:
        updated = replace(updated, valid_to=requested.valid_to)
    if "active" in mask:
        updated = replace(updated, active=requested.active)
    _raise(_validity(updated.valid_from, updated.valid_to), "price list")
    return updated


def validate_tax_rate(draft: TaxRateDraft) -> TaxRate:
    violations: list[tuple[str, str]] = []
    if not _COUNTRY.match(draft.country):
        violations.append(("country_code", "must be an ISO 3166-1 alpha-2 code, e.g. IL"))
    if draft.tax_class not in TAX_CLASSES:
        violations.append(("tax_class", f"must be one of {', '.join(TAX_CLASSES)}"))
    if not 0 <= draft.rate_bp <= money.BASIS_POINTS:
        violations.append(("rate_bp", "must be between 0 and 10000 (100 %)"))
    elif draft.tax_class in (TaxClass.ZERO, TaxClass.EXEMPT) and draft.rate_bp:
        violations.append(("rate_bp", f"must be 0 for the {draft.tax_class} class"))
    if draft.valid_from is None:
        violations.append(("valid_from", "is required"))
    _raise(violations, "tax rate")
    assert draft.valid_from is not None  # for mypy: a missing one was raised above
    return TaxRate(country=draft.country, tax_class=draft.tax_class, rate_bp=draft.rate_bp, valid_from=draft.valid_from)
