"""Settings: one pydantic-settings class per service, read from CRM_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that are fine on a laptop and must never reach production.
DEVELOPMENT_SECRETS = frozenset({"dev-sms-key", "changeme", "secret", ""})


class ServiceSettings(BaseSettings):
    """What every service needs; a service subclasses it to add its own fields."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    service_name: str
    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/crm"
    db_pool_size: int = Field(default=10, ge=1, le=100)

    nats_url: str = "nats://127.0.0.1:4222"
    stream_name: str = "CRM"
    stream_subjects: str = "crm.>"
    stream_replicas: int = Field(default=1, ge=1, le=5)
    stream_max_age_days: float = Field(default=14, gt=0)
    duplicate_window_seconds: float = Field(default=120, gt=0)
    consumer_max_deliver: int = Field(default=5, ge=1)
    consumer_ack_wait_seconds: float = Field(default=30, gt=0)
    consumer_backoff_seconds: list[float] = Field(default_factory=lambda: [0.2, 1.0, 3.0, 10.0])
    consumer_batch_size: int = Field(default=64, ge=1, le=1000)

    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    outbox_poll_seconds: float = Field(default=0.5, gt=0)

    grpc_port: int = 50051
    metrics_port: int = 9100
    grpc_client_timeout_seconds: float = Field(default=5.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)

    # Addresses of the other services (host:port), for those that call them.
    leads_addr: str = "127.0.0.1:50051"
    customers_addr: str = "127.0.0.1:50052"
    orders_addr: str = "127.0.0.1:50053"
    notifications_addr: str = "127.0.0.1:50054"
    reporting_addr: str = "127.0.0.1:50055"

    def secrets(self) -> dict[str, str]:
        """Secret-valued settings a subclass declares; checked in production."""
        return {}

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> ServiceSettings:
        if self.environment == "production":
            weak = [name for name, value in self.secrets().items() if value in DEVELOPMENT_SECRETS]
            if weak:
                raise ValueError(f"production refuses development or empty secrets: {', '.join(weak)}")
        return self
