"""Reads of the catalog: products, price lists with their items, VAT rates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_sales.db import price_list_items, price_lists, products, tax_rates


@dataclass
class PriceListView:
    row: Any
    # Each with the product's `sku`; empty in lists of price lists.
    items: list[Any] = field(default_factory=list)


def product_not_found(product_id: str) -> NotFound:
    return NotFound(f"product {product_id} not found", reason="PRODUCT_NOT_FOUND", metadata={"product_id": product_id})


def price_list_not_found(price_list_id: str) -> NotFound:
    return NotFound(
        f"price list {price_list_id} not found",
        reason="PRICE_LIST_NOT_FOUND",
        metadata={"price_list_id": price_list_id},
    )


async def get_product(uow: UnitOfWork, product_id: str, *, lock: bool = False) -> Any:
    query = select(products).where(products.c.id == product_id)
    row = (await uow.conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise product_not_found(product_id)
    return row


async def find_product_by_request_id(uow: UnitOfWork, request_id: str) -> Any:
    return (await uow.conn.execute(select(products).where(products.c.request_id == request_id))).first()


async def product_with_sku(uow: UnitOfWork, sku: str) -> str | None:
    """The id of the product with this SKU, if any."""
    return (await uow.conn.execute(select(products.c.id).where(products.c.sku == sku))).scalar()


async def list_products(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, show_inactive: bool, product_line: str
) -> tuple[list[Any], list[Any] | None]:
    """Products by SKU, by keyset (sku, id)."""
    query = select(products)
    if not show_inactive:
        query = query.where(products.c.active)
    if product_line:
        query = query.where(products.c.product_line == product_line)
    return await keyset_page(uow.conn, query, products.c.sku, products.c.id, limit=limit, after=after)


async def _items(uow: UnitOfWork, price_list_id: str) -> list[Any]:
    query = (
        select(price_list_items, products.c.sku)
        .join(products, products.c.id == price_list_items.c.product_id)
        .where(price_list_items.c.price_list_id == price_list_id)
        .order_by(products.c.sku)
    )
    return list((await uow.conn.execute(query)).all())


async def get_price_list(uow: UnitOfWork, price_list_id: str, *, lock: bool = False) -> PriceListView:
    query = select(price_lists).where(price_lists.c.id == price_list_id)
    row = (await uow.conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise price_list_not_found(price_list_id)
    return PriceListView(row=row, items=await _items(uow, price_list_id))


async def find_price_list_by_request_id(uow: UnitOfWork, request_id: str) -> PriceListView | None:
    query = select(price_lists.c.id).where(price_lists.c.request_id == request_id)
    price_list_id = (await uow.conn.execute(query)).scalar()
    return await get_price_list(uow, price_list_id) if price_list_id else None


async def list_price_lists(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, show_inactive: bool, currency: str
) -> tuple[list[PriceListView], list[Any] | None]:
    """Price lists oldest first, without their items, by keyset (created_at, id)."""
    query = select(price_lists)
    if not show_inactive:
        query = query.where(price_lists.c.active)
    if currency:
        query = query.where(price_lists.c.currency == currency)
    rows, position = await keyset_page(
        uow.conn, query, price_lists.c.created_at, price_lists.c.id, limit=limit, after=after
    )
    return [PriceListView(row=r) for r in rows], position


async def existing_products(uow: UnitOfWork, product_ids: list[str]) -> set[str]:
    query = select(products.c.id).where(products.c.id.in_(product_ids))
    return set((await uow.conn.execute(query)).scalars())


async def country_has_rates(uow: UnitOfWork, country: str) -> bool:
    query = select(tax_rates.c.country).where(tax_rates.c.country == country).limit(1)
    return (await uow.conn.execute(query)).first() is not None


async def get_tax_rate(uow: UnitOfWork, country: str, tax_class: str, valid_from: Any) -> Any:
    query = select(tax_rates).where(
        tax_rates.c.country == country, tax_rates.c.tax_class == tax_class, tax_rates.c.valid_from == valid_from
    )
    return (await uow.conn.execute(query)).first()


async def list_tax_rates(uow: UnitOfWork, country: str) -> list[Any]:
    query = select(tax_rates).order_by(tax_rates.c.country, tax_rates.c.tax_class, tax_rates.c.valid_from)
    if country:
        query = query.where(tax_rates.c.country == country)
    return list((await uow.conn.execute(query)).all())
