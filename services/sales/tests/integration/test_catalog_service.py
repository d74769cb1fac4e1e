"""The catalog in the sales service, in process against real PostgreSQL: products with unique
SKUs, price lists with their items under the list's etag, VAT rates with their history, and the
lookups quotes price from (crm_sales.catalog.lookup). Each bad input names its field and writes
nothing; each change is audited."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import text

from crm.common.v1 import types_pb2
from crm.sales.v1 import catalog_pb2
from crm_kit import caller
from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_kit.testing import violated_fields
from crm_sales.catalog import lookup

if TYPE_CHECKING:
    from conftest import Sales  # the fixture's type (conftest.py)

pytestmark = pytest.mark.integration


def reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


async def sql(sales: Sales, statement: str, **params: Any) -> list[Any]:
    async with sales.service.db.engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


def d(value: date) -> types_pb2.Date:
    return types_pb2.Date(year=value.year, month=value.month, day=value.day)


def sofa(sku: str = "") -> catalog_pb2.Product:
    return catalog_pb2.Product(
        sku=sku or f"SOFA-{uuid.uuid4().hex[:6]}",
        names={"he": "ספה תלת-מושבית", "en": "Three-seat sofa", "fa": "مبل سه‌نفره"},
        unit="unit",
        tax_class="standard",
        product_line="furniture",
        active=True,
    )


async def product(sales: Sales, **fields: Any) -> catalog_pb2.Product:
    made = sofa()
    for name, value in fields.items():
        setattr(made, name, value)
    return (await sales.catalog.CreateProduct(catalog_pb2.CreateProductRequest(product=made))).product


def ils_list(*items: catalog_pb2.PriceListItem, **fields: Any) -> catalog_pb2.PriceList:
    price_list = catalog_pb2.PriceList(
        name="מחירון 2026",
        currency_code="ILS",
        country_code="IL",
        valid_from=d(date(2026, 1, 1)),
        valid_to=d(date(2026, 12, 31)),
        active=True,
        items=list(items),
    )
    for name, value in fields.items():
        if isinstance(value, types_pb2.Date):
            getattr(price_list, name).CopyFrom(value)
        else:
            setattr(price_list, name, value)
    return price_list


def item(product_id: str, amount: int, currency: str = "") -> catalog_pb2.PriceListItem:
    return catalog_pb2.PriceListItem(
        product_id=product_id, unit_price=types_pb2.Money(amount_minor=amount, currency_code=currency)
    )


async def refused(call: Any, request: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(request)
    return err.value


async def test_a_product_is_created_once_per_request_its_sku_is_unique_and_edits_need_its_etag(sales: Sales) -> None:
    create = catalog_pb2.CreateProductRequest(product=sofa("SOFA-3"), request_id="req-sofa")
    with caller.acting_as("manager-noa", "req-sofa"):
        made = (await sales.catalog.CreateProduct(create)).product
        again = (await sales.catalog.CreateProduct(create)).product
    assert again == made and made.etag == '"1"'
    assert dict(made.names) == {"he": "ספה תלת-מושבית", "en": "Three-seat sofa", "fa": "مبل سه‌نفره"}

    # Another product with the same SKU is ALREADY_EXISTS naming it.
    taken = await refused(sales.catalog.CreateProduct, catalog_pb2.CreateProductRequest(product=sofa("SOFA-3")))
    assert taken.code() == grpc.StatusCode.ALREADY_EXISTS and reason(taken) == "SKU_TAKEN"
    assert violated_fields(taken) == {"sku"}

    # No name in any language, and a unit we do not know: both named, nothing written.
    nameless = sofa()
    nameless.names.clear()
    nameless.names["en"] = "  "
    nameless.unit = "crate"
    bad = await refused(sales.catalog.CreateProduct, catalog_pb2.CreateProductRequest(product=nameless))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and violated_fields(bad) == {"names", "unit"}
    assert len(await sql(sales, "SELECT id FROM products")) == 1

    # Deactivate under the etag; the old etag is refused afterwards.
    deactivate = catalog_pb2.UpdateProductRequest(
        product=catalog_pb2.Product(id=made.id, active=False, tax_class="zero"),
        update_mask=FieldMask(paths=["active", "tax_class"]),
        etag=made.etag,
    )
    updated = (await sales.catalog.UpdateProduct(deactivate)).product
    assert (updated.active, updated.tax_class, updated.etag) == (False, "zero", '"2"')
    stale = await refused(sales.catalog.UpdateProduct, deactivate)
    assert stale.code() == grpc.StatusCode.ABORTED and reason(stale) == "STALE_ETAG"

    # Taking another product's SKU on update is refused too.
    other = await product(sales)
    rename = catalog_pb2.UpdateProductRequest(
        product=catalog_pb2.Product(id=other.id, sku="SOFA-3"), update_mask=FieldMask(paths=["sku"])
    )
    assert (await refused(sales.catalog.UpdateProduct, rename)).code() == grpc.StatusCode.ALREADY_EXISTS

    listed = (await sales.catalog.ListProducts(catalog_pb2.ListProductsRequest())).products
    assert [p.id for p in listed] == [other.id]
    everything = (await sales.catalog.ListProducts(catalog_pb2.ListProductsRequest(show_inactive=True))).products
    assert {p.id for p in everything} == {made.id, other.id}
    missing = await refused(sales.catalog.GetProduct, catalog_pb2.GetProductRequest(product_id="nope"))
    assert missing.code() == grpc.StatusCode.NOT_FOUND

    audit = await sql(sales, "SELECT action, actor FROM audit_log WHERE record_id = :id ORDER BY id", id=made.id)
    assert [tuple(a) for a in audit] == [("sales.CreateProduct", "manager-noa"), ("sales.UpdateProduct", "unknown")]


async def test_products_page_by_sku(sales: Sales) -> None:
    skus = [f"P-{n:02d}" for n in range(5)]
    for sku in reversed(skus):
        await sales.catalog.CreateProduct(catalog_pb2.CreateProductRequest(product=sofa(sku)))
    first = await sales.catalog.ListProducts(catalog_pb2.ListProductsRequest(page_size=3))
    second = await sales.catalog.ListProducts(
        catalog_pb2.ListProductsRequest(page_size=3, page_token=first.next_page_token)
    )
    assert [p.sku for p in [*first.products, *second.products]] == skus
    assert second.next_page_token == ""


async def test_a_price_list_is_created_with_its_items_and_each_bad_one_names_its_field(sales: Sales) -> None:
    chair, table = await product(sales), await product(sales)
    with caller.acting_as("manager-noa"):
        made = (
            await sales.catalog.CreatePriceList(
                catalog_pb2.CreatePriceListRequest(price_list=ils_list(item(chair.id, 49_900), item(table.id, 0)))
            )
        ).price_list
    assert (made.currency_code, made.country_code, made.etag) == ("ILS", "IL", '"1"')
    assert {(i.product_id, i.unit_price.amount_minor, i.unit_price.currency_code) for i in made.items} == {
        (chair.id, 49_900, "ILS"),
        (table.id, 0, "ILS"),
    }

    cases = [
        (ils_list(currency_code="GBP"), {"currency_code"}),
        (ils_list(valid_to=d(date(2025, 6, 30))), {"valid_to"}),
        (ils_list(item(chair.id, -1)), {"items[0].unit_price.amount_minor"}),
        (ils_list(item(chair.id, 10), item(table.id, 10, "USD")), {"items[1].unit_price.currency_code"}),
        (ils_list(item(chair.id, 10), item("no-such-product", 10)), {"items[1].product_id"}),
        (ils_list(country_code="FR"), {"country_code"}),
        (
            ils_list(item(chair.id, 150), currency_code="IRR", country_code="IR"),
            {"items[0].unit_price.amount_minor"},
        ),
    ]
    for bad, fields in cases:
        error = await refused(sales.catalog.CreatePriceList, catalog_pb2.CreatePriceListRequest(price_list=bad))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert violated_fields(error) == fields
    # Nothing of the refused lists was written.
    assert len(await sql(sales, "SELECT id FROM price_lists")) == 1
    assert len(await sql(sales, "SELECT product_id FROM price_list_items")) == 2

    # Currency and country are fixed; validity and name change under the etag.
    fixed = catalog_pb2.UpdatePriceListRequest(
        price_list=catalog_pb2.PriceList(id=made.id, currency_code="USD"),
        update_mask=FieldMask(paths=["currency_code"]),
    )
    assert violated_fields(await refused(sales.catalog.UpdatePriceList, fixed)) == {"currency_code"}
    extend = catalog_pb2.UpdatePriceListRequest(
        price_list=catalog_pb2.PriceList(id=made.id, name="מחירון פתוח"),
        update_mask=FieldMask(paths=["name", "valid_to"]),
        etag=made.etag,
    )
    extended = (await sales.catalog.UpdatePriceList(extend)).price_list
    assert (extended.name, extended.HasField("valid_to"), extended.etag) == ("מחירון פתוח", False, '"2"')
    backwards = catalog_pb2.UpdatePriceListRequest(
        price_list=ils_list(id=made.id, valid_to=d(date(2025, 1, 1))), update_mask=FieldMask(paths=["valid_to"])
    )
    assert violated_fields(await refused(sales.catalog.UpdatePriceList, backwards)) == {"valid_to"}

    audit = await sql(sales, "SELECT action, actor FROM audit_log WHERE record_id = :id ORDER BY id", id=made.id)
    assert [tuple(a) for a in audit] == [("sales.CreatePriceList", "manager-noa"), ("sales.UpdatePriceList", "unknown")]


async def test_items_are_set_and_removed_under_the_lists_etag(sales: Sales) -> None:
    chair, lamp = await product(sales), await product(sales)
    made = (
        await sales.catalog.CreatePriceList(
            catalog_pb2.CreatePriceListRequest(price_list=ils_list(item(chair.id, 100)))
        )
    ).price_list

    added = await sales.catalog.SetPriceListItem(
        catalog_pb2.SetPriceListItemRequest(price_list_id=made.id, item=item(lamp.id, 12_000), etag=made.etag)
    )
    assert (added.item.sku, added.item.unit_price.amount_minor, added.price_list_etag) == (lamp.sku, 12_000, '"2"')
    # Setting the same price again changes nothing, not even the etag.
    same = await sales.catalog.SetPriceListItem(
        catalog_pb2.SetPriceListItemRequest(price_list_id=made.id, item=item(lamp.id, 12_000))
    )
    assert same.price_list_etag == '"2"'
    changed = await sales.catalog.SetPriceListItem(
        catalog_pb2.SetPriceListItemRequest(price_list_id=made.id, item=item(lamp.id, 11_000), etag='"2"')
    )
    assert (changed.item.unit_price.amount_minor, changed.price_list_etag) == (11_000, '"3"')

    stale = await refused(
        sales.catalog.SetPriceListItem,
        catalog_pb2.SetPriceListItemRequest(price_list_id=made.id, item=item(lamp.id, 1), etag=made.etag),
    )
    assert stale.code() == grpc.StatusCode.ABORTED
    negative = await refused(
        sales.catalog.SetPriceListItem,
        catalog_pb2.SetPriceListItemRequest(price_list_id=made.id, item=item(lamp.id, -5)),
    )
    assert violated_fields(negative) == {"unit_price.amount_minor"}

    removed = await sales.catalog.RemovePriceListItem(
        catalog_pb2.RemovePriceListItemRequest(price_list_id=made.id, product_id=chair.id, etag='"3"')
    )
    assert removed.price_list_etag == '"4"'
    # Removing it again is safe and changes nothing.
    again = await sales.catalog.RemovePriceListItem(
        catalog_pb2.RemovePriceListItemRequest(price_list_id=made.id, product_id=chair.id)
    )
    assert again.price_list_etag == '"4"'

    now = (await sales.catalog.GetPriceList(catalog_pb2.GetPriceListRequest(price_list_id=made.id))).price_list
    assert [(i.product_id, i.unit_price.amount_minor) for i in now.items] == [(lamp.id, 11_000)]
    actions = await sql(sales, "SELECT action FROM audit_log WHERE record_id = :id ORDER BY id", id=made.id)
    assert [a for (a,) in actions] == [
        "sales.CreatePriceList",
        "sales.SetPriceListItem",
        "sales.SetPriceListItem",
        "sales.RemovePriceListItem",
    ]

    lists = await sales.catalog.ListPriceLists(catalog_pb2.ListPriceListsRequest(currency_code="ILS"))
    assert [p.id for p in lists.price_lists] == [made.id] and not lists.price_lists[0].items
    assert not (await sales.catalog.ListPriceLists(catalog_pb2.ListPriceListsRequest(currency_code="EUR"))).price_lists


async def test_vat_rates_are_seeded_and_a_new_rate_starts_on_its_day(sales: Sales) -> None:
    seeded = (await sales.catalog.ListTaxRates(catalog_pb2.ListTaxRatesRequest(country_code="IL"))).tax_rates
    assert [(r.tax_class, r.rate_bp, r.valid_from.year) for r in seeded] == [
        ("exempt", 0, 2015),
        ("standard", 1700, 2015),
        ("standard", 1800, 2025),
        ("zero", 0, 2015),
    ]
    rate = catalog_pb2.TaxRate(country_code="IR", tax_class="standard", rate_bp=1200, valid_from=d(date(2026, 3, 21)))
    with caller.acting_as("admin-rivka"):
        made = (await sales.catalog.CreateTaxRate(catalog_pb2.CreateTaxRateRequest(tax_rate=rate))).tax_rate
        again = (await sales.catalog.CreateTaxRate(catalog_pb2.CreateTaxRateRequest(tax_rate=rate))).tax_rate
    assert made == again and made.rate_bp == 1200
    other = catalog_pb2.TaxRate(country_code="IR", tax_class="standard", rate_bp=1500, valid_from=d(date(2026, 3, 21)))
    clash = await refused(sales.catalog.CreateTaxRate, catalog_pb2.CreateTaxRateRequest(tax_rate=other))
    assert clash.code() == grpc.StatusCode.ALREADY_EXISTS and reason(clash) == "TAX_RATE_EXISTS"
    bad = catalog_pb2.TaxRate(country_code="IR", tax_class="zero", rate_bp=500)
    assert violated_fields(
        await refused(sales.catalog.CreateTaxRate, catalog_pb2.CreateTaxRateRequest(tax_rate=bad))
    ) == {
        "rate_bp",
        "valid_from",
    }
    audit = await sql(sales, "SELECT action, actor, record_id FROM audit_log WHERE record_type = 'tax_rate'")
    assert [tuple(a) for a in audit] == [("sales.CreateTaxRate", "admin-rivka", "IR/standard/2026-03-21")]

    async with sales.service.db.unit_of_work() as uow:
        assert await lookup.tax_rate_bp(uow, "IL", "standard", date(2024, 12, 31)) == 1700
        assert await lookup.tax_rate_bp(uow, "IL", "standard", date(2025, 1, 1)) == 1800
        assert await lookup.tax_rate_bp(uow, "IL", "zero", date(2026, 5, 1)) == 0
        assert await lookup.tax_rate_bp(uow, "IR", "standard", date(2026, 3, 20)) == 1000
        assert await lookup.tax_rate_bp(uow, "IR", "standard", date(2026, 3, 21)) == 1200
        with pytest.raises(FailedPrecondition) as missing:
            await lookup.tax_rate_bp(uow, "IR", "standard", date(2024, 3, 19))
    assert missing.value.reason == "TAX_RATE_MISSING"


async def test_a_quote_line_is_priced_only_from_a_list_valid_that_day(sales: Sales) -> None:
    chair, stool, retired = await product(sales), await product(sales), await product(sales)
    made = (
        await sales.catalog.CreatePriceList(
            catalog_pb2.CreatePriceListRequest(price_list=ils_list(item(chair.id, 49_900), item(retired.id, 100)))
        )
    ).price_list
    await sales.catalog.UpdateProduct(
        catalog_pb2.UpdateProductRequest(
            product=catalog_pb2.Product(id=retired.id, active=False), update_mask=FieldMask(paths=["active"])
        )
    )
    async with sales.service.db.unit_of_work() as uow:
        priced = await lookup.priced_line(uow, made.id, chair.id, date(2026, 6, 1))
        assert priced == lookup.PricedLine(
            product_id=chair.id,
            sku=chair.sku,
            names=dict(chair.names),
            unit="unit",
            tax_class="standard",
            currency="ILS",
            unit_price_minor=49_900,
            price_list_id=made.id,
            country="IL",
        )
        refusals = [
            ("no-such-list", chair.id, date(2026, 6, 1), "price_list_id", "PRICE_LIST_NOT_FOUND"),
            (made.id, chair.id, date(2027, 1, 1), "price_list_id", "PRICE_LIST_EXPIRED"),
            (made.id, chair.id, date(2025, 12, 31), "price_list_id", "PRICE_LIST_NOT_YET_VALID"),
            (made.id, stool.id, date(2026, 6, 1), "lines[1].product_id", "PRODUCT_NOT_IN_PRICE_LIST"),
            (made.id, retired.id, date(2026, 6, 1), "lines[1].product_id", "PRODUCT_INACTIVE"),
        ]
        for price_list_id, product_id, on, field, why in refusals:
            with pytest.raises(InvalidArgument) as err:
                await lookup.priced_line(uow, price_list_id, product_id, on, product_field="lines[1].product_id")
            assert (err.value.reason, [f for f, _ in err.value.field_violations]) == (why, [field])
    await sales.catalog.UpdatePriceList(
        catalog_pb2.UpdatePriceListRequest(
            price_list=catalog_pb2.PriceList(id=made.id, active=False), update_mask=FieldMask(paths=["active"])
        )
    )
    async with sales.service.db.unit_of_work() as uow:
        with pytest.raises(InvalidArgument) as inactive:
            await lookup.priced_line(uow, made.id, chair.id, date(2026, 6, 1))
    assert inactive.value.reason == "PRICE_LIST_INACTIVE"
