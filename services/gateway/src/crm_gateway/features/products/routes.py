"""/products: what the company sells (every sales role reads them to build quotes; admins and
managers create and change them). Served by the sales service (crm.sales.v1.CatalogService);
docs/selling.md has the rules.

Optimistic concurrency: a product's ETag is its etag; a change must send it in If-Match (428
without, 412 when the product changed since), or `*` to change it whatever it is now."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Query, Response

from crm.sales.v1 import catalog_pb2
from crm_gateway import records
from crm_gateway.convert import to_model, with_etag
from crm_gateway.deps import (
    Caller,
    Clients,
    IdempotencyKey,
    IfMatch,
    PageSize,
    PageToken,
    ResourceId,
    api_router,
    etag_of,
)
from crm_gateway.features.products.schemas import CreateProductIn, Product, ProductList, UpdateProductIn
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/products", tags=["catalog"], operation_id="listProducts")
async def list_products(
    clients: Clients,
    principal: Caller,
    product_line: Annotated[str, Query(max_length=100, description="Only this product line's")] = "",
    show_inactive: Annotated[bool, Query(description="Include deactivated products")] = False,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> ProductList:
    """Products by SKU."""
    request = catalog_pb2.ListProductsRequest(
        page_size=protoconv.page_size(page_size),
        page_token=page_token,
        show_inactive=show_inactive,
        product_line=product_line,
    )
    return to_model(ProductList, await read(clients.catalog.ListProducts, request))


@router.post("/products", status_code=201, tags=["catalog"], operation_id="createProduct")
async def create_product(
    body: CreateProductIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Product:
    """A product. A SKU another product has is 409 naming `sku`; a repeated request_id (or
    Idempotency-Key) answers the first product."""
    reply = await clients.catalog.CreateProduct(body.to_proto((idempotency_key or "").strip()))
    return with_etag(Product, reply.product, response)


@router.get("/products/{product_id}", tags=["catalog"], operation_id="getProduct")
async def get_product(product_id: ResourceId, clients: Clients, principal: Caller, response: Response) -> Product:
    """The product; its ETag is the version to send back in If-Match."""
    reply = await records.get(
        "product", product_id, clients.catalog.GetProduct, catalog_pb2.GetProductRequest(product_id=product_id)
    )
    return with_etag(Product, reply.product, response)


@router.patch("/products/{product_id}", tags=["catalog"], operation_id="updateProduct")
async def update_product(
    product_id: ResourceId,
    body: UpdateProductIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Product:
    """Change the fields the body names; `"active": false` deactivates the product."""
    if not body.model_fields_set:
        raise HTTPException(422, "Name at least one field to change.")
    etag = etag_of(if_match, required=True)
    reply = await records.change("product", product_id, clients.catalog.UpdateProduct, body.to_proto(product_id, etag))
    return with_etag(Product, reply.product, response)
