"""The FastAPI application: routes, problem+json errors, middleware, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from crm_gateway import routes
from crm_gateway.clients import BackendClients
from crm_gateway.middleware import BodySizeLimitMiddleware, ObservabilityMiddleware
from crm_gateway.problems import PROBLEM_RESPONSES, install_problem_handlers, problem
from crm_gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings) -> FastAPI:
    """Build the gateway; its backend channels open at startup and close at shutdown (lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clients = BackendClients.connect(settings)
        try:
            yield
        finally:
            await app.state.clients.close()

    app = FastAPI(
        title="CRM gateway",
        version="1.0.0",
        description="The public REST/JSON API of the CRM. Errors are application/problem+json (RFC 9457).",
        lifespan=lifespan,
        # The chassis' ObservabilityMiddleware owns the server span and RED metrics, as in every
        # service; FastAPI's own instrumentation would add a second, sibling server span.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    install_problem_handlers(app)
    # Added innermost first: the size limit runs inside the span, so a 413 is traced and counted.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware)
    app.include_router(routes.router)

    @app.get("/healthz", tags=["operations"], response_class=JSONResponse)
    async def healthz() -> dict[str, str]:
        """Liveness: 200 while the process can answer."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: PROBLEM_RESPONSES["5XX"]})
    async def readyz(request: Request) -> Response:
        """Readiness: 200 only when every backend's gRPC health check says SERVING."""
        clients: BackendClients = request.app.state.clients
        not_ready = await clients.not_ready(settings.readiness_timeout_seconds)
        if not_ready:
            return problem(
                503, "Backends not ready: " + ", ".join(not_ready) + ".", extensions={"not_ready": not_ready}
            )
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
