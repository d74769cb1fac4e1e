"""The rules of a quote: what a draft may hold, how a version moves (draft → sent → accepted,
rejected or expired; superseded by its revision), and how an accepted quote becomes a deal's
items. No I/O; the money arithmetic is `crm_sales.catalog.money`'s.

A quote is immutable once sent: every change after that is a new version (ReviseQuote). Expiry
is computed on read (a sent version whose valid_until has passed in the company's time zone is
expired) and stored by a periodic sweep, so a refused accept changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

# The company's zone by name: the chassis' rule (CRM_COMPANY_TIME_ZONE is checked at start).
from crm_kit.company import company_zone as company_zone
from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_sales.catalog import money
from crm_sales.domain import Item

# The document languages (the PDF renderer's), and the one a quote gets from its price list's
# VAT country when the caller names none.
LOCALES = ("he", "fa", "en")
_COUNTRY_LOCALE = {"IL": "he", "IR": "fa"}
# A quote is valid for 30 days unless the caller says otherwise (a common default in Israel).
DEFAULT_VALIDITY_DAYS = 30
# The renderer's cap too: a quote longer than this is a catalogue, not a quote.
MAX_LINES = 500
QUANTITY_MAX = 1_000_000
BASIS_POINTS = 10_000
NOTES_MAX = 2000
REJECT_REASON_MAX = 500
BILL_TO_MAX = {"name": 200, "tax_id": 50, "address": 500, "phone": 50}
# The fields UpdateQuote changes (the Quote message's names).
UPDATE_FIELDS = ("lines", "discount_bp", "valid_until", "locale", "bill_to", "notes")


class QuoteStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class LineDraft:
    """A line as a client sent it: `id` empty for a new line (priced now), or a line of the quote
    (its stored price kept); `price_list_id` empty for the quote's."""

    id: str
    product_id: str
    price_list_id: str
    quantity: int
    discount_bp: int


@dataclass(frozen=True)
class BillTo:
    name: str = ""
    tax_id: str = ""
    address: str = ""
    phone: str = ""


@dataclass(frozen=True)
class QuoteDraft:
    """What a caller sets on a quote (CreateQuote, or UpdateQuote's masked fields)."""

    lines: tuple[LineDraft, ...] = ()
    discount_bp: int = 0
    # None: the default validity (create), or not sent (update).
    valid_until: date | None = None
    # "": from the price list's country (create).
    locale: str = ""
    bill_to: BillTo = BillTo()
    notes: str = ""


def today_in(time_zone: str, now: datetime) -> date:
    """The calendar day `now` falls on in the company's time zone (a quote's dates are its)."""
    return now.astimezone(ZoneInfo(time_zone)).date()


def effective_status(stored: QuoteStatus, valid_until: date, today: date) -> QuoteStatus:
    """A sent version past its last day is expired, whether or not the sweep stored it yet."""
    if stored is QuoteStatus.SENT and valid_until < today:
        return QuoteStatus.EXPIRED
    return stored


def default_locale(country: str) -> str:
    return _COUNTRY_LOCALE.get(country, "en")


def format_number(sequence_value: int) -> str:
    """The number of a new quote from the quote_numbers sequence: Q-000042."""
    return f"Q-{sequence_value:06d}"


def file_name(number: str, version: int) -> str:
    """A file name safe in any Content-Disposition and file system: Q-000042-v2.pdf."""
    return f"{re.sub(r'[^A-Za-z0-9-]', '_', number)}-v{version}.pdf"


def description(names: Mapping[str, str], locale: str) -> str:
    """A product's name in the quote's language; else English, Hebrew, Persian, whichever exists."""
    for language in (locale, "en", "he", "fa"):
        if names.get(language, "").strip():
            return names[language].strip()
    return next((name.strip() for name in names.values() if name.strip()), "")


# ---------------------------------------------------------------- validation


def _line_violations(i: int, line: LineDraft, known_ids: set[str]) -> list[tuple[str, str]]:
    at = f"lines[{i}]"
    violations: list[tuple[str, str]] = []
    if line.id and line.id not in known_ids:
        violations.append((f"{at}.id", "must be a line of this quote, once (empty for a new line)"))
    known_ids.discard(line.id)
    if not line.id and not line.product_id.strip():
        violations.append((f"{at}.product_id", "is required"))
    if not 1 <= line.quantity <= QUANTITY_MAX:
        violations.append((f"{at}.quantity", f"must be a whole number from 1 to {QUANTITY_MAX}"))
    if not 0 <= line.discount_bp <= BASIS_POINTS:
        violations.append((f"{at}.discount_bp", "must be 0-10000 basis points (a discount over 100 % is refused)"))
    return violations


def _text_violations(draft: QuoteDraft, fields: Sequence[str]) -> list[tuple[str, str]]:
    violations: list[tuple[str, str]] = []
    if "locale" in fields and draft.locale not in LOCALES:
        violations.append(("locale", f"must be one of {', '.join(LOCALES)}"))
    if "bill_to" in fields:
        for name, limit in BILL_TO_MAX.items():
            if len(getattr(draft.bill_to, name).strip()) > limit:
                violations.append((f"bill_to.{name}", f"at most {limit} characters"))
    if "notes" in fields and len(draft.notes.strip()) > NOTES_MAX:
        violations.append(("notes", f"at most {NOTES_MAX} characters"))
    return violations


def _violations(
    draft: QuoteDraft, fields: Sequence[str], line_ids: Sequence[str], today: date
) -> list[tuple[str, str]]:
    violations: list[tuple[str, str]] = []
    if "lines" in fields:
        if len(draft.lines) > MAX_LINES:
            violations.append(("lines", f"at most {MAX_LINES} lines"))
        known = set(line_ids)
        violations += [v for i, line in enumerate(draft.lines) for v in _line_violations(i, line, known)]
    if "discount_bp" in fields and not 0 <= draft.discount_bp <= BASIS_POINTS:
        violations.append(("discount_bp", "must be 0-10000 basis points (a discount over 100 % is refused)"))
    if "valid_until" in fields and draft.valid_until is not None and draft.valid_until < today:
        violations.append(("valid_until", f"must not be before today ({today.isoformat()})"))
    return violations + _text_violations(draft, fields)


def _clean(draft: QuoteDraft) -> QuoteDraft:
    bill_to = BillTo(*(getattr(draft.bill_to, name).strip() for name in BILL_TO_MAX))
    lines = tuple(replace(line, id=line.id.strip(), product_id=line.product_id.strip()) for line in draft.lines)
    return replace(draft, lines=lines, bill_to=bill_to, notes=draft.notes.strip())


def validate_new_quote(draft: QuoteDraft, *, today: date) -> QuoteDraft:
    """The quote to create, trimmed, with the default validity; INVALID_ARGUMENT names every bad
    field (a line id is the service's to choose)."""
    fields = [f for f in UPDATE_FIELDS if f != "locale" or draft.locale]
    violations = _violations(draft, fields, (), today)
    if violations:
        raise InvalidArgument("invalid quote", field_violations=violations)
    cleaned = _clean(draft)
    if cleaned.valid_until is None:
        cleaned = replace(cleaned, valid_until=today + timedelta(days=DEFAULT_VALIDITY_DAYS))
    return cleaned


def validate_quote_update(
    draft: QuoteDraft, mask: Sequence[str], *, line_ids: Sequence[str], today: date
) -> QuoteDraft:
    """The masked fields of an UpdateQuote, trimmed. `line_ids` are the draft's lines: a line sent
    back with its id keeps its stored price."""
    unknown = [path for path in mask if path not in UPDATE_FIELDS]
    if not mask or unknown:
        raise InvalidArgument(
            "invalid update_mask",
            field_violations=[("update_mask", f"name some of {', '.join(UPDATE_FIELDS)}; unknown: {unknown}")],
        )
    violations = _violations(draft, mask, line_ids, today)
    if "valid_until" in mask and draft.valid_until is None:
        violations.append(("valid_until", "is required"))
    if violations:
        raise InvalidArgument("invalid quote", field_violations=violations)
    return _clean(draft)


def check_price_list(price_list_id: str, *, active: bool, valid_from: date, valid_to: date | None, today: date) -> None:
    """A quote is made from a price list in force today (the catalog's reasons, so a client reads
    one vocabulary whether the list was refused for the quote or for a line)."""
    problem = ""
    if not active:
        problem, reason = f"price list {price_list_id} is inactive", "PRICE_LIST_INACTIVE"
    elif valid_to is not None and today > valid_to:
        problem, reason = f"price list {price_list_id} expired on {valid_to.isoformat()}", "PRICE_LIST_EXPIRED"
    elif today < valid_from:
        problem, reason = (
            f"price list {price_list_id} is valid from {valid_from.isoformat()}",
            "PRICE_LIST_NOT_YET_VALID",
        )
    if problem:
        raise InvalidArgument(problem, reason=reason, field_violations=[("price_list_id", problem)])


def check_line_price_list(
    i: int, line_price_list: str, line_currency: str, quote_price_list: str, quote_currency: str
) -> None:
    """A line names the quote's price list (or none): one priced in another currency is refused
    as such (CURRENCY_MISMATCH), and so is another list of the same currency, which would be a
    second source of prices."""
    field = f"lines[{i}].price_list_id"
    if line_currency != quote_currency:
        raise InvalidArgument(
            f"line {i} is priced in {line_currency}; the quote is in {quote_currency}",
            reason="CURRENCY_MISMATCH",
            field_violations=[(field, f"is in {line_currency}, the quote in {quote_currency}")],
        )
    if line_price_list != quote_price_list:
        raise InvalidArgument(
            f"line {i} names another price list",
            reason="PRICE_LIST_MISMATCH",
            field_violations=[(field, f"must be the quote's price list {quote_price_list} (or empty)")],
        )


# ---------------------------------------------------------------- the life of a version


def _not_allowed(status: QuoteStatus, action: str, reason: str, field: str = "status") -> FailedPrecondition:
    return FailedPrecondition(
        f"a {status.value} quote cannot be {action}",
        reason=reason,
        field_violations=[(field, f"is {status.value}")],
        metadata={"status": status.value},
    )


def _deal_closed(deal_status: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"the deal is already {deal_status}",
        reason="DEAL_ALREADY_CLOSED",
        field_violations=[("deal_id", f"the deal is {deal_status}")],
    )


def check_deal_open(deal_status: str) -> None:
    """Quotes are made, changed and sent only on open deals."""
    if deal_status != "open":
        raise _deal_closed(deal_status)


def check_editable(status: QuoteStatus) -> None:
    """Only a draft changes: a sent quote is what the customer holds (revise it instead)."""
    if status is not QuoteStatus.DRAFT:
        raise _not_allowed(status, "changed (revise it to make a new version)", "QUOTE_NOT_DRAFT")


def check_send(status: QuoteStatus, *, lines: int, valid_until: date, today: date) -> bool:
    """Whether to send (False: already sent, returned as it is). A draft with lines and a
    valid_until not in the past is sent."""
    if status is QuoteStatus.SENT:
        return False
    if status is not QuoteStatus.DRAFT:
        raise _not_allowed(status, "sent", "QUOTE_NOT_DRAFT")
    if lines == 0:
        raise FailedPrecondition(
            "a quote without lines cannot be sent",
            reason="QUOTE_EMPTY",
            field_violations=[("lines", "at least one line")],
        )
    if valid_until < today:
        raise FailedPrecondition(
            "the quote's validity has passed",
            reason="QUOTE_EXPIRED",
            field_violations=[("valid_until", f"is before today ({today.isoformat()}): change it first")],
        )
    return True


def check_accept(status: QuoteStatus, deal_status: str) -> bool:
    """Whether to accept (False: already accepted, returned as it is). Only a sent, unexpired,
    latest version of a quote on an open deal is accepted."""
    if status is QuoteStatus.ACCEPTED:
        return False
    if status is QuoteStatus.EXPIRED:
        raise FailedPrecondition(
            "the quote expired",
            reason="QUOTE_EXPIRED",
            field_violations=[("valid_until", "has passed: revise the quote")],
        )
    if status is QuoteStatus.SUPERSEDED:
        raise _not_allowed(status, "accepted (a later version replaced it)", "QUOTE_SUPERSEDED")
    if status is not QuoteStatus.SENT:
        raise _not_allowed(status, "accepted", "QUOTE_NOT_SENT")
    if deal_status != "open":
        raise _deal_closed(deal_status)
    return True


def check_reject(status: QuoteStatus) -> bool:
    """Whether to reject (False: already rejected). Only a sent, unexpired version is rejected."""
    if status is QuoteStatus.REJECTED:
        return False
    if status is not QuoteStatus.SENT:
        raise _not_allowed(status, "rejected", "QUOTE_NOT_SENT")
    return True


def check_revise(status: QuoteStatus, *, latest: bool) -> None:
    """The latest version, once sent (and maybe rejected or expired), is revised into the next."""
    if not latest:
        raise _not_allowed(status, "revised (revise the latest version)", "QUOTE_NOT_LATEST")
    if status is QuoteStatus.DRAFT:
        raise _not_allowed(status, "revised (change the draft itself)", "QUOTE_IS_DRAFT")
    if status is QuoteStatus.ACCEPTED:
        raise _not_allowed(status, "revised (its deal is won)", "QUOTE_ACCEPTED")


def status_after_revision(status: QuoteStatus) -> QuoteStatus:
    """What the revised version becomes: a sent one is superseded; a rejected or expired one keeps
    what happened to it."""
    return QuoteStatus.SUPERSEDED if status is QuoteStatus.SENT else status


# ---------------------------------------------------------------- amounts


@dataclass(frozen=True)
class PricedLine:
    """A line's inputs to the arithmetic: as stored (the price copied when it was added)."""

    quantity: int
    unit_price_minor: int
    discount_bp: int
    tax_rate_bp: int


@dataclass(frozen=True)
class LineTotals:
    # After the line's own discount.
    net_minor: int
    # The line's share of the quote's discount.
    document_discount_minor: int
    # The line's share of the quote's VAT at its rate.
    tax_minor: int
    # net - document discount + tax.
    total_minor: int


@dataclass(frozen=True)
class QuoteTotals:
    subtotal_minor: int
    discount_minor: int
    net_minor: int
    tax_minor: int
    total_minor: int


def amounts(lines: Sequence[PricedLine], discount_bp: int, currency: str) -> tuple[list[LineTotals], QuoteTotals]:
    """The lines' and the quote's amounts, by the catalog's rules (crm_sales.catalog.money): the
    lines add up to the quote exactly. Whole quantities only: deal items and orders count whole
    units, so a quote sells what an order can ship."""
    try:
        own = [
            money.line_amounts(
                line.quantity * money.MILLI,
                line.unit_price_minor,
                line.discount_bp,
                line.tax_rate_bp,
                currency=currency,
                field_prefix=f"lines[{i}].",
            )
            for i, line in enumerate(lines)
        ]
    except InvalidArgument as exc:  # name the field as a quote's client sends it
        exc.field_violations = [(f.replace("quantity_milli", "quantity"), d) for f, d in exc.field_violations]
        raise
    totals = money.document_totals(own, discount_bp, currency=currency)
    line_totals = [
        LineTotals(
            net_minor=mine.net_minor,
            document_discount_minor=shared.discount_minor - mine.discount_minor,
            tax_minor=shared.tax_minor,
            total_minor=shared.total_minor,
        )
        for mine, shared in zip(own, totals.lines, strict=True)
    ]
    quote = QuoteTotals(
        subtotal_minor=sum(line.net_minor for line in own),
        discount_minor=totals.document_discount_minor,
        net_minor=totals.net_minor,
        tax_minor=totals.tax_minor,
        total_minor=totals.total_minor,
    )
    return line_totals, quote


# ---------------------------------------------------------------- the deal it wins


@dataclass(frozen=True)
class SoldLine:
    """A quote line as the deal is won with it: net after both discounts, without VAT."""

    sku: str
    description: str
    quantity: int
    net_minor: int


def deal_items(lines: Sequence[SoldLine], currency: str) -> list[Item]:
    """The won deal's items: each line at its net unit price after the line's discount and its
    share of the quote's. A net that does not divide by the quantity is split into two items of
    the same product, (quantity - r) at floor(net / quantity) and r one rounding step dearer
    (a minor unit; a whole rial in IRR, whose amounts are all whole rials), so the items add up
    to the quote's net total exactly and no price is ever rounded."""
    currency_step = money.rounding_step(currency)
    items: list[Item] = []
    for line in lines:
        # Nets are multiples of the step (catalog.money rounds to it); one that is not (a price
        # stored before the rule) is split in minor units rather than lose its fraction.
        step = currency_step if line.net_minor % currency_step == 0 else 1
        units, remainder = divmod(line.net_minor // step, line.quantity)
        unit = units * step
        if remainder:
            items.append(Item(line.sku, line.description, line.quantity - remainder, unit, currency))
            items.append(Item(line.sku, line.description, remainder, unit + step, currency))
        else:
            items.append(Item(line.sku, line.description, line.quantity, unit, currency))
    return items
