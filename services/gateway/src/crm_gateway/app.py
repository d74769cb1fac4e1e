"""The FastAPI application: routes, problem+json errors, middleware, health (metrics are served
on their own port by `main.serve`, never on the public listener)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware

from crm_gateway.api_docs import install_api_docs
from crm_gateway.clients import BackendClients
from crm_gateway.features.activities import routes as activities
from crm_gateway.features.audience_lists import routes as audience_lists
from crm_gateway.features.audit_records import routes as audit_records
from crm_gateway.features.campaigns import routes as campaigns
from crm_gateway.features.consent_records import routes as consent_records
from crm_gateway.features.customers import cross_sell_routes as cross_sell
from crm_gateway.features.customers import risk_routes as customer_risk
from crm_gateway.features.customers import routes as customers
from crm_gateway.features.dead_letters import routes as dead_letters
from crm_gateway.features.deals import routes as deals
from crm_gateway.features.incomplete_leads import routes as incomplete_leads
from crm_gateway.features.lead_imports import routes as lead_imports
from crm_gateway.features.lead_queue import routes as lead_queue
from crm_gateway.features.leads import routes as leads
from crm_gateway.features.lost_reasons import routes as lost_reasons
from crm_gateway.features.me import routes as me
from crm_gateway.features.messages import routes as messages
from crm_gateway.features.my_leads import routes as my_leads
from crm_gateway.features.orders import routes as orders
from crm_gateway.features.pipelines import routes as pipelines
from crm_gateway.features.possible_duplicates import routes as possible_duplicates
from crm_gateway.features.price_lists import routes as price_lists
from crm_gateway.features.products import routes as products
from crm_gateway.features.promotions import routes as promotions
from crm_gateway.features.quotes import routes as quotes
from crm_gateway.features.reports import builder_routes as report_builder
from crm_gateway.features.reports import forecast_routes as forecast
from crm_gateway.features.reports import routes as reports
from crm_gateway.features.reports import schedule_routes as report_schedules
from crm_gateway.features.reps import routes as reps
from crm_gateway.features.retention_lists import routes as retention_lists
from crm_gateway.features.routing_rules import routes as routing_rules
from crm_gateway.features.search import routes as search
from crm_gateway.features.sla_breaches import routes as sla_breaches
from crm_gateway.features.sms_callbacks import routes as sms_callbacks
from crm_gateway.features.sources import routes as sources
from crm_gateway.features.support import routes as support
from crm_gateway.features.targets import routes as targets
from crm_gateway.features.tasks import routes as tasks
from crm_gateway.features.tax_rates import routes as tax_rates
from crm_gateway.features.teams import routes as teams
from crm_gateway.features.tickets import attachments as ticket_attachments
from crm_gateway.features.tickets import routes as tickets
from crm_gateway.features.web_forms import routes as web_forms
from crm_gateway.features.web_forms.schemas import WebFormSubmissionIn
from crm_gateway.platform.auth import JwksKeys, TokenVerifier, bearer_subject, principal_wait
from crm_gateway.platform.client_address import ClientAddresses
from crm_gateway.platform.dev_oidc import install_dev_oidc
from crm_gateway.platform.idempotency import (
    IdempotencyMiddleware,
    IdempotencyStore,
    JetStreamStore,
    MemoryStore,
    StoredBytesQuota,
)
from crm_gateway.platform.middleware import ObservabilityMiddleware
from crm_gateway.platform.problems import Problem, install_problem_handlers
from crm_gateway.platform.ratelimit import RateLimiter
from crm_gateway.platform.security_headers import SecurityHeadersMiddleware
from crm_gateway.platform.uploads import UnbufferedUploads
from crm_gateway.platform.web_form_limits import WebFormLimits
from crm_gateway.readiness import SharedReadiness
from crm_gateway.settings import GatewaySettings
from crm_kit import nats_access
from crm_kit.dev_issuer import DevIssuer

# Every feature's routers, in the order they match (no two share a method and path).
ROUTERS = (
    me.router,
    leads.router,
    deals.router,
    quotes.router,
    pipelines.router,
    lost_reasons.router,
    products.router,
    price_lists.router,
    tax_rates.router,
    sources.router,
    orders.router,
    tickets.router,
    ticket_attachments.router,
    support.router,
    customers.router,
    cross_sell.router,
    customer_risk.router,
    consent_records.router,
    search.router,
    messages.router,
    reports.router,
    report_builder.router,
    report_schedules.router,
    retention_lists.router,
    forecast.router,
    targets.router,
    web_forms.router,
    audit_records.router,
    dead_letters.router,
    campaigns.router,
    lead_imports.router,
    lead_imports.upload_router,
    routing_rules.router,
    reps.router,
    teams.router,
    lead_queue.router,
    sla_breaches.router,
    my_leads.router,
    possible_duplicates.router,
    incomplete_leads.router,
    activities.router,
    tasks.router,
    promotions.router,
    audience_lists.router,
    audience_lists.upload_router,
    web_forms.public_router,
    support.public_router,
    promotions.public_router,
    promotions.short_link_router,
    sms_callbacks.public_router,
)


def create_app(settings: GatewaySettings) -> FastAPI:
    """Build the gateway; its backend channels open at startup and close at shutdown (lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clients = BackendClients.connect(settings)
        app.state.nats = None
        try:
            yield
        finally:
            await app.state.clients.close()
            if app.state.nats is not None:
                await app.state.nats.close()

    app = FastAPI(
        title="CRM gateway",
        version="1.0.0",
        description="The public REST/JSON API of the CRM. Errors are application/problem+json (RFC 9457).",
        lifespan=lifespan,
        # The docs pages are crm_gateway.api_docs' (pinned, with SRI), and only when enabled.
        openapi_url="/openapi.json" if settings.api_docs_enabled else None,
        docs_url=None,
        redoc_url=None,
        # The chassis' ObservabilityMiddleware owns the server span and RED metrics, as in every
        # service; FastAPI's own instrumentation would add a second, sibling server span.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    _install_state(app, settings)
    install_problem_handlers(app)
    _install_middleware(app, settings)
    for router in ROUTERS:
        app.include_router(router)
    _install_operations_routes(app, settings)
    _document_security(app)
    if settings.api_docs_enabled:
        install_api_docs(app)
    return app


def _install_state(app: FastAPI, settings: GatewaySettings) -> None:
    """What requests share: settings, the token verifier, the rate limiters, who the client is."""
    app.state.settings = settings
    app.state.verifier = TokenVerifier(
        JwksKeys(settings.auth_jwks_url),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        algorithms=settings.auth_algorithms,
        leeway_seconds=settings.auth_leeway_seconds,
        roles_claim=settings.auth_roles_claim,
    )
    app.state.principal_limiter = RateLimiter(settings.rate_limit_per_minute / 60, settings.rate_limit_burst)
    app.state.anonymous_limiter = RateLimiter(
        settings.anonymous_rate_limit_per_minute / 60, settings.anonymous_rate_limit_burst
    )
    app.state.client_addresses = ClientAddresses(settings.trusted_proxies, settings.forwarded_header)
    app.state.web_form_limits = WebFormLimits(
        per_key=RateLimiter(settings.web_form_rate_limit_per_minute / 60, settings.web_form_rate_limit_burst),
        per_address=RateLimiter(
            settings.web_form_address_rate_limit_per_minute / 60, settings.web_form_address_rate_limit_burst
        ),
        per_network=RateLimiter(
            settings.web_form_network_rate_limit_per_minute / 60, settings.web_form_network_rate_limit_burst
        ),
    )


def _install_middleware(app: FastAPI, settings: GatewaySettings) -> None:
    """Added innermost first, so the request passes: security headers → observability (span, RED
    metrics, request id, last-resort 500) → CORS → body size limit → idempotency. Every response,
    a 500 included, carries the security headers; a 413 or a replayed response is traced and
    counted; the idempotency store only ever buffers a body within the size limit."""
    app.add_middleware(
        IdempotencyMiddleware,
        open_store=functools.partial(open_idempotency_store, app, settings),
        identify=bearer_subject,
        quota=StoredBytesQuota(settings.idempotency_max_bytes_per_principal, settings.idempotency_ttl_seconds),
        max_response_bytes=settings.idempotency_max_response_bytes,
        rate_limit=functools.partial(principal_wait, app.state.principal_limiter),
    )
    # The body size limit; the CSV uploads (lead lists, audience lists) and ticket attachment
    # uploads (crm_gateway.features.tickets.attachments) have their own.
    app.add_middleware(
        ticket_attachments.AttachmentUploads,
        attachment_max_bytes=settings.attachment_max_bytes,
        others=functools.partial(
            UnbufferedUploads,
            max_bytes=settings.max_body_bytes,
            uploads={
                lead_imports.IMPORT_PATH: settings.lead_import_max_bytes,
                audience_lists.UPLOAD_PATH: settings.audience_list_max_bytes,
            },
        ),
    )
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Api-Key", "X-Request-ID", "If-Match"],
            expose_headers=["Retry-After", "Idempotent-Replayed", "X-Request-ID", "ETag"],
            allow_credentials=False,
        )
    app.add_middleware(ObservabilityMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.hsts)


def _install_operations_routes(app: FastAPI, settings: GatewaySettings) -> None:
    """The unauthenticated routes for operators: liveness, readiness, and the dev issuer's keys and
    sign-in."""
    if settings.auth_dev_issuer_key_file:
        dev_issuer = DevIssuer.load_or_create(Path(settings.auth_dev_issuer_key_file), settings.auth_issuer)

        @app.get("/.well-known/jwks.json", tags=["identity"], name="jwks", operation_id="getJwks")
        async def jwks() -> dict[str, Any]:
            """The development issuer's public keys (only when it is enabled; never in production)."""
            return dev_issuer.jwks()

        # Its sign-in for the web console (OIDC authorization code + PKCE), equally development-only.
        install_dev_oidc(app, settings, dev_issuer)

    @app.get("/healthz", tags=["operations"], response_class=JSONResponse, operation_id="checkLiveness")
    async def healthz() -> dict[str, str]:
        """Liveness: 200 while the process can answer."""
        return {"status": "ok"}

    async def sweep_backends() -> list[str]:
        clients: BackendClients = app.state.clients
        return await clients.not_ready(settings.readiness_timeout_seconds)

    readiness = SharedReadiness(sweep_backends, settings.readiness_cache_seconds)

    @app.get("/readyz", tags=["operations"], response_class=JSONResponse, operation_id="checkReadiness")
    async def readyz() -> dict[str, Any]:
        """Readiness: 200 while the gateway serves, whichever backend is down. One backend's outage
        fails only the routes that need it (503, problem+json), so a reporting outage never takes
        lead capture down with it. `unavailable` names, for operators, the backends whose gRPC
        health check does not say SERVING (as of at most `readiness_cache_seconds` ago)."""
        return {"status": "ready", "unavailable": await readiness.not_ready()}


async def open_idempotency_store(app: FastAPI, settings: GatewaySettings) -> IdempotencyStore:
    """The Idempotency-Key store: the JetStream bucket all replicas share, or this process' own."""
    if settings.idempotency_store == "memory":
        return MemoryStore(settings.idempotency_ttl_seconds, settings.idempotency_max_bytes)
    if app.state.nats is None:
        app.state.nats = await nats_access.connect_long_lived(settings)
    # The bucket (nats_access.IDEMPOTENCY_BUCKET, the name the permission table allows) is the
    # provisioner's, made from the same CRM_IDEMPOTENCY_* settings this gateway reads.
    return await JetStreamStore.open(
        app.state.nats.jetstream(timeout=settings.grpc_client_timeout_seconds),
        # Longer than any request may run (its time budget), so a live request keeps its key.
        in_flight_ttl_seconds=max(60.0, 2 * settings.request_timeout_seconds),
    )


def _document_security(app: FastAPI) -> None:
    """OpenAPI: bearer JWT on every /api/v1 route, the web-to-lead key on the public one."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(
            {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "webFormKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            }
        )
        schemas = components.setdefault("schemas", {})
        for model in (WebFormSubmissionIn, Problem):
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(model_schema.pop("$defs", {}))
            schemas[model.__name__] = model_schema
        # FastAPI's own 422 model is not what the API sends: every error is a problem document.
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if path.startswith("/api/v1/") and not path.startswith("/api/v1/public/"):
                    operation["security"] = [{"bearerAuth": []}]
                    responses.setdefault("401", {"description": "Missing or invalid bearer token"})
                    responses.setdefault("429", {"description": "Rate limited; see Retry-After"})
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = _PROBLEM_CONTENT
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
