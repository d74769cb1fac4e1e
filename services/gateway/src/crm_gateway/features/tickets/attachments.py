"""/tickets/{id}/attachments: files on a ticket (a photo of the damage, an invoice).

The upload's body is the file itself (its Content-Type the file's type, its name in ?filename=),
not JSON, and may be larger than CRM_MAX_BODY_BYTES: `AttachmentUploads` sits where the body limit
does and gives that one route its own cap (CRM_ATTACHMENT_MAX_BYTES). The support service decides
which types and sizes it keeps and who reaches the ticket; a download is always served as an
attachment with nosniff, so a file is never rendered as a page of this origin."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from crm.support.v1 import support_pb2
from crm_gateway import records
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, ResourceId, api_router
from crm_gateway.features.tickets.routes import _read_ticket
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.platform.middleware import BodySizeLimitMiddleware

UPLOAD_PATH = re.compile(r"^/api/v1/tickets/[^/]+/attachments/?$")
# The types the support service keeps (crm_support.domain.ATTACHMENT_TYPES), for the API's docs.
DOCUMENTED_TYPES = ("image/png", "image/jpeg", "image/webp", "application/pdf", "text/plain")

# The body is the file, whatever its type: the route hands the Content-Type on to be checked.
router = api_router(json_only=False)


class TicketAttachment(BaseModel):
    id: int
    ticket_id: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: str
    create_time: datetime | None


class TicketAttachmentList(BaseModel):
    attachments: list[TicketAttachment]


class AttachmentUploads:
    """The body size limit: attachment uploads get CRM_ATTACHMENT_MAX_BYTES, every other request
    goes to `others` (the usual limit and the lead-import upload's own)."""

    def __init__(self, app: ASGIApp, attachment_max_bytes: int, others: Callable[[ASGIApp], ASGIApp]) -> None:
        self.uploads = BodySizeLimitMiddleware(app, max_bytes=attachment_max_bytes)
        self.others = others(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and UPLOAD_PATH.match(scope["path"]):
            await self.uploads(scope, receive, send)
        else:
            await self.others(scope, receive, send)


async def _reach(clients: Clients, principal: Principal, ticket_id: str) -> support_pb2.TicketReach:
    """The desk's own reach; a rep's is the ticket's customer, once they may read that customer."""
    if not authz.ticket_reach(principal).empty:
        return records.ticket_reach(principal)
    ticket = await _read_ticket(clients, principal, ticket_id)
    return support_pb2.TicketReach(customer_id=ticket.customer_id)


@router.post(
    "/tickets/{ticket_id}/attachments",
    status_code=201,
    tags=["tickets"],
    operation_id="addTicketAttachment",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in DOCUMENTED_TYPES},
        }
    },
    responses={413: {"description": "The file is larger than CRM_ATTACHMENT_MAX_BYTES"}},
)
async def add_ticket_attachment(
    ticket_id: ResourceId,
    request: Request,
    clients: Clients,
    principal: Caller,
    filename: Annotated[str, Query(min_length=1, max_length=1000, description="the file's name")],
) -> TicketAttachment:
    """Attach a file (the body; its Content-Type one of the types above, at most 10 MiB) to an
    open ticket."""
    # Already read and bounded by AttachmentUploads (by Content-Length, or counted when chunked).
    data = await request.body()
    reply = await records.change(
        "ticket",
        ticket_id,
        clients.support.AddTicketAttachment,
        support_pb2.AddTicketAttachmentRequest(
            ticket_id=ticket_id,
            filename=filename,
            content_type=request.headers.get("content-type", ""),
            data=data,
            reach=records.ticket_reach(principal),
        ),
    )
    return to_model(TicketAttachment, reply.attachment)


@router.get("/tickets/{ticket_id}/attachments", tags=["tickets"], operation_id="listTicketAttachments")
async def list_ticket_attachments(ticket_id: ResourceId, clients: Clients, principal: Caller) -> TicketAttachmentList:
    """The ticket's files, oldest first, without their bytes."""
    reach = await _reach(clients, principal, ticket_id)
    reply = await records.get(
        "ticket",
        ticket_id,
        clients.support.ListTicketAttachments,
        support_pb2.ListTicketAttachmentsRequest(ticket_id=ticket_id, reach=reach),
    )
    return to_model(TicketAttachmentList, reply)


@router.get(
    "/tickets/{ticket_id}/attachments/{attachment_id}",
    tags=["tickets"],
    operation_id="getTicketAttachment",
    response_class=Response,
    responses={
        200: {
            "description": "The file's bytes, as an attachment, with the type it was stored with",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in DOCUMENTED_TYPES},
        }
    },
)
async def get_ticket_attachment(
    ticket_id: ResourceId,
    attachment_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    clients: Clients,
    principal: Caller,
) -> Response:
    """The file itself, with its stored type, as a download (never shown inline)."""
    reach = await _reach(clients, principal, ticket_id)
    reply = await records.get(
        "attachment",
        str(attachment_id),
        clients.support.GetTicketAttachment,
        support_pb2.GetTicketAttachmentRequest(ticket_id=ticket_id, attachment_id=attachment_id, reach=reach),
    )
    found = reply.attachment
    return Response(
        content=reply.data,
        media_type=found.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.filename, safe='')}",
            "X-Content-Type-Options": "nosniff",
        },
    )
