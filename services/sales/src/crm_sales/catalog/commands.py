"""Writes of the catalog, each in the caller's unit of work with its audit record. The catalog
publishes no events: nothing outside sales reacts to a price, and quotes copy what they use."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_kit.db import UnitOfWork
from crm_kit.errors import AlreadyExists, InvalidArgument
from crm_sales import domain as deal_rules
from crm_sales.catalog import domain, queries
from crm_sales.catalog.queries import PriceListView
from crm_sales.db import price_list_items, price_lists, products, tax_rates


async def _lock_sku(uow: UnitOfWork, sku: str) -> None:
    """Serialise the writers of one SKU until commit, so "is it taken?" stays true until the write
    (the unique index would otherwise turn a race into an error of the whole transaction)."""
    await uow.conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("sales.product.sku:" + sku))))


async def _refuse_taken_sku(uow: UnitOfWork, sku: str, product_id: str = "") -> None:
    await _lock_sku(uow, sku)
    owner = await queries.product_with_sku(uow, sku)
    if owner is not None and owner != product_id:
        raise AlreadyExists(
            f"SKU {sku} is taken by product {owner}",
            reason="SKU_TAKEN",
            field_violations=[("sku", f"is taken by product {owner}")],
            metadata={"product_id": owner},
        )


def _product_details(draft: domain.ProductDraft, fields: Sequence[str]) -> dict[str, Any]:
    return {f: dict(draft.names) if f == "names" else getattr(draft, f) for f in fields}


async def create_product(uow: UnitOfWork, draft: domain.ProductDraft, *, request_id: str = "") -> Any:
    """Create a product; a repeated request_id returns the first one (AIP-155)."""
    draft = domain.validate_product(draft)
    if request_id:
        await uow.conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("sales.product.request:" + request_id))))
        first = await queries.find_product_by_request_id(uow, request_id)
        if first is not None:
            return first
    await _refuse_taken_sku(uow, draft.sku)
    product_id = str(uuid.uuid4())
    await uow.conn.execute(
        products.insert().values(
            id=product_id,
            sku=draft.sku,
            names=dict(draft.names),
            unit=draft.unit,
            tax_class=draft.tax_class,
            product_line=draft.product_line,
            active=draft.active,
            request_id=request_id or None,
        )
    )
    uow.audit("sales.CreateProduct", "product", product_id, _product_details(draft, domain.PRODUCT_FIELDS))
    return await queries.get_product(uow, product_id)


def _product_draft(row: Any) -> domain.ProductDraft:
    return domain.ProductDraft(
        sku=row.sku,
        names=dict(row.names),
        unit=row.unit,
        tax_class=row.tax_class,
        product_line=row.product_line,
        active=row.active,
    )


async def update_product(
    uow: UnitOfWork, product_id: str, requested: domain.ProductDraft, mask: Sequence[str], *, etag: str = ""
) -> Any:
    """Change the fields of `mask`; a change that changes nothing keeps the etag."""
    mask = domain.check_mask(mask, domain.PRODUCT_FIELDS)
    requested = domain.validate_product(requested, mask)
    current = await queries.get_product(uow, product_id, lock=True)
    deal_rules.check_etag(etag, current.version, f"product {product_id}")
    before = _product_draft(current)
    values = {f: getattr(requested, f) for f in mask}
    if "names" in values:
        values["names"] = dict(requested.names)
    if all(getattr(before, f) == values[f] for f in mask):
        return current
    if "sku" in mask and requested.sku != before.sku:
        await _refuse_taken_sku(uow, requested.sku, product_id)
    await uow.conn.execute(
        update(products)
        .where(products.c.id == product_id)
        .values(**values, version=products.c.version + 1, updated_at=datetime.now(UTC))
    )
    uow.audit("sales.UpdateProduct", "product", product_id, _product_details(requested, mask))
    return await queries.get_product(uow, product_id)


# ---------------------------------------------------------------- price lists


def _price_list_details(draft: domain.PriceListDraft) -> dict[str, Any]:
    return {
        "name": draft.name,
        "currency_code": draft.currency,
        "country_code": draft.country,
        "valid_from": draft.valid_from.isoformat() if draft.valid_from else None,
        "valid_to": draft.valid_to.isoformat() if draft.valid_to else None,
        "active": draft.active,
    }


async def _require_products(uow: UnitOfWork, items: Sequence[domain.ItemDraft], at: str) -> None:
    """INVALID_ARGUMENT naming each item whose product does not exist."""
    known = await queries.existing_products(uow, [item.product_id for item in items])
    unknown = [
        (at.format(i=i) + "product_id", f"product {item.product_id} not found")
        for i, item in enumerate(items)
        if item.product_id not in known
    ]
    if unknown:
        raise InvalidArgument("unknown products", reason="PRODUCT_NOT_FOUND", field_violations=unknown)


async def create_price_list(uow: UnitOfWork, draft: domain.PriceListDraft, *, request_id: str = "") -> PriceListView:
    """Create a price list with its items; a repeated request_id returns the first one (AIP-155).
    Its country must have VAT rates, or no quote could be priced from it."""
    draft = domain.validate_new_price_list(draft)
    if request_id:
        lock = func.hashtext("sales.price_list.request:" + request_id)
        await uow.conn.execute(select(func.pg_advisory_xact_lock(lock)))
        first = await queries.find_price_list_by_request_id(uow, request_id)
        if first is not None:
            return first
    if not await queries.country_has_rates(uow, draft.country):
        raise InvalidArgument(
            f"no VAT rates for {draft.country}",
            reason="COUNTRY_WITHOUT_TAX_RATES",
            field_violations=[("country_code", "has no VAT rates: add them first (POST /tax-rates)")],
        )
    await _require_products(uow, draft.items, "items[{i}].")
    price_list_id = str(uuid.uuid4())
    await uow.conn.execute(
        price_lists.insert().values(
            id=price_list_id,
            name=draft.name,
            currency=draft.currency,
            country=draft.country,
            valid_from=draft.valid_from,
            valid_to=draft.valid_to,
            active=draft.active,
            request_id=request_id or None,
        )
    )
    if draft.items:
        rows = [
            {"price_list_id": price_list_id, "product_id": i.product_id, "unit_price_minor": i.unit_price_minor}
            for i in draft.items
        ]
        await uow.conn.execute(price_list_items.insert(), rows)
    details = _price_list_details(draft)
    details["items"] = [{"product_id": i.product_id, "unit_price_minor": i.unit_price_minor} for i in draft.items]
    uow.audit("sales.CreatePriceList", "price_list", price_list_id, details)
    return await queries.get_price_list(uow, price_list_id)


def _price_list_draft(row: Any) -> domain.PriceListDraft:
    return domain.PriceListDraft(
        name=row.name,
        currency=row.currency,
        country=row.country,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        active=row.active,
    )


async def update_price_list(
    uow: UnitOfWork, price_list_id: str, requested: domain.PriceListDraft, mask: Sequence[str], *, etag: str = ""
) -> PriceListView:
    """Change the fields of `mask` (name, validity, active); currency and country are fixed."""
    fixed = [path for path in mask if path in ("currency_code", "country_code")]
    if fixed:
        raise InvalidArgument(
            "a price list's currency and country are fixed at creation",
            field_violations=[(path, "is fixed at creation: create another price list") for path in fixed],
        )
    mask = domain.check_mask(mask, domain.PRICE_LIST_FIELDS)
    current = await queries.get_price_list(uow, price_list_id, lock=True)
    deal_rules.check_etag(etag, current.row.version, f"price list {price_list_id}")
    before = _price_list_draft(current.row)
    updated = domain.apply_price_list_update(before, requested, mask)
    if updated == before:
        return current
    await uow.conn.execute(
        update(price_lists)
        .where(price_lists.c.id == price_list_id)
        .values(
            name=updated.name,
            valid_from=updated.valid_from,
            valid_to=updated.valid_to,
            active=updated.active,
            version=price_lists.c.version + 1,
            updated_at=datetime.now(UTC),
        )
    )
    details = {k: v for k, v in _price_list_details(updated).items() if k in mask}
    uow.audit("sales.UpdatePriceList", "price_list", price_list_id, details)
    return await queries.get_price_list(uow, price_list_id)


async def _bump(uow: UnitOfWork, price_list_id: str) -> str:
    """A change of the list's items is a change of the list: a new etag."""
    version = (
        await uow.conn.execute(
            update(price_lists)
            .where(price_lists.c.id == price_list_id)
            .values(version=price_lists.c.version + 1, updated_at=datetime.now(UTC))
            .returning(price_lists.c.version)
        )
    ).scalar_one()
    return deal_rules.etag(version)


async def set_price_list_item(
    uow: UnitOfWork, price_list_id: str, item: domain.ItemDraft, *, etag: str = ""
) -> tuple[Any, str, str]:
    """Add the product to the list or change its price: (the item with its sku, the list's
    currency, the list's etag)."""
    current = await queries.get_price_list(uow, price_list_id, lock=True)
    deal_rules.check_etag(etag, current.row.version, f"price list {price_list_id}")
    item = domain.validate_item(item, current.row.currency)
    await _require_products(uow, [item], "")
    previous = next((i.unit_price_minor for i in current.items if i.product_id == item.product_id), None)
    list_etag = deal_rules.etag(current.row.version)
    if previous != item.unit_price_minor:
        upsert = pg_insert(price_list_items).values(
            price_list_id=price_list_id, product_id=item.product_id, unit_price_minor=item.unit_price_minor
        )
        await uow.conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["price_list_id", "product_id"],
                set_={"unit_price_minor": upsert.excluded.unit_price_minor},
            )
        )
        list_etag = await _bump(uow, price_list_id)
        details = {"product_id": item.product_id, "unit_price_minor": item.unit_price_minor, "previous": previous}
        uow.audit("sales.SetPriceListItem", "price_list", price_list_id, details)
    saved = next(i for i in (await queries.get_price_list(uow, price_list_id)).items if i.product_id == item.product_id)
    return saved, current.row.currency, list_etag


async def remove_price_list_item(uow: UnitOfWork, price_list_id: str, product_id: str, *, etag: str = "") -> str:
    """Take the product out of the list; the list's etag after it. A product that is not in the
    list is already where the caller wants it: nothing changes (a retried DELETE is not an error)."""
    current = await queries.get_price_list(uow, price_list_id, lock=True)
    deal_rules.check_etag(etag, current.row.version, f"price list {price_list_id}")
    removed = (
        await uow.conn.execute(
            delete(price_list_items)
            .where(price_list_items.c.price_list_id == price_list_id, price_list_items.c.product_id == product_id)
            .returning(price_list_items.c.unit_price_minor)
        )
    ).scalar()
    if removed is None:
        return deal_rules.etag(current.row.version)
    uow.audit("sales.RemovePriceListItem", "price_list", price_list_id, {"product_id": product_id, "previous": removed})
    return await _bump(uow, price_list_id)


# ---------------------------------------------------------------- VAT rates


def _rate_key(rate: domain.TaxRate) -> str:
    return f"{rate.country}/{rate.tax_class}/{rate.valid_from.isoformat()}"


async def create_tax_rate(uow: UnitOfWork, draft: domain.TaxRateDraft) -> Any:
    """Add a rate from valid_from on. The same rate again returns the stored one (a retry); another
    rate for the same day is ALREADY_EXISTS: a rate in force is never rewritten in place."""
    rate = domain.validate_tax_rate(draft)
    inserted = (
        await uow.conn.execute(
            pg_insert(tax_rates)
            .values(country=rate.country, tax_class=rate.tax_class, rate_bp=rate.rate_bp, valid_from=rate.valid_from)
            .on_conflict_do_nothing()
            .returning(tax_rates.c.country)
        )
    ).scalar()
    row = await queries.get_tax_rate(uow, rate.country, rate.tax_class, rate.valid_from)
    if inserted is None and row.rate_bp != rate.rate_bp:
        raise AlreadyExists(
            f"{rate.country} {rate.tax_class} already has rate {row.rate_bp} bp from {rate.valid_from.isoformat()}",
            reason="TAX_RATE_EXISTS",
            field_violations=[("valid_from", "another rate starts on this day: add one from another day")],
            metadata={"rate_bp": str(row.rate_bp)},
        )
    if inserted is not None:
        details = {"rate_bp": rate.rate_bp, "valid_from": rate.valid_from.isoformat()}
        uow.audit("sales.CreateTaxRate", "tax_rate", _rate_key(rate), details)
    return row
