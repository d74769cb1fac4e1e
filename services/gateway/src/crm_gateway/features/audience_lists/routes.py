"""/audience-lists: static lists of customers for promotions' audiences (`audience.list_id`),
uploaded as CSV files (admin and marketing). The upload's body is the file, bounded by its own cap
(`CRM_AUDIENCE_LIST_MAX_BYTES`, `platform.uploads`), and goes to customers' ImportAudienceList in
one call. The answer names counts and line errors, never a matched customer: marketing reads no
customer record.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Request

from crm.customers.v1 import customers_pb2
from crm_gateway import records
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, PageSize, PageToken, ResourceId, api_router
from crm_gateway.features.audience_lists.schemas import AudienceList, AudienceListPage
from crm_gateway.platform.uploads import CSV_BODY, read_capped, require_csv, upload_key
from crm_gateway.records import read
from crm_gateway.settings import GatewaySettings
from crm_kit import protoconv

UPLOAD_PATH = "/api/v1/audience-lists"

router = api_router()
# Same prefix, authentication and problem responses; its body is text/csv, checked by the route.
upload_router = api_router(json_only=False)


@upload_router.post(
    "/audience-lists",
    status_code=201,
    tags=["promotions"],
    operation_id="importAudienceList",
    openapi_extra=CSV_BODY,
    responses={413: {"description": "The file is larger than CRM_AUDIENCE_LIST_MAX_BYTES"}},
)
async def import_audience_list(
    request: Request,
    clients: Clients,
    principal: Caller,
    name: Annotated[str, Query(min_length=1, max_length=200)],
    all_or_nothing: Annotated[bool, Query(description="keep no list when any line is wrong (422 naming them)")] = False,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=200, description="a retry returns the first list")
    ] = None,
) -> AudienceList:
    """A list from a CSV file (UTF-8, a header row naming customer_id, phone_number or email; a
    line is matched by the first of them it fills, a local number read as Israeli, then Iranian).
    201 with the counts and the lines that matched no customer or could not be read; 422 on `content`
    for a file that is not UTF-8 or names none of the columns, and with all_or_nothing on the wrong
    lines (`lines[5].phone_number`)."""
    require_csv(request, "the list")
    settings: GatewaySettings = request.app.state.settings
    content = await read_capped(request, settings.audience_list_max_bytes)
    reply = await clients.customers.ImportAudienceList(
        customers_pb2.ImportAudienceListRequest(
            name=name, content=content, all_or_nothing=all_or_nothing, request_id=upload_key(request, idempotency_key)
        ),
        # Its own time budget: the request's few seconds cannot match a long list.
        timeout=settings.audience_list_timeout_seconds,
    )
    return to_model(AudienceList, reply.list)


@router.get("/audience-lists/{list_id}", tags=["promotions"], operation_id="getAudienceList")
async def get_audience_list(list_id: ResourceId, clients: Clients, principal: Caller) -> AudienceList:
    """The list's counts and its first 1,000 line errors."""
    reply = await records.get(
        "audience list",
        list_id,
        clients.customers.GetAudienceList,
        customers_pb2.GetAudienceListRequest(list_id=list_id),
    )
    return to_model(AudienceList, reply.list)


@router.get("/audience-lists", tags=["promotions"], operation_id="listAudienceLists")
async def list_audience_lists(
    clients: Clients, principal: Caller, page_size: PageSize = 0, page_token: PageToken = ""
) -> AudienceListPage:
    """Lists newest first, without their line errors."""
    reply = await read(
        clients.customers.ListAudienceLists,
        customers_pb2.ListAudienceListsRequest(page_size=protoconv.page_size(page_size), page_token=page_token),
    )
    return to_model(AudienceListPage, reply)
