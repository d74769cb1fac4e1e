"""What a quote line needs from the catalog: a product priced from a price list on a day, and the
VAT rate in force on a day. Read inside the caller's unit of work, so a quote is priced from the
same snapshot it is written in. A quote's lines are priced together (`priced_lines`): a fixed
number of queries however many lines it has."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select, tuple_

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


@dataclass(frozen=True)
class WantedLine:
    """A product wanted from a price list, and the request's fields an error about it names."""

    price_list_id: str
    product_id: str
    price_list_field: str = "price_list_id"
    product_field: str = "product_id"


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
    [priced] = await priced_lines(session, [WantedLine(price_list_id, product_id, price_list_field, product_field)], on)
    if isinstance(priced, InvalidArgument):
        raise priced
    return priced


async def priced_lines(
    session: UnitOfWork, wanted: Sequence[WantedLine], on: date
) -> list[PricedLine | InvalidArgument]:
    """Each wanted product priced as `priced_line` prices it, or the INVALID_ARGUMENT it would
    raise (so a caller names every bad line at once), in two queries whatever their number: the
    price lists, then the products with their prices."""
    if not wanted:
        return []
    list_ids = sorted({w.price_list_id for w in wanted})
    lists = {
        row.id: row for row in await session.conn.execute(select(price_lists).where(price_lists.c.id.in_(list_ids)))
    }
    list_problems = {list_id: _list_problem(lists.get(list_id), list_id, on) for list_id in list_ids}
    pairs = sorted({(w.price_list_id, w.product_id) for w in wanted if list_problems[w.price_list_id] is None})
    prices: dict[tuple[str, str], Any] = {}
    if pairs:
        query = (
            select(products, price_list_items.c.price_list_id, price_list_items.c.unit_price_minor)
            .join(price_list_items, price_list_items.c.product_id == products.c.id)
            .where(tuple_(price_list_items.c.price_list_id, price_list_items.c.product_id).in_(pairs))
        )
        prices = {(row.price_list_id, row.id): row for row in await session.conn.execute(query)}
    results: list[PricedLine | InvalidArgument] = []
    for w in wanted:
        problem = list_problems[w.price_list_id]
        if problem is not None:
            message, reason = problem
            results.append(_bad(w.price_list_field, message, reason, w.price_list_id))
        else:
            results.append(_priced(w, lists[w.price_list_id], prices.get((w.price_list_id, w.product_id))))
    return results


def _list_problem(price_list: Any, price_list_id: str, on: date) -> tuple[str, str] | None:
    """Why the list cannot price a line on `on` (message, reason), or None."""
    if price_list is None:
        return f"price list {price_list_id} not found", "PRICE_LIST_NOT_FOUND"
    if not price_list.active:
        return f"price list {price_list_id} is inactive", "PRICE_LIST_INACTIVE"
    if price_list.valid_to is not None and on > price_list.valid_to:
        return f"price list {price_list_id} expired on {price_list.valid_to.isoformat()}", "PRICE_LIST_EXPIRED"
    if on < price_list.valid_from:
        return (
            f"price list {price_list_id} is valid from {price_list.valid_from.isoformat()}",
            "PRICE_LIST_NOT_YET_VALID",
        )
    return None


def _priced(wanted: WantedLine, price_list: Any, row: Any) -> PricedLine | InvalidArgument:
    list_id, product_id = wanted.price_list_id, wanted.product_id
    if row is None:
        message = f"price list {list_id} has no price for product {product_id}"
        return _bad(wanted.product_field, message, "PRODUCT_NOT_IN_PRICE_LIST", list_id)
    if not row.active:
        return _bad(wanted.product_field, f"product {product_id} is inactive", "PRODUCT_INACTIVE", list_id)
    return PricedLine(
        product_id=row.id,
        sku=row.sku,
        names=dict(row.names),
        unit=row.unit,
        tax_class=row.tax_class,
        currency=price_list.currency,
        unit_price_minor=int(row.unit_price_minor),
        price_list_id=list_id,
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
