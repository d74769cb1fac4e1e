"""Orders domain rules: turning a won deal into an order, and shipping it. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from crm_kit.errors import FailedPrecondition, InvalidArgument

MAX_SHIPMENT_TEXT = 100
MAX_SKU = 100
MAX_DESCRIPTION = 500
MAX_ID = 64


class OrderStatus(StrEnum):
    PENDING = "pending"
    SHIPPED = "shipped"


class UnfulfillableDeal(Exception):
    """A won deal that can never become an order (no items, malformed lines)."""


@dataclass(frozen=True)
class Line:
    sku: str
    description: str
    quantity: int
    unit_price_minor: int
    currency_code: str


@dataclass(frozen=True)
class NewOrder:
    deal_id: str
    lead_id: str
    lines: tuple[Line, ...]
    total_minor: int
    currency_code: str


def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isascii() and code.isalpha()


def _id_problems(deal_id: str, lead_id: str) -> list[str]:
    return [
        f"{name} must have 1 to {MAX_ID} characters"
        for name, value in (("deal_id", deal_id), ("lead_id", lead_id))
        if not value or len(value) > MAX_ID
    ]


def _line_problems(i: int, item: Line) -> list[str]:
    """What keeps items[i] from being an order line, each naming its field."""
    problems: list[str] = []
    sku = item.sku.strip()
    if not sku or len(sku) > MAX_SKU:
        problems.append(f"items[{i}].sku must have 1 to {MAX_SKU} characters")
    if len(item.description) > MAX_DESCRIPTION:
        problems.append(f"items[{i}].description has more than {MAX_DESCRIPTION} characters")
    if item.quantity < 1:
        problems.append(f"items[{i}].quantity must be at least 1")
    if item.unit_price_minor < 0:
        problems.append(f"items[{i}].unit_price must not be negative")
    if not _is_currency(item.currency_code):
        problems.append(f"items[{i}].unit_price.currency_code is not an ISO 4217 code")
    return problems


def _order_line(item: Line) -> Line:
    """A deal item as stored on the order: trimmed text, upper-case currency."""
    return Line(
        sku=item.sku.strip(),
        description=item.description.strip(),
        quantity=item.quantity,
        unit_price_minor=item.unit_price_minor,
        currency_code=item.currency_code.upper(),
    )


def _order_total(lines: tuple[Line, ...], total_minor: int, total_currency: str) -> tuple[int, str]:
    """The deal's total, or the sum of its lines when the deal has no total currency."""
    if not total_currency:
        currencies = {line.currency_code for line in lines}
        if len(currencies) != 1:
            raise UnfulfillableDeal("the deal has no total and its items mix currencies")
        return sum(x.quantity * x.unit_price_minor for x in lines), currencies.pop()
    if not _is_currency(total_currency) or total_minor < 0:
        raise UnfulfillableDeal(f"the deal total {total_minor} {total_currency!r} is not a valid amount")
    return total_minor, total_currency.upper()


def order_from_deal(
    *, deal_id: str, lead_id: str, items: list[Line], total_minor: int, total_currency: str
) -> NewOrder:
    """The order a won deal becomes: its items as lines and its total.

    A deal without a total currency gets the sum of its lines. Raises UnfulfillableDeal when
    no retry could ever make the deal an order.
    """
    if not items:
        raise UnfulfillableDeal("a won deal has no items")
    problems = _id_problems(deal_id, lead_id)
    for i, item in enumerate(items):
        problems.extend(_line_problems(i, item))
    if problems:
        raise UnfulfillableDeal("; ".join(problems))
    lines = tuple(_order_line(item) for item in items)
    total, currency = _order_total(lines, total_minor, total_currency)
    return NewOrder(deal_id, lead_id, lines, total, currency)


@dataclass(frozen=True)
class Shipment:
    carrier: str
    tracking_number: str
    estimated_delivery_date: date


def _text_violation(value: str) -> str | None:
    if not value:
        return "is required"
    if len(value) > MAX_SHIPMENT_TEXT:
        return f"at most {MAX_SHIPMENT_TEXT} characters"
    return None


def validate_shipment(
    *, carrier: str, tracking_number: str, delivery_date: tuple[int, int, int] | None, today: date
) -> Shipment:
    """Check a shipment request; delivery_date is (year, month, day), None when not given.

    Every problem is reported at once, each naming its field.
    """
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    violations: list[tuple[str, str]] = []
    for field, value in (("carrier", carrier), ("tracking_number", tracking_number)):
        problem = _text_violation(value)
        if problem:
            violations.append((field, problem))
    eta: date | None = None
    if delivery_date is None:
        violations.append(("estimated_delivery_date", "is required"))
    else:
        try:
            eta = date(*delivery_date)
        except ValueError as exc:
            violations.append(("estimated_delivery_date", f"not a real date: {exc}"))
        else:
            if eta < today:
                violations.append(("estimated_delivery_date", f"must not be before today ({today.isoformat()})"))
    if violations:
        raise InvalidArgument("invalid shipment: " + ", ".join(f for f, _ in violations), field_violations=violations)
    assert eta is not None
    return Shipment(carrier=carrier, tracking_number=tracking_number, estimated_delivery_date=eta)


def ensure_can_ship(status: OrderStatus) -> None:
    """Only a pending order ships; shipping is not repeated."""
    if status is not OrderStatus.PENDING:
        raise FailedPrecondition(f"order is already {status.value}", reason="ORDER_ALREADY_SHIPPED")
