"""Settings of the gateway: the chassis settings plus the public HTTP listener."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from crm_gateway.platform.client_address import ForwardedHeader, parse_trusted_proxies
from crm_kit.dev_issuer import DEFAULT_AUDIENCE, DEV_ISSUER
from crm_kit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Read from CRM_* variables (CRM_HTTP_PORT, CRM_LEADS_ADDR, …)."""

    service_name: str = "gateway"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    # Request bodies above this size are refused with 413 before any parsing.
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # How long /readyz waits for each backend's gRPC health check.
    readiness_timeout_seconds: float = Field(default=1.0, gt=0)
    # /readyz reuses its answer this long (crm_gateway.readiness): anonymous probes cannot fan out.
    readiness_cache_seconds: float = Field(default=2.0, ge=0, le=30)
    # The share of requests whose trace is recorded and exported, drawn by the gateway itself: a
    # client's traceparent keeps its trace id, never its sampled flag (crm_kit.telemetry.EdgeSampler).
    trace_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    # Every backend call of one HTTP request shares this budget (the gRPC deadline propagates).
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The CSV lead-import upload's own body cap (CRM_MAX_BODY_BYTES does not apply to it) and time
    # budget (reading and validating the whole file), instead of the request's.
    lead_import_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    lead_import_timeout_seconds: float = Field(default=900.0, gt=0, le=3600)
    # A CSV audience list's body cap: one gRPC message to customers, whose limit is 4 MiB (about
    # 200,000 phone numbers); a longer list is split into files.
    audience_list_max_bytes: int = Field(default=3_500_000, gt=0, le=4_000_000)
    # Its own time budget: matching 250,000 lines takes about 15 s (bench/README.md).
    audience_list_timeout_seconds: float = Field(default=120.0, gt=0, le=600)
    # A ticket attachment upload's own body cap (CRM_MAX_BODY_BYTES does not apply to it); the
    # support service keeps at most 10 MiB, so a larger cap only moves where the refusal is made.
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # The backends' answers may carry an attachment's bytes (gRPC's default client limit is 4 MiB).
    grpc_max_message_bytes: int = Field(default=11 * 1024 * 1024, ge=1024 * 1024, le=64 * 1024 * 1024)
    # Where people reach the gateway; used in the web-to-lead HTML snippet.
    public_base_url: str = "http://localhost:8080"
    # The secret the SMS provider signs its callbacks with (delivery receipts and replies:
    # crm_kit.signatures, X-Timestamp and X-Signature); empty: the callback routes answer 404.
    sms_callback_secret: str = "dev-sms-callback-secret"

    # OIDC bearer tokens: the issuer (`iss`), this API's audience (`aud`), the issuer's JWKS URL,
    # the accepted algorithms (asymmetric only), the clock skew allowed, and the roles claim.
    auth_issuer: str = DEV_ISSUER
    auth_audience: str = DEFAULT_AUDIENCE
    auth_jwks_url: str = ""
    auth_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    auth_leeway_seconds: int = Field(default=30, ge=0, le=300)
    auth_roles_claim: str = "roles"
    # Development only: the dev issuer's key file; the gateway then serves its JWKS at
    # /.well-known/jwks.json (point auth_jwks_url at it). Refused in production.
    auth_dev_issuer_key_file: str = ""
    # With the dev issuer on, its OIDC sign-in (authorization code + PKCE, crm_gateway.platform.dev_oidc):
    # each client id and the exact redirect URIs a code may be sent to (JSON in CRM_AUTH_DEV_CLIENTS),
    # and how long the access and ID tokens it hands out live.
    auth_dev_clients: dict[str, list[str]] = Field(
        default_factory=lambda: {"crm-console": ["http://localhost:8081/callback", "http://127.0.0.1:8081/callback"]}
    )
    auth_dev_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    # Browser origins allowed to call the API (JSON list in CRM_CORS_ALLOW_ORIGINS); empty = no CORS.
    cors_allow_origins: list[str] = Field(default_factory=list)
    # /openapi.json, /docs and /redoc (crm_gateway.api_docs): unset = on, except in production,
    # where the API's map is not handed to anonymous callers unless this is set to true.
    api_docs: bool | None = None
    # Strict-Transport-Security on every response; off because a local run is plain http.
    hsts: bool = False
    # Idempotency-Key responses (crm_gateway.platform.idempotency): kept in the JetStream key-value bucket
    # every replica shares ("jetstream", nats_access.IDEMPOTENCY_BUCKET, made by the provisioner),
    # or in this process ("memory": one replica only). Kept for the TTL; the whole store is
    # bounded in bytes (oldest out), each response in bytes (a larger one is not kept): those three
    # are the chassis' idempotency_* settings, the ones the provisioner makes the bucket from. And
    # each principal's stored bytes per replica within the TTL.
    idempotency_store: Literal["jetstream", "memory"] = "jetstream"
    idempotency_max_bytes_per_principal: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Token bucket per authenticated principal: sustained requests per minute, and burst.
    rate_limit_per_minute: int = Field(default=600, ge=1)
    rate_limit_burst: int = Field(default=100, ge=1)
    # Token bucket per client address (crm_gateway.platform.client_address) for /api/v1 requests without a
    # valid token (each 401): over it 429. Valid tokens are never counted here.
    anonymous_rate_limit_per_minute: int = Field(default=60, ge=1)
    anonymous_rate_limit_burst: int = Field(default=30, ge=1)
    # Token buckets of the public web-to-lead endpoint, counted only for a key the leads service
    # knows (crm_gateway.platform.web_form_limits): per visitor (key and client address; a person sends a
    # form once or twice), per network (key and IPv6 /48: one holder of a delegated prefix; a few
    # visitors' worth) and per key (a busy campaign's whole site). Each is far smaller than the
    # next, so one address, or one /48, spends at most a small share of a key's tokens.
    web_form_rate_limit_per_minute: int = Field(default=60, ge=1)
    web_form_rate_limit_burst: int = Field(default=60, ge=1)
    web_form_address_rate_limit_per_minute: int = Field(default=2, ge=1)
    web_form_address_rate_limit_burst: int = Field(default=5, ge=1)
    web_form_network_rate_limit_per_minute: int = Field(default=6, ge=1)
    web_form_network_rate_limit_burst: int = Field(default=15, ge=1)
    # Proxies (CIDRs, JSON list in CRM_TRUSTED_PROXIES) whose forwarded header names the client
    # (crm_gateway.platform.client_address): the ingress controller's pods. Empty: the TCP peer is the
    # client and forwarded headers are ignored. Which header they append to: one, never both.
    trusted_proxies: list[str] = Field(default_factory=list)
    forwarded_header: ForwardedHeader = "x-forwarded-for"

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_cidrs(cls, value: list[str]) -> list[str]:
        parse_trusted_proxies(value)  # ValueError names the entry that is not a CIDR
        return value

    @field_validator("auth_dev_clients")
    @classmethod
    def _redirect_uris_are_absolute_without_fragment(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        # RFC 6749 §3.1.2: an absolute URI without a fragment; it is compared as an exact string.
        for client_id, uris in value.items():
            for uri in uris:
                parts = urlsplit(uri)
                if parts.scheme not in ("http", "https") or not parts.netloc or "#" in uri:
                    raise ValueError(f"redirect URI {uri!r} of {client_id!r} is not an absolute http(s) URI")
        return value

    @property
    def api_docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.environment != "production"

    @model_validator(mode="after")
    def _refuse_development_identity_in_production(self) -> GatewaySettings:
        if self.environment == "production":
            if self.auth_dev_issuer_key_file or self.auth_issuer == DEV_ISSUER:
                raise ValueError("production refuses the development token issuer (set CRM_AUTH_ISSUER)")
            if not self.auth_jwks_url.startswith("https://"):
                raise ValueError("production needs CRM_AUTH_JWKS_URL, an https:// URL of the issuer's JWKS")
        if not self.auth_jwks_url:
            raise ValueError("CRM_AUTH_JWKS_URL is required (the token issuer's JWKS)")
        return self

    def secrets(self) -> dict[str, str]:
        return {**super().secrets(), "sms_callback_secret": self.sms_callback_secret}
