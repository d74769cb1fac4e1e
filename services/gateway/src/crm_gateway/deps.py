"""What every feature's routes share: the /api/v1 router, its dependencies (the caller, the
backend clients) and the parameter types of ids, filters, pages and optional headers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request

from crm_gateway.clients import BackendClients, get_clients
from crm_gateway.platform.auth import Principal, authorize
from crm_gateway.platform.problems import PROBLEM_RESPONSES
from crm_kit import protoconv

Caller = Annotated[Principal, Depends(authorize)]
Clients = Annotated[BackendClients, Depends(get_clients)]
ResourceId = Annotated[str, Path(min_length=1, max_length=100)]
FilterId = Annotated[str, Query(max_length=100)]
PageSize = Annotated[
    int, Query(ge=0, description=f"0 means the default; above {protoconv.MAX_PAGE_SIZE} it is clamped")
]
PageToken = Annotated[str, Query(max_length=1000, description="next_page_token of the previous page")]
# Optional headers default to None, not "": a client generated from the spec then sends nothing
# rather than an empty key, which the Idempotency-Key middleware refuses (400).
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=200, description="request_id when the body has none")
]

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=100, description="The ETag read; 412 when the record changed since"),
]


def caller_of(request: Request) -> Principal:
    """The principal the router's `authorize` dependency resolved for this request (authentication
    keeps it on the request's state). A route on the capture path reads it here rather than
    declaring `Caller` again: FastAPI resolves every declared dependency on every request, a cached
    one included, and that bookkeeping costs more CPU than the rest of such a route."""
    principal = request.state.principal
    if not isinstance(principal, Principal):
        raise TypeError("caller_of used on a route without the authorize dependency")
    return principal


def etag_of(if_match: str | None, *, required: bool = False) -> str:
    """The backend etag an If-Match names: "" for none or `*` (any current version, RFC 9110), so
    the change is unconditional; 428 when the route requires one and none was sent."""
    tag = (if_match or "").strip()
    if not tag and required:
        raise HTTPException(428, "Send the ETag you read in If-Match (or * to change it whatever it is now).")
    return "" if tag == "*" else tag


async def json_bodies_only(request: Request) -> None:
    """A POST body must be JSON: anything else is 415, not a confusing 422."""
    if request.method != "POST":
        return
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if has_body and media_type != "application/json":
        raise HTTPException(415, "Send the request body as application/json.")


def api_router(*, json_only: bool = True) -> APIRouter:
    """A feature's router under /api/v1: a valid bearer token, the route's policy
    (crm_gateway.platform.authz), the rate limit, and (unless the route checks its own media type)
    JSON bodies; errors documented as problem+json."""
    dependencies = [Depends(authorize), Depends(json_bodies_only)] if json_only else [Depends(authorize)]
    return APIRouter(prefix="/api/v1", dependencies=dependencies, responses=PROBLEM_RESPONSES)


def forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)
