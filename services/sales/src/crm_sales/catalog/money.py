"""Money arithmetic of quotes, in integer minor units, rounded as docs/selling.md ("Money and
rounding") says. No I/O.

A line: gross = quantity × unit price; its discount and then its VAT are rounded half up on the
line. A document: its discount is taken from the sum of the lines' nets and shared back to the
lines; VAT is computed once per rate on the document's net (as an Israeli tax invoice shows it:
taxable amount, VAT, total) and shared back to the lines, so the lines always add up to the
document exactly. Shares go by largest remainder, never by rounding each share on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from crm_kit.errors import InvalidArgument

# ISO 4217 minor digits. IRR keeps ISO's 2, the same scale every service already formats with,
# but amounts in rials are rounded to whole rials (ROUNDING_STEP_MINOR): fractions of a rial are
# not used anywhere, and a quote must not show one.
MINOR_DIGITS = {"ILS": 2, "USD": 2, "EUR": 2, "IRR": 2}
ROUNDING_STEP_MINOR = {"ILS": 1, "USD": 1, "EUR": 1, "IRR": 100}
CURRENCIES = tuple(MINOR_DIGITS)

BASIS_POINTS = 10_000  # 100 %
MILLI = 1_000  # quantities are in thousandths (1.5 hours is 1500)
# The largest amount a column (BIGINT) and a proto int64 hold.
MAX_MINOR = 2**63 - 1


@dataclass(frozen=True)
class LineAmounts:
    # After the line's discount (and, from document_totals, its share of the document's).
    net_minor: int
    # The line's discount (and, from document_totals, its share of the document's).
    discount_minor: int
    tax_minor: int
    # net + tax.
    total_minor: int
    # Quantity × unit price, before any discount.
    gross_minor: int
    tax_rate_bp: int


@dataclass(frozen=True)
class TaxAmount:
    """The VAT of one rate on a document: what the document shows per rate."""

    rate_bp: int
    net_minor: int
    tax_minor: int


@dataclass(frozen=True)
class Totals:
    gross_minor: int
    line_discount_minor: int
    document_discount_minor: int
    # line + document discounts.
    discount_minor: int
    net_minor: int
    tax_minor: int
    total_minor: int
    # The lines with their shares of the document discount and of the VAT: each field adds up to
    # the document's.
    lines: tuple[LineAmounts, ...]
    # One per VAT rate on the document, highest rate first.
    taxes: tuple[TaxAmount, ...]


def minor_digits(currency: str) -> int:
    """ISO 4217 digits after the decimal point of the currency's minor unit."""
    return MINOR_DIGITS[_known(currency)]


def rounding_step(currency: str) -> int:
    """The smallest amount, in minor units, a document in the currency shows."""
    return ROUNDING_STEP_MINOR[_known(currency)]


def round_half_up(numerator: int, denominator: int, step: int = 1) -> int:
    """numerator / denominator (neither negative) to the nearest multiple of step; a half goes up.
    Integer arithmetic only: exact at any size."""
    unit = denominator * step
    return (2 * numerator + unit) // (2 * unit) * step


def line_amounts(
    quantity_milli: int,
    unit_price_minor: int,
    discount_bp: int,
    tax_rate_bp: int,
    *,
    currency: str,
    field_prefix: str = "",
) -> LineAmounts:
    """A line's amounts on its own. INVALID_ARGUMENT naming `{field_prefix}<argument>` for a
    quantity not above zero, a negative price, a discount or a rate outside 0-100 %, an unknown
    currency (`currency`), or an amount beyond int64."""
    step = rounding_step(currency)
    violations = []
    if quantity_milli <= 0:
        violations.append((f"{field_prefix}quantity_milli", "must be greater than 0"))
    if unit_price_minor < 0:
        violations.append((f"{field_prefix}unit_price_minor", "must not be negative"))
    if not 0 <= discount_bp <= BASIS_POINTS:
        violations.append((f"{field_prefix}discount_bp", "must be between 0 and 10000 (100 %)"))
    if not 0 <= tax_rate_bp <= BASIS_POINTS:
        violations.append((f"{field_prefix}tax_rate_bp", "must be between 0 and 10000 (100 %)"))
    if violations:
        raise InvalidArgument("invalid line amounts", field_violations=violations)
    gross = round_half_up(quantity_milli * unit_price_minor, MILLI, step)
    discount = round_half_up(gross * discount_bp, BASIS_POINTS, step)
    net = gross - discount
    tax = round_half_up(net * tax_rate_bp, BASIS_POINTS, step)
    if gross + tax > MAX_MINOR:
        raise InvalidArgument(
            "the line's amount is larger than a document can hold",
            reason="AMOUNT_TOO_LARGE",
            field_violations=[(f"{field_prefix}quantity_milli", "quantity × unit price is too large")],
        )
    return LineAmounts(
        net_minor=net,
        discount_minor=discount,
        tax_minor=tax,
        total_minor=net + tax,
        gross_minor=gross,
        tax_rate_bp=tax_rate_bp,
    )


def document_totals(
    lines: Sequence[LineAmounts],
    doc_discount_bp: int,
    *,
    currency: str,
    field: str = "discount_bp",
    lines_field: str = "lines",
) -> Totals:
    """The document's totals from its lines (line_amounts): the document discount on the sum of
    the lines' nets, then VAT per rate on the discounted net, each shared back to the lines.
    INVALID_ARGUMENT naming `field` for a discount outside 0-100 %, and naming `lines_field`
    (reason AMOUNT_TOO_LARGE) when a total of the lines is beyond int64."""
    step = rounding_step(currency)
    if not 0 <= doc_discount_bp <= BASIS_POINTS:
        raise InvalidArgument(
            "invalid document discount", field_violations=[(field, "must be between 0 and 10000 (100 %)")]
        )
    subtotal = sum(line.net_minor for line in lines)
    doc_discount = round_half_up(subtotal * doc_discount_bp, BASIS_POINTS, step)
    shares = allocate(doc_discount, [line.net_minor for line in lines], step)
    discounted = [
        replace(line, net_minor=line.net_minor - share, discount_minor=line.discount_minor + share)
        for line, share in zip(lines, shares, strict=True)
    ]
    taxes: list[TaxAmount] = []
    line_tax = [0] * len(discounted)
    for rate in sorted({line.tax_rate_bp for line in discounted}, reverse=True):
        members = [i for i, line in enumerate(discounted) if line.tax_rate_bp == rate]
        net = sum(discounted[i].net_minor for i in members)
        tax = round_half_up(net * rate, BASIS_POINTS, step)
        taxes.append(TaxAmount(rate_bp=rate, net_minor=net, tax_minor=tax))
        for i, share in zip(members, allocate(tax, [discounted[i].net_minor for i in members], step), strict=True):
            line_tax[i] = share
    final = tuple(
        replace(line, tax_minor=tax, total_minor=line.net_minor + tax)
        for line, tax in zip(discounted, line_tax, strict=True)
    )
    net_total = sum(line.net_minor for line in final)
    tax_total = sum(t.tax_minor for t in taxes)
    line_discount = sum(line.discount_minor for line in lines)
    gross = sum(line.gross_minor for line in lines)
    # Each line fits on its own (line_amounts), their sums need not: refuse, do not let the column
    # or the proto int64 be the one to say no.
    _check_fits(
        lines_field,
        gross=gross,
        subtotal=subtotal,
        discount=line_discount + doc_discount,
        tax=tax_total,
        total=net_total + tax_total,
    )
    return Totals(
        gross_minor=gross,
        line_discount_minor=line_discount,
        document_discount_minor=doc_discount,
        discount_minor=line_discount + doc_discount,
        net_minor=net_total,
        tax_minor=tax_total,
        total_minor=net_total + tax_total,
        lines=final,
        taxes=tuple(taxes),
    )


def _check_fits(field: str, **amounts: int) -> None:
    """AMOUNT_TOO_LARGE naming field when an amount is beyond int64."""
    too_large = [name for name, amount in amounts.items() if amount > MAX_MINOR]
    if too_large:
        raise InvalidArgument(
            "the document's amounts are larger than a document can hold",
            reason="AMOUNT_TOO_LARGE",
            field_violations=[(field, f"the lines' {', '.join(too_large)} together are too large")],
        )


def allocate(amount: int, weights: Sequence[int], step: int = 1) -> list[int]:
    """amount (a multiple of step) shared in proportion to weights (not negative), in multiples of
    step, adding up to amount exactly: each share rounded down, then the steps left over go to
    the largest remainders (the earlier share on a tie). All zeros when the weights are."""
    total_weight = sum(weights)
    if amount == 0 or total_weight == 0:
        return [0] * len(weights)
    units = amount // step
    floors = [units * w // total_weight for w in weights]
    left = units - sum(floors)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(units * weights[i] % total_weight), i))
    for i in by_remainder[:left]:
        floors[i] += 1
    return [f * step for f in floors]


def _known(currency: str) -> str:
    if currency not in MINOR_DIGITS:
        raise InvalidArgument(
            f"unknown currency {currency!r}",
            reason="UNKNOWN_CURRENCY",
            field_violations=[("currency", f"must be one of {', '.join(CURRENCIES)}")],
        )
    return currency
