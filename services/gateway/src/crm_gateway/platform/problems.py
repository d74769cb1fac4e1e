"""RFC 9457 problem details for every error response, and the one gRPC → HTTP table."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import grpc
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from crm_gateway.platform.route_names import route_template

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

# The one table: a backend's gRPC status → the HTTP status the client sees. Anything else → 500.
GRPC_TO_HTTP: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# A backend's ErrorInfo reason that means more than its code: a stale etag is the caller's
# If-Match no longer matching, which HTTP names 412 (RFC 9110), not the 409 of ABORTED.
REASON_TO_HTTP: Mapping[str, int] = {"STALE_ETAG": 412}

# Server-side failures get a fixed text: a backend's own message may name hosts and ports.
_SERVER_ERROR_DETAIL: Mapping[int, str] = {
    500: "An internal error occurred.",
    503: "A backend service is unavailable; try again later.",
    504: "A backend service did not answer in time.",
}

_DEFAULT_DETAIL: Mapping[int, str] = {
    404: "No resource or route matches this URL.",
    405: "This method is not allowed on this route.",
}

_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


class FieldError(BaseModel):
    field: str
    detail: str


class Problem(BaseModel):
    """The body of every error response (media type application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    reason: str | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "description": "Client error, as application/problem+json (RFC 9457)"},
    "5XX": {"model": Problem, "description": "Server or backend error, as application/problem+json"},
}


class ProblemResponse(Response):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem(
    status: int,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    reason: str = "",
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    """A problem+json response; `title` is the status phrase, as RFC 9457 asks for about:blank."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    if reason:
        body["reason"] = reason
    body.update(extensions or {})
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


def field_path(loc: Sequence[int | str]) -> str:
    """("body", "items", 0, "quantity") → "items.0.quantity"; the location prefix is dropped."""
    parts = list(loc[1:]) if loc and loc[0] in _LOCATIONS else list(loc)
    return ".".join(str(p) for p in parts) or "body"


# An error answer stays small whatever the request: a body of a million unknown fields must not
# get a response (and a log line) the size of the request. The first errors are named, the rest counted.
MAX_FIELD_ERRORS = 20
MAX_FIELD_CHARS = 120
MAX_ERROR_DETAIL_CHARS = 300


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_problem(exc: RequestValidationError) -> ProblemResponse:
    all_errors = exc.errors()
    errors = []
    for err in all_errors[:MAX_FIELD_ERRORS]:
        field = "body" if err.get("type") == "json_invalid" else field_path(err.get("loc", ()))
        detail = str(err.get("msg", "is invalid"))
        errors.append(FieldError(field=_clip(field, MAX_FIELD_CHARS), detail=_clip(detail, MAX_ERROR_DETAIL_CHARS)))
    names = ", ".join(dict.fromkeys(e.field for e in errors))
    more = len(all_errors) - len(errors)
    suffix = f" and {more} more error{'s' if more > 1 else ''}" if more > 0 else ""
    return problem(422, f"The request is invalid: {names}{suffix}.", errors=errors)


def _status_details(exc: grpc.aio.AioRpcError) -> tuple[str, list[FieldError], float | None]:
    """The ErrorInfo reason, BadRequest field violations and RetryInfo delay (seconds) the backend
    attached, if any."""
    try:
        status = rpc_status.from_call(exc)
    except ValueError:
        # A status whose code or message disagrees with the call's own is not to be trusted.
        return "", [], None
    if status is None:
        return "", [], None
    reason = ""
    errors: list[FieldError] = []
    retry_after: float | None = None
    for packed in status.details:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            reason = info.reason
        elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            errors.extend(FieldError(field=v.field, detail=v.description) for v in bad.field_violations)
        elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            packed.Unpack(retry)
            retry_after = retry.retry_delay.ToTimedelta().total_seconds()
    return reason, errors, retry_after


def grpc_problem(exc: grpc.aio.AioRpcError, *, method: str = "", route: str = "") -> ProblemResponse:
    """Map a failed backend call through GRPC_TO_HTTP; server-side failures are logged, not shown."""
    code = exc.code()
    status = GRPC_TO_HTTP.get(code, 500)
    context = {"grpc_code": code.name, "grpc_details": exc.details(), "method": method, "route": route}
    if status >= 500:
        log_level = logging.ERROR if status == 500 else logging.WARNING
        log.log(log_level, "backend call failed", extra=context)
        return problem(status, _SERVER_ERROR_DETAIL.get(status, _SERVER_ERROR_DETAIL[500]))
    reason, errors, retry_after = _status_details(exc)
    status = REASON_TO_HTTP.get(reason, status)
    detail = exc.details() or HTTPStatus(status).description
    # A backend at its limit says when to come back (RetryInfo); a 429 always says it (RFC 6585).
    headers = {"Retry-After": str(_retry_seconds(retry_after))} if status == 429 else None
    return problem(status, detail, errors=errors, reason=reason, headers=headers)


# A backend's RetryInfo is capped: one that asks for an hour is not passed on as such.
_RETRY_AFTER_MAX_SECONDS = 60


def _retry_seconds(retry_after: float | None) -> int:
    """Whole seconds, at least 1 (a backend that gave no delay: retry in a second), at most the cap."""
    return min(_RETRY_AFTER_MAX_SECONDS, max(1, math.ceil(retry_after or 1)))


async def _on_grpc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return grpc_problem(exc, method=request.method, route=route_template(request.scope))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc)


def allowed_methods(routes: Sequence[Any], path: str) -> set[str]:
    """Every method some route serves at path (several routes may share one path), walking
    included routers, which FastAPI keeps as branches."""
    methods: set[str] = set()
    for route in routes:
        if hasattr(route, "original_router"):
            methods |= allowed_methods(route.original_router.routes, path)
        elif getattr(route, "methods", None) and route.path_regex.match(path):
            methods |= set(route.methods)
    return methods


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 405:
        allowed = allowed_methods(request.app.routes, request.url.path)
        allow = ", ".join(sorted(allowed | ({"HEAD"} if "GET" in allowed else set())))
        return problem(405, _DEFAULT_DETAIL[405], headers={"Allow": allow})
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if not detail or detail == HTTPStatus(status).phrase:
        detail = _DEFAULT_DETAIL.get(status, HTTPStatus(status).description or HTTPStatus(status).phrase)
    if status >= 500:
        detail = _SERVER_ERROR_DETAIL.get(status, _SERVER_ERROR_DETAIL[500])
    return problem(status, detail, headers=exc.headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error FastAPI or a backend raises becomes problem+json."""
    app.add_exception_handler(grpc.aio.AioRpcError, _on_grpc_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
