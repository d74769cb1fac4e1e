"""The gateway client, driven by the gateway's OpenAPI document — no hand-written routes.

Every call names an ``operationId``; the method, the path template and the parameters a call may
send come from ``gateway_openapi.json``, a copy of the gateway's published spec kept next to this
module (``scripts/console_openapi.py`` refreshes it; tests/contracts checks it equals the gateway's
spec, so a renamed route or parameter fails CI, not a user's click). A call with a parameter the
operation does not declare, or without a required one, raises before any request is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

SPEC_PATH = Path(__file__).with_name("gateway_openapi.json")
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    path_params: frozenset[str]
    query_params: frozenset[str]
    header_params: frozenset[str]
    required: frozenset[str]
    has_body: bool


@cache
def operations(spec_path: Path = SPEC_PATH) -> dict[str, Operation]:
    """Every operation of the spec, by operationId."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    found: dict[str, Operation] = {}
    for path, item in spec["paths"].items():
        for method in _METHODS:
            op = item.get(method)
            if not op or "operationId" not in op:
                continue
            params = op.get("parameters", [])
            by_place = {
                place: frozenset(p["name"] for p in params if p["in"] == place) for place in ("path", "query", "header")
            }
            found[op["operationId"]] = Operation(
                operation_id=op["operationId"],
                method=method.upper(),
                path=path,
                path_params=by_place["path"],
                query_params=by_place["query"],
                header_params=by_place["header"],
                required=frozenset(p["name"] for p in params if p.get("required")),
                has_body="requestBody" in op,
            )
    return found


@dataclass
class ApiError(Exception):
    """A gateway answer of 4xx/5xx: its status and problem+json body (RFC 9457)."""

    status: int
    problem: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.problem.get('title', '')}: {self.problem.get('detail', '')}"

    @property
    def field_errors(self) -> dict[str, str]:
        """Field name → message, from the gateway's 422 ``errors`` list (``loc`` ends in the field)."""
        errors: dict[str, str] = {}
        for error in self.problem.get("errors", []) or []:
            loc = error.get("loc") or error.get("field") or []
            name = loc[-1] if isinstance(loc, list) and loc else str(loc or "")
            errors[str(name)] = str(error.get("detail") or error.get("msg") or error.get("message") or "")
        return errors


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: httpx.Headers
    raw: bytes = b""  # the body as sent (a PDF, a CSV)


class Gateway:
    """Calls the gateway's public API as the signed-in user (their bearer token, nothing else)."""

    def __init__(self, base_url: str, *, timeout_seconds: float, transport: httpx.AsyncBaseTransport | None = None):
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_seconds,
            transport=transport,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self._ops = operations()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def healthy(self) -> bool:
        try:
            return (await self._client.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def call(
        self,
        operation_id: str,
        token: str | None,
        *,
        path: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        content: bytes | None = None,
        content_type: str = "",
        timeout_seconds: float | None = None,
    ) -> Answer:
        """Send one operation (a JSON ``body``, or raw ``content`` such as a CSV upload); returns
        the answer for 2xx/3xx, raises ApiError for the rest. A public operation (the survey
        answer) is sent with token None: no Authorization header at all."""
        op = self._ops.get(operation_id)
        if op is None:
            raise KeyError(f"the gateway has no operation {operation_id!r}")
        path, query, headers = (
            path or {},
            {k: v for k, v in (query or {}).items() if v not in (None, "")},
            headers or {},
        )
        _check(op, "path", set(path), op.path_params)
        _check(op, "query", set(query), op.query_params)
        _check(op, "header", set(headers), op.header_params)
        missing = op.required - set(path) - set(query) - set(headers)
        if missing:
            raise ValueError(f"{operation_id} needs {sorted(missing)}")
        if (body is not None or content is not None) and not op.has_body:
            raise ValueError(f"{operation_id} takes no body")
        url = op.path.format(**{k: quote(str(v), safe="") for k, v in path.items()})
        response = await self._client.request(
            op.method,
            url,
            params=query,
            json=body if content is None else None,
            content=content,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout_seconds is None else timeout_seconds,
            headers={
                **headers,
                **({"Content-Type": content_type} if content_type else {}),
                **({"Authorization": f"Bearer {token}"} if token is not None else {}),
            },
        )
        answer: Any = None
        kind = response.headers.get("content-type", "")
        if response.content and "json" in kind:
            try:
                answer = response.json()
            except ValueError:
                answer = response.text
        elif kind.startswith("text/"):
            answer = response.text
        if response.status_code >= 400:
            raise ApiError(response.status_code, answer if isinstance(answer, dict) else {"detail": str(answer)})
        return Answer(response.status_code, answer, response.headers, response.content)


def _check(op: Operation, place: str, given: set[str], declared: frozenset[str]) -> None:
    unknown = given - declared
    if unknown:
        raise ValueError(f"{op.operation_id} has no {place} parameter {sorted(unknown)}")
