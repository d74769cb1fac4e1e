"""Sources, campaigns and CSV lead imports (admin and marketing; managers read campaigns).

The upload (`POST /lead-imports`) is the one route whose body is not JSON and not bounded by the
global body cap: `LeadImportUploads` (in the middleware stack instead of the plain body limit) lets
it through unbuffered, and the route streams `request.stream()` to the leads service's
client-streaming ImportLeads in chunks, counting against its own cap.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Receive, Scope, Send

from crm.leads.v1 import campaigns_pb2, campaigns_pb2_grpc, imports_pb2, imports_pb2_grpc
from crm.reporting.v1 import reporting_pb2
from crm_gateway import records
from crm_gateway.auth import Caller, authorize
from crm_gateway.clients import BackendClients
from crm_gateway.middleware import BodySizeLimitMiddleware
from crm_gateway.problems import PROBLEM_RESPONSES, problem
from crm_gateway.records import read
from crm_gateway.routes import Clients, PageSize, PageToken, ResourceId, json_bodies_only
from crm_gateway.schemas import IsoDateTime, to_model, to_timestamp
from crm_gateway.schemas_campaigns import (
    Campaign,
    CampaignList,
    CampaignReport,
    CreateCampaignIn,
    CreatedSource,
    CreateSourceIn,
    ImportMode,
    LeadImport,
    LeadImportList,
    UpdateCampaignIn,
)
from crm_kit import protoconv, telemetry
from crm_kit.grpc_client import caller_metadata

IMPORT_PATH = "/api/v1/lead-imports"
# The upload's Idempotency-Key travels under this name past the in-memory idempotency store (which
# would buffer the whole file to fingerprint it): it becomes the import's request_id, deduplicated
# durably by the leads service, so a retry on any replica returns the first import.
IMPORT_KEY_HEADER = b"x-lead-import-idempotency-key"
CHUNK_BYTES = 64 * 1024


class LeadImportSettings(BaseSettings):
    """CRM_LEAD_IMPORT_MAX_BYTES, CRM_LEAD_IMPORT_TIMEOUT_SECONDS."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    # The upload's own body cap (the global CRM_MAX_BODY_BYTES does not apply to it).
    lead_import_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    # The upload's time budget (reading and validating the whole file), instead of the request's.
    lead_import_timeout_seconds: float = Field(default=900.0, gt=0, le=3600)


router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(authorize), Depends(json_bodies_only)],
    responses=PROBLEM_RESPONSES,
)
# Same prefix, authentication and problem responses; its body is text/csv, checked by the route.
upload_router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)], responses=PROBLEM_RESPONSES)


@cache
def _campaigns(channel: grpc.aio.Channel) -> campaigns_pb2_grpc.CampaignsServiceStub:
    return campaigns_pb2_grpc.CampaignsServiceStub(channel)


@cache
def _imports(channel: grpc.aio.Channel) -> imports_pb2_grpc.LeadImportsServiceStub:
    return imports_pb2_grpc.LeadImportsServiceStub(channel)


def campaigns_of(clients: BackendClients) -> campaigns_pb2_grpc.CampaignsServiceStub:
    # Both services are served on the leads service's port.
    return _campaigns(clients.channels["leads"])


def imports_of(clients: BackendClients) -> imports_pb2_grpc.LeadImportsServiceStub:
    return _imports(clients.channels["leads"])


# ---------------------------------------------------------------- sources and campaigns


@router.post("/sources", status_code=201, tags=["campaigns"])
async def create_source(body: CreateSourceIn, clients: Clients, principal: Caller) -> CreatedSource:
    """Add a source to the catalogue; an existing code is 409."""
    reply = await campaigns_of(clients).CreateSource(body.to_proto())
    return to_model(CreatedSource, reply.source)


@router.post("/campaigns", status_code=201, tags=["campaigns"])
async def create_campaign(body: CreateCampaignIn, clients: Clients, principal: Caller) -> Campaign:
    """A campaign under a source with its budget and cost (integer minor units); its name is unique
    per source (409 otherwise)."""
    reply = await campaigns_of(clients).CreateCampaign(body.to_proto())
    return to_model(Campaign, reply.campaign)


@router.get("/campaigns", tags=["campaigns"])
async def list_campaigns(
    clients: Clients,
    principal: Caller,
    source: Annotated[str, Query(max_length=50)] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> CampaignList:
    """Campaigns newest first, optionally of one source."""
    reply = await read(
        campaigns_of(clients).ListCampaigns,
        campaigns_pb2.ListCampaignsRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, source=source
        ),
    )
    return to_model(CampaignList, reply)


@router.get("/campaigns/{campaign_id}", tags=["campaigns"])
async def get_campaign(campaign_id: ResourceId, clients: Clients, principal: Caller) -> Campaign:
    reply = await records.get(
        "campaign",
        campaign_id,
        campaigns_of(clients).GetCampaign,
        campaigns_pb2.GetCampaignRequest(campaign_id=campaign_id),
    )
    return to_model(Campaign, reply.campaign)


@router.patch("/campaigns/{campaign_id}", tags=["campaigns"])
async def update_campaign(
    campaign_id: ResourceId, body: UpdateCampaignIn, clients: Clients, principal: Caller
) -> Campaign:
    """Change the fields the body names (name, dates, budget, actual cost); the rest stay."""
    if not body.model_fields_set:
        raise HTTPException(422, "Name at least one field to change.")
    try:
        reply = await campaigns_of(clients).UpdateCampaign(body.to_proto(campaign_id))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise records.not_found("campaign", campaign_id) from exc
        raise
    return to_model(Campaign, reply.campaign)


@router.get("/reports/campaigns", tags=["reports"])
async def campaign_report(
    clients: Clients,
    principal: Caller,
    source: Annotated[str, Query(max_length=50)] = "",
    start_time: Annotated[IsoDateTime | None, Query(description="ISO 8601; without a zone it is UTC")] = None,
    end_time: Annotated[IsoDateTime | None, Query(description="ISO 8601; without a zone it is UTC")] = None,
) -> CampaignReport:
    """Per campaign: its cost (the whole campaign), and in the period its leads (by capture time),
    won deals and revenue (by close time), cost per lead and return on cost."""
    reply = await read(
        clients.reporting.GetCampaignReport,
        reporting_pb2.GetCampaignReportRequest(
            start_time=to_timestamp(start_time), end_time=to_timestamp(end_time), source=source
        ),
    )
    return to_model(CampaignReport, reply)


# ---------------------------------------------------------------- lead imports

_MODES = {
    "all_or_nothing": imports_pb2.LEAD_IMPORT_MODE_ALL_OR_NOTHING,
    "skip_invalid": imports_pb2.LEAD_IMPORT_MODE_SKIP_INVALID,
}


@upload_router.post(
    "/lead-imports",
    status_code=201,
    tags=["lead imports"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
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
        str, Header(alias="Idempotency-Key", max_length=200, description="a retry returns the first import")
    ] = "",
) -> LeadImport:
    """Import a CSV lead list (UTF-8, header row) for a source and campaign. 201 with the import's
    report whatever the outcome: `status` is `importing` (the rows are being captured; poll
    GET /lead-imports/{id}), `completed`, or `rejected` (nothing was imported; see `errors`)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("text/csv", "application/csv"):
        raise HTTPException(415, "Send the lead list as text/csv.")
    settings: LeadImportSettings = request.app.state.lead_import_settings
    key = request.headers.get(IMPORT_KEY_HEADER.decode(), "").strip() or idempotency_key.strip()
    header = imports_pb2.ImportLeadsHeader(
        source=source, campaign=campaign, file_name=file_name, mode=_MODES[mode], request_id=key
    )
    # The chassis' client interceptor covers unary calls only: this client-streaming call gets the
    # caller, request id and trace context itself, and its own time budget (the request's few
    # seconds cannot read a large file).
    metadata: list[tuple[str, str]] = []
    carrier: dict[str, str] = {}
    telemetry.inject_headers(carrier)
    metadata.extend(carrier.items())
    metadata.extend(caller_metadata(metadata))
    call = imports_of(clients).ImportLeads(timeout=settings.lead_import_timeout_seconds, metadata=metadata)
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


@router.get("/lead-imports/{lead_import_id}", tags=["lead imports"])
async def get_lead_import(lead_import_id: ResourceId, clients: Clients, principal: Caller) -> LeadImport:
    """The import's progress while it runs (rows read, imported, duplicates, errors), then its report."""
    reply = await records.get(
        "lead import",
        lead_import_id,
        imports_of(clients).GetLeadImport,
        imports_pb2.GetLeadImportRequest(lead_import_id=lead_import_id),
    )
    return to_model(LeadImport, reply.lead_import)


@router.get("/lead-imports", tags=["lead imports"])
async def list_lead_imports(
    clients: Clients, principal: Caller, page_size: PageSize = 0, page_token: PageToken = ""
) -> LeadImportList:
    """Imports newest first (without their errors: GET one import for them)."""
    reply = await read(
        imports_of(clients).ListLeadImports,
        imports_pb2.ListLeadImportsRequest(page_size=protoconv.page_size(page_size), page_token=page_token),
    )
    return to_model(LeadImportList, reply)


class LeadImportUploads:
    """The body size limit, except for the CSV upload: that one passes unbuffered (the route
    streams it and counts against its own cap), its Idempotency-Key renamed past the in-memory
    idempotency store. Installed where BodySizeLimitMiddleware would be."""

    def __init__(self, app: ASGIApp, max_bytes: int, import_max_bytes: int) -> None:
        self.app = app
        self.limited = BodySizeLimitMiddleware(app, max_bytes=max_bytes)
        self.import_max_bytes = import_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != IMPORT_PATH:
            await self.limited(scope, receive, send)
            return
        headers = list(scope.get("headers", []))
        declared = dict(headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.import_max_bytes:
            response = problem(413, f"The file is larger than {self.import_max_bytes} bytes.")
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        renamed = [(IMPORT_KEY_HEADER if k == b"idempotency-key" else k, v) for k, v in headers]
        await self.app({**scope, "headers": renamed}, receive, send)
