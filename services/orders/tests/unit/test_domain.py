from datetime import date

import pytest

from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_orders import domain

pytestmark = pytest.mark.unit

TODAY = date(2026, 3, 10)


def line(sku: str = "SOFA", quantity: int = 1, price: int = 1000, currency: str = "ILS") -> domain.Line:
    return domain.Line(sku=sku, description=" ספה ", quantity=quantity, unit_price_minor=price, currency_code=currency)


def test_won_deal_becomes_order_with_its_lines_and_total() -> None:
    new = domain.order_from_deal(
        deal_id="d1", lead_id="l1", items=[line(), line("PILLOW", 2, 50)], total_minor=1100, total_currency="ils"
    )
    assert new.total_minor == 1100 and new.currency_code == "ILS"
    assert [(x.sku, x.quantity, x.description) for x in new.lines] == [("SOFA", 1, "ספה"), ("PILLOW", 2, "ספה")]


def test_deal_without_total_gets_the_sum_of_its_lines() -> None:
    new = domain.order_from_deal(
        deal_id="d1", lead_id="l1", items=[line(price=300), line("X", 3, 100)], total_minor=0, total_currency=""
    )
    assert (new.total_minor, new.currency_code) == (600, "ILS")


@pytest.mark.parametrize(
    ("items", "deal_id", "problem"),
    [
        ([], "d1", "no items"),
        ([line(sku=" ")], "d1", "items[0].sku"),
        ([line(quantity=0)], "d1", "items[0].quantity"),
        ([line(currency="shekel")], "d1", "currency_code"),
        ([line()], "", "deal_id"),
    ],
)
def test_unfulfillable_deals_are_refused(items: list[domain.Line], deal_id: str, problem: str) -> None:
    with pytest.raises(domain.UnfulfillableDeal) as err:
        domain.order_from_deal(deal_id=deal_id, lead_id="l1", items=items, total_minor=1, total_currency="ILS")
    assert problem in str(err.value)


def test_valid_shipment_is_trimmed_and_today_is_allowed() -> None:
    shipment = domain.validate_shipment(
        carrier=" דואר ישראל ", tracking_number=" RR123IL ", delivery_date=(2026, 3, 10), today=TODAY
    )
    assert shipment == domain.Shipment("דואר ישראל", "RR123IL", TODAY)


@pytest.mark.parametrize(
    ("carrier", "tracking", "eta", "field"),
    [
        ("", "T1", (2026, 3, 12), "carrier"),
        ("x" * 101, "T1", (2026, 3, 12), "carrier"),
        ("UPS", "  ", (2026, 3, 12), "tracking_number"),
        ("UPS", "T1", None, "estimated_delivery_date"),
        ("UPS", "T1", (2026, 2, 30), "estimated_delivery_date"),
        ("UPS", "T1", (0, 0, 0), "estimated_delivery_date"),
        ("UPS", "T1", (2026, 3, 9), "estimated_delivery_date"),
    ],
)
def test_bad_shipment_names_the_field(
    carrier: str, tracking: str, eta: tuple[int, int, int] | None, field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_shipment(carrier=carrier, tracking_number=tracking, delivery_date=eta, today=TODAY)
    assert [f for f, _ in err.value.field_violations] == [field]


def test_every_shipment_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_shipment(carrier="", tracking_number="", delivery_date=None, today=TODAY)
    assert [f for f, _ in err.value.field_violations] == ["carrier", "tracking_number", "estimated_delivery_date"]


def test_a_shipped_order_does_not_ship_again() -> None:
    domain.ensure_can_ship(domain.OrderStatus.PENDING)
    with pytest.raises(FailedPrecondition) as err:
        domain.ensure_can_ship(domain.OrderStatus.SHIPPED)
    assert err.value.reason == "ORDER_ALREADY_SHIPPED"
