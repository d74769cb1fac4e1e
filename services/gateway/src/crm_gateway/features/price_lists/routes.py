"""/price-lists: prices per product in one currency, for one VAT country, valid between two dates
(every sales role reads them to build quotes; admins and managers create and change them, and set
or remove their items). Served by the sales service (crm.sales.v1.CatalogService); docs/selling.md
has the rules.

Optimistic concurrency: a list's ETag changes with the list and with any of its items. Changing
the list (PATCH) must send it in If-Match (428 without, 412 when stale); setting or removing one
item may (412 when stale), so two managers pricing different products do not refuse each other."""

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
from crm_gateway.features.price_lists.schemas import (
    CreatePriceListIn,
    PriceList,
    PriceListItem,
    PriceListList,
    SetPriceListItemIn,
    UpdatePriceListIn,
)
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/price-lists", tags=["catalog"], operation_id="listPriceLists")
async def list_price_lists(
    clients: Clients,
    principal: Caller,
    currency_code: Annotated[str, Query(pattern=r"^([A-Z]{3})?$", description="Only lists in this currency")] = "",
    show_inactive: Annotated[bool, Query(description="Include inactive lists")] = False,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> PriceListList:
    """Price lists oldest first, without their items (GET one for them)."""
    request = catalog_pb2.ListPriceListsRequest(
        page_size=protoconv.page_size(page_size),
        page_token=page_token,
        show_inactive=show_inactive,
        currency_code=currency_code,
    )
    return to_model(PriceListList, await read(clients.catalog.ListPriceLists, request))


@router.post("/price-lists", status_code=201, tags=["catalog"], operation_id="createPriceList")
async def create_price_list(
    body: CreatePriceListIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> PriceList:
    """A price list with its items. A country without VAT rates, an unknown product, a price in
    another currency: 422 naming the field, and nothing is created."""
    reply = await clients.catalog.CreatePriceList(body.to_proto((idempotency_key or "").strip()))
    return with_etag(PriceList, reply.price_list, response)


@router.get("/price-lists/{price_list_id}", tags=["catalog"], operation_id="getPriceList")
async def get_price_list(
    price_list_id: ResourceId, clients: Clients, principal: Caller, response: Response
) -> PriceList:
    """The price list with its items; its ETag is the version to send back in If-Match."""
    reply = await records.get(
        "price list",
        price_list_id,
        clients.catalog.GetPriceList,
        catalog_pb2.GetPriceListRequest(price_list_id=price_list_id),
    )
    return with_etag(PriceList, reply.price_list, response)


@router.patch("/price-lists/{price_list_id}", tags=["catalog"], operation_id="updatePriceList")
async def update_price_list(
    price_list_id: ResourceId,
    body: UpdatePriceListIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> PriceList:
    """Change the name, the validity dates or whether the list is active."""
    if not body.model_fields_set:
        raise HTTPException(422, "Name at least one field to change.")
    etag = etag_of(if_match, required=True)
    # Only the list can be missing here (an unknown product is a 422 naming product_id).
    reply = await records.change(
        "price list", price_list_id, clients.catalog.UpdatePriceList, body.to_proto(price_list_id, etag)
    )
    return with_etag(PriceList, reply.price_list, response)


@router.put("/price-lists/{price_list_id}/items/{product_id}", tags=["catalog"], operation_id="setPriceListItem")
async def set_price_list_item(
    price_list_id: ResourceId,
    product_id: ResourceId,
    body: SetPriceListItemIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> PriceListItem:
    """Price the product in the list (adding it, or changing its price). The ETag answered is the
    list's new one."""
    # Only the list can be missing here (an unknown product is a 422 naming product_id).
    reply = await records.change(
        "price list",
        price_list_id,
        clients.catalog.SetPriceListItem,
        body.to_proto(price_list_id, product_id, etag_of(if_match)),
    )
    response.headers["ETag"] = reply.price_list_etag
    return to_model(PriceListItem, reply.item)


@router.delete(
    "/price-lists/{price_list_id}/items/{product_id}",
    status_code=204,
    tags=["catalog"],
    operation_id="removePriceListItem",
)
async def remove_price_list_item(
    price_list_id: ResourceId, product_id: ResourceId, clients: Clients, principal: Caller, if_match: IfMatch = None
) -> Response:
    """Take the product out of the list (one not in it is already out: 204 again). The ETag
    answered is the list's."""
    request = catalog_pb2.RemovePriceListItemRequest(
        price_list_id=price_list_id, product_id=product_id, etag=etag_of(if_match)
    )
    reply = await records.change("price list", price_list_id, clients.catalog.RemovePriceListItem, request)
    return Response(status_code=204, headers={"ETag": reply.price_list_etag})
