"""CatalogService: validation of the request's shape and proto mapping; the work is in
commands/queries. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import grpc

from crm.common.v1 import types_pb2
from crm.sales.v1 import catalog_pb2, catalog_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import encode_page_token, from_date, page_position, page_size, to_date, to_timestamp
from crm_sales.catalog import commands, domain, queries
from crm_sales.domain import etag

_REQUEST_ID_MAX = 200


def _check_request_id(request_id: str) -> None:
    if len(request_id) > _REQUEST_ID_MAX:
        raise InvalidArgument(
            "request_id is too long", field_violations=[("request_id", f"at most {_REQUEST_ID_MAX} characters")]
        )


def _date(value: types_pb2.Date, present: bool, field: str) -> date | None:
    return from_date(value, field) if present else None


def product_to_proto(row: Any) -> catalog_pb2.Product:
    return catalog_pb2.Product(
        id=row.id,
        sku=row.sku,
        names=row.names,
        unit=row.unit,
        tax_class=row.tax_class,
        product_line=row.product_line,
        active=row.active,
        etag=etag(row.version),
        create_time=to_timestamp(row.created_at),
        update_time=to_timestamp(row.updated_at),
    )


def _product_draft(product: catalog_pb2.Product) -> domain.ProductDraft:
    return domain.ProductDraft(
        sku=product.sku,
        names=dict(product.names),
        unit=product.unit,
        tax_class=product.tax_class,
        product_line=product.product_line,
        active=product.active,
    )


def item_to_proto(row: Any, currency: str) -> catalog_pb2.PriceListItem:
    return catalog_pb2.PriceListItem(
        product_id=row.product_id,
        unit_price=types_pb2.Money(amount_minor=row.unit_price_minor, currency_code=currency),
        sku=row.sku,
    )


def price_list_to_proto(view: queries.PriceListView) -> catalog_pb2.PriceList:
    r = view.row
    return catalog_pb2.PriceList(
        id=r.id,
        name=r.name,
        currency_code=r.currency,
        country_code=r.country,
        valid_from=to_date(r.valid_from),
        valid_to=to_date(r.valid_to),
        active=r.active,
        items=[item_to_proto(i, r.currency) for i in view.items],
        etag=etag(r.version),
        create_time=to_timestamp(r.created_at),
        update_time=to_timestamp(r.updated_at),
    )


def _item_draft(item: catalog_pb2.PriceListItem) -> domain.ItemDraft:
    return domain.ItemDraft(
        product_id=item.product_id,
        unit_price_minor=item.unit_price.amount_minor,
        currency_code=item.unit_price.currency_code,
    )


def _price_list_draft(price_list: catalog_pb2.PriceList) -> domain.PriceListDraft:
    return domain.PriceListDraft(
        name=price_list.name,
        currency=price_list.currency_code,
        country=price_list.country_code,
        valid_from=_date(price_list.valid_from, price_list.HasField("valid_from"), "valid_from"),
        valid_to=_date(price_list.valid_to, price_list.HasField("valid_to"), "valid_to"),
        active=price_list.active,
        items=tuple(_item_draft(i) for i in price_list.items),
    )


def tax_rate_to_proto(row: Any) -> catalog_pb2.TaxRate:
    return catalog_pb2.TaxRate(
        country_code=row.country,
        tax_class=row.tax_class,
        rate_bp=row.rate_bp,
        valid_from=to_date(row.valid_from),
        create_time=to_timestamp(row.created_at),
    )


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def CreateProduct(
        self, request: catalog_pb2.CreateProductRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.CreateProductResponse:
        _check_request_id(request.request_id)
        async with self.db.unit_of_work() as uow:
            row = await commands.create_product(uow, _product_draft(request.product), request_id=request.request_id)
        return catalog_pb2.CreateProductResponse(product=product_to_proto(row))

    async def GetProduct(
        self, request: catalog_pb2.GetProductRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.GetProductResponse:
        require({"product_id": request.product_id})
        async with self.db.unit_of_work() as uow:
            row = await queries.get_product(uow, request.product_id)
        return catalog_pb2.GetProductResponse(product=product_to_proto(row))

    async def ListProducts(
        self, request: catalog_pb2.ListProductsRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListProductsResponse:
        after = page_position(request.page_token, str, str)
        async with self.db.unit_of_work() as uow:
            rows, position = await queries.list_products(
                uow,
                limit=page_size(request.page_size),
                after=after,
                show_inactive=request.show_inactive,
                product_line=request.product_line.strip(),
            )
        return catalog_pb2.ListProductsResponse(
            products=[product_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*position) if position else "",
        )

    async def UpdateProduct(
        self, request: catalog_pb2.UpdateProductRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.UpdateProductResponse:
        require({"product.id": request.product.id})
        async with self.db.unit_of_work() as uow:
            row = await commands.update_product(
                uow,
                request.product.id,
                _product_draft(request.product),
                list(request.update_mask.paths),
                etag=request.etag,
            )
        return catalog_pb2.UpdateProductResponse(product=product_to_proto(row))

    async def CreatePriceList(
        self, request: catalog_pb2.CreatePriceListRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.CreatePriceListResponse:
        _check_request_id(request.request_id)
        draft = _price_list_draft(request.price_list)
        async with self.db.unit_of_work() as uow:
            view = await commands.create_price_list(uow, draft, request_id=request.request_id)
        return catalog_pb2.CreatePriceListResponse(price_list=price_list_to_proto(view))

    async def GetPriceList(
        self, request: catalog_pb2.GetPriceListRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.GetPriceListResponse:
        require({"price_list_id": request.price_list_id})
        async with self.db.unit_of_work() as uow:
            view = await queries.get_price_list(uow, request.price_list_id)
        return catalog_pb2.GetPriceListResponse(price_list=price_list_to_proto(view))

    async def ListPriceLists(
        self, request: catalog_pb2.ListPriceListsRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListPriceListsResponse:
        after = page_position(request.page_token, datetime.fromisoformat, str)
        async with self.db.unit_of_work() as uow:
            views, position = await queries.list_price_lists(
                uow,
                limit=page_size(request.page_size),
                after=after,
                show_inactive=request.show_inactive,
                currency=request.currency_code.strip(),
            )
        return catalog_pb2.ListPriceListsResponse(
            price_lists=[price_list_to_proto(v) for v in views],
            next_page_token=encode_page_token(*position) if position else "",
        )

    async def UpdatePriceList(
        self, request: catalog_pb2.UpdatePriceListRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.UpdatePriceListResponse:
        require({"price_list.id": request.price_list.id})
        draft = _price_list_draft(request.price_list)
        mask = list(request.update_mask.paths)
        async with self.db.unit_of_work() as uow:
            view = await commands.update_price_list(uow, request.price_list.id, draft, mask, etag=request.etag)
        return catalog_pb2.UpdatePriceListResponse(price_list=price_list_to_proto(view))

    async def SetPriceListItem(
        self, request: catalog_pb2.SetPriceListItemRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.SetPriceListItemResponse:
        require({"price_list_id": request.price_list_id, "item.product_id": request.item.product_id})
        async with self.db.unit_of_work() as uow:
            row, currency, list_etag = await commands.set_price_list_item(
                uow, request.price_list_id, _item_draft(request.item), etag=request.etag
            )
        return catalog_pb2.SetPriceListItemResponse(item=item_to_proto(row, currency), price_list_etag=list_etag)

    async def RemovePriceListItem(
        self, request: catalog_pb2.RemovePriceListItemRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.RemovePriceListItemResponse:
        require({"price_list_id": request.price_list_id, "product_id": request.product_id})
        async with self.db.unit_of_work() as uow:
            list_etag = await commands.remove_price_list_item(
                uow, request.price_list_id, request.product_id, etag=request.etag
            )
        return catalog_pb2.RemovePriceListItemResponse(price_list_etag=list_etag)

    async def ListTaxRates(
        self, request: catalog_pb2.ListTaxRatesRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListTaxRatesResponse:
        async with self.db.unit_of_work() as uow:
            rows = await queries.list_tax_rates(uow, request.country_code.strip().upper())
        return catalog_pb2.ListTaxRatesResponse(tax_rates=[tax_rate_to_proto(r) for r in rows])

    async def CreateTaxRate(
        self, request: catalog_pb2.CreateTaxRateRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.CreateTaxRateResponse:
        rate = request.tax_rate
        draft = domain.TaxRateDraft(
            country=rate.country_code,
            tax_class=rate.tax_class,
            rate_bp=rate.rate_bp,
            valid_from=_date(rate.valid_from, rate.HasField("valid_from"), "valid_from"),
        )
        async with self.db.unit_of_work() as uow:
            row = await commands.create_tax_rate(uow, draft)
        return catalog_pb2.CreateTaxRateResponse(tax_rate=tax_rate_to_proto(row))
