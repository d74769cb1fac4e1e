"""Settings of the gateway: the chassis settings plus the public HTTP listener."""

from __future__ import annotations

from pydantic import Field, model_validator

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
    # Every backend call of one HTTP request shares this budget (the gRPC deadline propagates).
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Where people reach the gateway; used in the web-to-lead HTML snippet.
    public_base_url: str = "http://localhost:8080"

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
    # Browser origins allowed to call the API (JSON list in CRM_CORS_ALLOW_ORIGINS); empty = no CORS.
    cors_allow_origins: list[str] = Field(default_factory=list)
    # Strict-Transport-Security on every response; off because a local run is plain http.
    hsts: bool = False
    # Idempotency-Key responses kept in memory, per replica: for how long and how many.
    idempotency_ttl_seconds: float = Field(default=86_400, gt=0)
    idempotency_max_entries: int = Field(default=100_000, ge=1)
    # Token bucket per authenticated principal: sustained requests per minute, and burst.
    rate_limit_per_minute: int = Field(default=600, ge=1)
    rate_limit_burst: int = Field(default=100, ge=1)
    # Token buckets of the public web-to-lead endpoint: per form key, and per client IP (a busy
    # office or a mobile carrier's NAT shares one address, so that one is wider).
    web_form_rate_limit_per_minute: int = Field(default=30, ge=1)
    web_form_rate_limit_burst: int = Field(default=10, ge=1)
    web_form_ip_rate_limit_per_minute: int = Field(default=120, ge=1)
    web_form_ip_rate_limit_burst: int = Field(default=30, ge=1)

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
