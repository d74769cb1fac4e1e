"""What a quote line needs from the catalog: a product priced from a price list on a day, and the
VAT rate in force on a day. Read inside the caller's unit of work, so a quote is priced from the
same snapshot it is written in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_sales.db import price_list_items, price_lists, products, tax_rates


@dataclass(frozen=True)
class PricedLine:
    """A product as a price list sells it: its identity, unit and tax class, and its price."""

    product_id: str
    sku: str
    names: dict[str, str]
    unit: str
    tax_class: str
    currency: str
    unit_price_minor: int
    price_list_id: str
    # The VAT country of the price list (tax_rate_bp's country).
    country: str


async def priced_line(
    session: UnitOfWork,
    price_list_id: str,
    product_id: str,
    on: date,
    *,
    price_list_field: str = "price_list_id",
    product_field: str = "product_id",
) -> PricedLine:
    """The product priced by the price list on `on`. INVALID_ARGUMENT naming price_list_field when
    the list is unknown, inactive or not valid on that day (reason PRICE_LIST_NOT_FOUND,
    PRICE_LIST_INACTIVE, PRICE_LIST_EXPIRED or PRICE_LIST_NOT_YET_VALID), naming product_field when
    the list has no price for the product or the product is inactive (PRODUCT_NOT_IN_PRICE_LIST,
    PRODUCT_INACTIVE). The field names let a quote name the line (`lines[2].product_id`)."""
    price_list = (await session.conn.execute(select(price_lists).where(price_lists.c.id == price_list_id))).first()
    if price_list is None:
        raise _bad(price_list_field, f"price list {price_list_id} not found", "PRICE_LIST_NOT_FOUND", price_list_id)
    if not price_list.active:
        raise _bad(price_list_field, f"price list {price_list_id} is inactive", "PRICE_LIST_INACTIVE", price_list_id)
    if price_list.valid_to is not None and on > price_list.valid_to:
        raise _bad(
            price_list_field,
            f"price list {price_list_id} expired on {price_list.valid_to.isoformat()}",
            "PRICE_LIST_EXPIRED",
            price_list_id,
        )
    if on < price_list.valid_from:
        raise _bad(
            price_list_field,
            f"price list {price_list_id} is valid from {price_list.valid_from.isoformat()}",
            "PRICE_LIST_NOT_YET_VALID",
            price_list_id,
        )
    query = (
        select(products, price_list_items.c.unit_price_minor)
        .join(price_list_items, price_list_items.c.product_id == products.c.id)
        .where(price_list_items.c.price_list_id == price_list_id, products.c.id == product_id)
    )
    row = (await session.conn.execute(query)).first()
    if row is None:
        raise _bad(
            product_field,
            f"price list {price_list_id} has no price for product {product_id}",
            "PRODUCT_NOT_IN_PRICE_LIST",
            price_list_id,
        )
    if not row.active:
        raise _bad(product_field, f"product {product_id} is inactive", "PRODUCT_INACTIVE", price_list_id)
    return PricedLine(
        product_id=row.id,
        sku=row.sku,
        names=dict(row.names),
        unit=row.unit,
        tax_class=row.tax_class,
        currency=price_list.currency,
        unit_price_minor=int(row.unit_price_minor),
        price_list_id=price_list_id,
        country=price_list.country,
    )


async def tax_rate_bp(session: UnitOfWork, country: str, tax_class: str, on: date) -> int:
    """The VAT rate (basis points) of the tax class in the country on `on`: the rate with the
    latest valid_from on or before it. FAILED_PRECONDITION (reason TAX_RATE_MISSING) when none is
    in force: the catalog lacks a setting, the caller's input is not at fault."""
    query = (
        select(tax_rates.c.rate_bp)
        .where(tax_rates.c.country == country, tax_rates.c.tax_class == tax_class, tax_rates.c.valid_from <= on)
        .order_by(tax_rates.c.valid_from.desc())
        .limit(1)
    )
    rate = (await session.conn.execute(query)).scalar()
    if rate is None:
        raise FailedPrecondition(
            f"no {tax_class} VAT rate for {country} on {on.isoformat()}",
            reason="TAX_RATE_MISSING",
            metadata={"country": country, "tax_class": tax_class, "date": on.isoformat()},
        )
    return int(rate)


def _bad(field: str, message: str, reason: str, price_list_id: str) -> InvalidArgument:
    return InvalidArgument(
        message, reason=reason, field_violations=[(field, message)], metadata={"price_list_id": price_list_id}
    )
