"""/lead-imports: CSV lead lists (admin and marketing).

The upload (`POST /lead-imports`) has a body that is not JSON and not bounded by the global body
cap: `platform.uploads.UnbufferedUploads` lets it through unbuffered, and the route streams
`request.stream()` to the leads service's client-streaming ImportLeads in chunks, counting against
its own cap.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, HTTPException, Query, Request

from crm.leads.v1 import imports_pb2
from crm_gateway import records
from crm_gateway.convert import enum_value, to_model
from crm_gateway.deps import Caller, Clients, PageSize, PageToken, ResourceId, api_router
from crm_gateway.features.lead_imports.schemas import ImportMode, LeadImport, LeadImportList
from crm_gateway.platform.uploads import CSV_BODY, require_csv, upload_key
from crm_gateway.records import read
from crm_gateway.settings import GatewaySettings
from crm_kit import protoconv, telemetry
from crm_kit.grpc_client import caller_metadata

IMPORT_PATH = "/api/v1/lead-imports"
CHUNK_BYTES = 64 * 1024

router = api_router()
# Same prefix, authentication and problem responses; its body is text/csv, checked by the route.
upload_router = api_router(json_only=False)


def _stream_metadata() -> list[tuple[str, str]]:
    """The chassis' client interceptor covers unary calls only: this client-streaming call gets the
    caller, request id and trace context itself."""
    metadata: list[tuple[str, str]] = []
    carrier: dict[str, str] = {}
    telemetry.inject_headers(carrier)
    metadata.extend(carrier.items())
    metadata.extend(caller_metadata(metadata))
    return metadata


@upload_router.post(
    "/lead-imports",
    status_code=201,
    tags=["lead imports"],
    operation_id="importLeads",
    openapi_extra=CSV_BODY,
    responses={413: {"description": "The file is larger than CRM_LEAD_IMPORT_MAX_BYTES"}},
)
async def import_leads(
    request: Request,
    clients: Clients,
    principal: Caller,
    source: Annotated[str, Query(min_length=1, max_length=50)],
    campaign: Annotated[str, Query(max_length=100, description="a campaign id or name under the source")] = "",
    mode: ImportMode = "all_or_nothing",
    file_name: Annotated[str, Query(max_length=255)] = "",
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=200, description="a retry returns the first import")
    ] = None,
) -> LeadImport:
    """Import a CSV lead list (UTF-8, header row) for a source and campaign. 201 with the import's
    report whatever the outcome: `status` is `importing` (the rows are being captured; poll
    GET /lead-imports/{id}), `completed`, or `rejected` (nothing was imported; see `errors`)."""
    require_csv(request, "the lead list")
    settings: GatewaySettings = request.app.state.settings
    key = upload_key(request, idempotency_key)
    header = imports_pb2.ImportLeadsHeader(
        source=source,
        campaign=campaign,
        file_name=file_name,
        mode=enum_value(imports_pb2.LeadImportMode, mode),
        request_id=key,
    )
    # Its own time budget: the request's few seconds cannot read a large file.
    call = clients.lead_imports.ImportLeads(timeout=settings.lead_import_timeout_seconds, metadata=_stream_metadata())
    too_large = HTTPException(413, f"The file is larger than {settings.lead_import_max_bytes} bytes.")
    received = 0
    await call.write(imports_pb2.ImportLeadsRequest(header=header))
    pending = b""
    async for data in request.stream():
        received += len(data)
        if received > settings.lead_import_max_bytes:
            # Cut short without its trailer, the upload is rejected by the service: nothing is imported.
            call.cancel()
            raise too_large
        pending += data
        while len(pending) >= CHUNK_BYTES:
            await call.write(imports_pb2.ImportLeadsRequest(data=pending[:CHUNK_BYTES]))
            pending = pending[CHUNK_BYTES:]
    if pending:
        await call.write(imports_pb2.ImportLeadsRequest(data=pending))
    await call.write(imports_pb2.ImportLeadsRequest(trailer=imports_pb2.ImportLeadsTrailer(size=received)))
    await call.done_writing()
    reply: imports_pb2.ImportLeadsResponse = await call
    return to_model(LeadImport, reply.lead_import)


@router.get("/lead-imports/{lead_import_id}", tags=["lead imports"], operation_id="getLeadImport")
async def get_lead_import(lead_import_id: ResourceId, clients: Clients, principal: Caller) -> LeadImport:
    """The import's progress while it runs (rows read, imported, duplicates, errors), then its report."""
    reply = await records.get(
        "lead import",
        lead_import_id,
        clients.lead_imports.GetLeadImport,
        imports_pb2.GetLeadImportRequest(lead_import_id=lead_import_id),
    )
    return to_model(LeadImport, reply.lead_import)


@router.get("/lead-imports", tags=["lead imports"], operation_id="listLeadImports")
async def list_lead_imports(
    clients: Clients, principal: Caller, page_size: PageSize = 0, page_token: PageToken = ""
) -> LeadImportList:
    """Imports newest first (without their errors: GET one import for them)."""
    reply = await read(
        clients.lead_imports.ListLeadImports,
        imports_pb2.ListLeadImportsRequest(page_size=protoconv.page_size(page_size), page_token=page_token),
    )
    return to_model(LeadImportList, reply)
