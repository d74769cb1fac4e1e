"""The body size limit, except for the CSV uploads (a lead list, an audience list): those pass
unbuffered with a cap of their own, each route reading its body and counting against that cap
(`read_capped`). Installed where BodySizeLimitMiddleware would be.

An upload's Idempotency-Key travels past the in-memory idempotency store (which would buffer the
whole file to fingerprint it) under UPLOAD_KEY_HEADER: it becomes the upload's request_id,
deduplicated durably by the service that keeps it, so a retry on any replica returns the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_gateway.platform.middleware import BodySizeLimitMiddleware
from crm_gateway.platform.problems import problem

UPLOAD_KEY_HEADER = b"x-upload-idempotency-key"
# A CSV upload's request body in the OpenAPI document (the route reads the body itself).
CSV_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}}}
}


class UnbufferedUploads:
    """`uploads`: each upload's path (POST) and its cap in bytes; every other request gets the
    plain body size limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, uploads: Mapping[str, int]) -> None:
        self.app = app
        self.limited = BodySizeLimitMiddleware(app, max_bytes=max_bytes)
        self.uploads = dict(uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap = self.uploads.get(scope["path"].rstrip("/")) if scope["type"] == "http" else None
        if cap is None or scope["method"] != "POST":
            await self.limited(scope, receive, send)
            return
        headers = list(scope.get("headers", []))
        declared = dict(headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            response = problem(413, f"The file is larger than {cap} bytes.")
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        renamed = [(UPLOAD_KEY_HEADER if k == b"idempotency-key" else k, v) for k, v in headers]
        await self.app({**scope, "headers": renamed}, receive, send)


async def read_capped(request: Request, cap: int) -> bytes:
    """An upload's whole body, 413 as soon as it passes the cap (a chunked upload declares no length)."""
    body = bytearray()
    async for data in request.stream():
        body += data
        if len(body) > cap:
            raise HTTPException(413, f"The file is larger than {cap} bytes.")
    return bytes(body)


def upload_key(request: Request, idempotency_key: str | None) -> str:
    """The upload's Idempotency-Key (renamed by UnbufferedUploads, or as sent when it was not)."""
    return request.headers.get(UPLOAD_KEY_HEADER.decode(), "").strip() or (idempotency_key or "").strip()


def require_csv(request: Request, what: str) -> None:
    """415 unless the body is declared CSV (text/csv, or application/csv as some clients send)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("text/csv", "application/csv"):
        raise HTTPException(415, f"Send {what} as text/csv.")
