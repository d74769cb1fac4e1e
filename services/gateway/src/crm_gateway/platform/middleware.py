"""ASGI middleware: the server span and RED metrics of every request, a last-resort 500, and
the request-body size limit."""

from __future__ import annotations

import logging
import time
import uuid

from opentelemetry import trace
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_gateway.platform.problems import problem
from crm_gateway.platform.route_names import route_template
from crm_kit import caller, logs, telemetry
from crm_kit.metrics import LATENCY_BUCKETS

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "crm_http_requests_total", "HTTP requests completed by the gateway", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "crm_http_request_duration_seconds",
    "HTTP request latency in the gateway",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


def assign_request_id(scope: Scope, given: str | None = None) -> str:
    """The caller's X-Request-ID (`given`, when the caller has the headers decoded already) when it
    is a short safe token (`crm_kit.caller.safe_request_id`, the rule every service applies again),
    else a new one; kept in the scope's state (for the audit trail and logs) and echoed on the
    response."""
    if given is None:
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
    request_id = caller.safe_request_id(given) or uuid.uuid4().hex
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


class ObservabilityMiddleware:
    """Opens the server span (continuing the caller's traceparent), assigns the request id,
    records RED metrics, and turns an exception no handler took into a logged 500 problem
    without a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tracer = telemetry.tracer(__name__)
        # The metric children by label values, so a request does not look them up by name again
        # (as bounded as the label sets themselves: route templates, methods, statuses).
        self._counted: dict[tuple[str, str, str], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status = 500
        started_response = False
        request_id = assign_request_id(scope, carrier.get("x-request-id", ""))

        async def send_recording(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        started = time.perf_counter()
        with self.tracer.start_as_current_span(
            method, context=telemetry.extract_context(carrier), kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_recording)
            except Exception:
                context = {
                    "method": method,
                    "route": route_template(scope),
                    "path": scope["path"],
                    "request_id": request_id,
                }
                log.exception("unhandled error", extra=context)
                span.set_status(trace.Status(trace.StatusCode.ERROR))
                if started_response:
                    raise
                await problem(500, "An internal error occurred.")(scope, receive, send_recording)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.Status(trace.StatusCode.ERROR))
                elapsed = time.perf_counter() - started
                self._count(method, route, status, elapsed)
                # The access log (inside the span: it carries the trace id); never the raw path. A
                # successful, quick request only with CRM_ACCESS_LOG=all (crm_kit.logs).
                logs.access(
                    log,
                    "http request",
                    {
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "request_id": request_id,
                    },
                    failed=status >= 500 or status in _REFUSALS,
                    elapsed=elapsed,
                )

    def _count(self, method: str, route: str, status: int, elapsed: float) -> None:
        counted = (method, route, str(status))
        counter = self._counted.get(counted)
        if counter is None:
            counter = self._counted[counted] = HTTP_REQUESTS.labels(*counted)
        counter.inc()
        timed = (method, route)
        histogram = self._timed.get(timed)
        if histogram is None:
            histogram = self._timed[timed] = HTTP_SECONDS.labels(*timed)
        histogram.observe(elapsed)


# Refused callers are always in the access log: the trail of a token being guessed, a record
# being probed or a client being throttled.
_REFUSALS = frozenset({401, 403, 429})


class BodySizeLimitMiddleware:
    """Refuses a request body larger than max_bytes with 413, by its Content-Length or, for a
    chunked body, by counting while reading it (the body is buffered, so at most max_bytes)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body: bytes = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"The request body is larger than {self.max_bytes} bytes.")
        # The connection cannot be reused with an unread body left on it.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
