"""Settings of the gateway: the chassis settings plus the public HTTP listener."""

from __future__ import annotations

from pydantic import Field

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
