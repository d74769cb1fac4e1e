"""Settings: one pydantic-settings class per service, read from CRM_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

# Values that are fine on a laptop and must never reach production.
DEVELOPMENT_SECRETS = frozenset({"dev-sms-key", "changeme", "secret", ""})


def asyncpg_url(url: str) -> str:
    """A PostgreSQL URL for SQLAlchemy's asyncpg driver: a plain postgresql:// (or postgres://) one,
    such as CloudNativePG's generated `uri`, gets the driver's scheme; any other is kept."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+asyncpg://{rest}" if sep and scheme in ("postgresql", "postgres") else url


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for gRPC TLS. Server: cert + key, and with a CA it requires client certificates
    signed by it (mTLS). Client: the CA verifies the server (empty: the system roots), cert + key
    are its own certificate for servers that require one."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("a TLS certificate file and its private key file go together")

    @staticmethod
    def _read(path: str) -> bytes | None:
        return Path(path).read_bytes() if path else None

    def certificate_chain(self) -> bytes | None:
        return self._read(self.cert_file)

    def private_key(self) -> bytes | None:
        return self._read(self.key_file)

    def root_certificates(self) -> bytes | None:
        return self._read(self.ca_file)


class ServiceSettings(BaseSettings):
    """What every service needs; a service subclasses it to add its own fields."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    service_name: str
    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    # Which access lines (per request, call and event) are written at INFO: "failures" (and slow
    # ones), or "all" (crm_kit.logs).
    access_log: Literal["all", "failures"] = "failures"

    # postgresql+asyncpg://user:password@host:5432/name. A plain postgresql:// (or postgres://) URL,
    # such as the `uri` of the Secret CloudNativePG generates for its application user, is read
    # as the same thing: the charts hand that Secret's key over unchanged.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/crm"
    # Another host (and port) for database_url's, e.g. host:5432 of a connection pooler in front of
    # the server the URL names (CloudNativePG's generated URL names its -rw Service). Empty: none.
    database_host: str = ""
    # The pool holds up to twice this many connections, each kept once opened (crm_kit.db).
    db_pool_size: int = Field(default=10, ge=1, le=100)

    nats_url: str = "nats://127.0.0.1:4222"
    # This service's NATS user (docs/security.md, "The event bus"): the server lets it publish
    # only its own subjects and consume only its own durable consumers. Production refuses to
    # connect without credentials (these, or a client certificate the server maps to the user).
    nats_user: str = ""
    nats_password: str = Field(default="", repr=False)
    # TLS to NATS (PEM paths): the CA that verifies the server (empty: the system roots, used when
    # the URL is tls:// or the server requires TLS); cert + key: this service's client certificate.
    nats_tls_ca_file: str = ""
    nats_tls_cert_file: str = ""
    nats_tls_key_file: str = ""
    stream_name: str = "CRM"
    stream_subjects: str = "crm.>"
    stream_replicas: int = Field(default=1, ge=1, le=5)
    stream_max_age_days: float = Field(default=14, gt=0)
    duplicate_window_seconds: float = Field(default=120, gt=0)
    # The gateway's Idempotency-Key bucket (`crm_kit.bus.idempotency_stream_config`), in one place:
    # the provisioner creates the bucket from these and the gateway reads the same ones (the TTL
    # is its per-principal quota window, the answer cap bounds what it stores; its memory store,
    # CRM_IDEMPOTENCY_STORE=memory, uses the TTL and the byte budget too).
    idempotency_ttl_seconds: float = Field(default=86_400, gt=0)
    idempotency_max_bytes: int = Field(default=256 * 1024 * 1024, ge=64 * 1024)
    idempotency_max_response_bytes: int = Field(default=256 * 1024, ge=1024, le=900 * 1024)
    consumer_max_deliver: int = Field(default=5, ge=1)
    consumer_ack_wait_seconds: float = Field(default=30, gt=0)
    consumer_backoff_seconds: list[float] = Field(default_factory=lambda: [0.2, 1.0, 3.0, 10.0])
    # How long an event whose handler says RetryLater (e.g. its lead is not known here yet) is
    # retried before it becomes a dead letter: far beyond AckWait and a restarted consumer's lag.
    consumer_retry_later_max_seconds: float = Field(default=900, gt=0)
    consumer_batch_size: int = Field(default=64, ge=1, le=1000)
    # How often crm_consumer_pending is refreshed (one consumer-info request per durable consumer).
    consumer_pending_refresh_seconds: float = Field(default=5.0, gt=0)

    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    outbox_poll_seconds: float = Field(default=0.5, gt=0)

    # Listen addresses: loopback unless told otherwise, so a laptop's backends and their metrics
    # are not on the network; the Helm charts set 0.0.0.0 (the pod's own network namespace).
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100
    grpc_client_timeout_seconds: float = Field(default=5.0, gt=0)
    # gRPC TLS (PEM paths; all empty = plaintext). With a CA the server requires client
    # certificates signed by it (mTLS), and clients verify servers against it.
    grpc_tls_cert_file: str = ""
    grpc_tls_key_file: str = ""
    grpc_tls_ca_file: str = ""
    # With mTLS: the client certificate names (DNS or URI SAN, e.g. the caller's Service name or
    # SPIFFE id) allowed to call this service's gRPC server; others get PERMISSION_DENIED (health
    # excepted) and their x-crm-actor is never believed. Empty: any client the CA signed.
    grpc_allowed_client_names: list[str] = Field(default_factory=list)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # The largest gRPC message the server accepts (and a client channel receives). gRPC's 4 MiB
    # suits every call but a file's bytes: the support service (attachments) and the gateway raise it.
    grpc_max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024 * 1024, le=64 * 1024 * 1024)
    # Crash-window tests only (crm_kit.failpoints reads CRM_FAILPOINTS itself, at import);
    # declared here so production can refuse it at start-up.
    failpoints: str = ""

    # Where files too large for a row are kept (crm_kit.objectstore.object_store_from_url):
    # file:///abs/path, or s3://bucket?endpoint=https://host:port&region=… with the key pair below.
    # Empty: the service has no object store (its attachments answer "not configured").
    object_store_url: str = ""
    object_store_access_key_id: str = ""
    object_store_secret_access_key: str = Field(default="", repr=False)

    # Addresses of the other services (host:port), for those that call them.
    leads_addr: str = "127.0.0.1:50051"
    customers_addr: str = "127.0.0.1:50052"
    orders_addr: str = "127.0.0.1:50053"
    support_addr: str = "127.0.0.1:50057"
    notifications_addr: str = "127.0.0.1:50054"
    reporting_addr: str = "127.0.0.1:50055"
    sales_addr: str = "127.0.0.1:50056"

    def grpc_tls(self) -> TlsFiles | None:
        """The gRPC TLS files (for `GrpcServer` and `grpc_client.channel`), or None for plaintext."""
        if not (self.grpc_tls_cert_file or self.grpc_tls_key_file or self.grpc_tls_ca_file):
            return None
        return TlsFiles(self.grpc_tls_cert_file, self.grpc_tls_key_file, self.grpc_tls_ca_file)

    def secrets(self) -> dict[str, str]:
        """Secret-valued settings (a subclass adds its own); checked in production. The object
        store's secret counts only when the store is S3 (a file store has none)."""
        if self.object_store_url.startswith("s3:"):
            return {"object_store_secret_access_key": self.object_store_secret_access_key}
        return {}

    @model_validator(mode="after")
    def _database_url_for_asyncpg(self) -> ServiceSettings:
        self.database_url = asyncpg_url(self.database_url)
        if self.database_host:
            host, _, port = self.database_host.partition(":")
            url = make_url(self.database_url).set(host=host, port=int(port) if port else None)
            self.database_url = url.render_as_string(hide_password=False)
        return self

    @model_validator(mode="after")
    def _tls_cert_and_key_together(self) -> ServiceSettings:
        if bool(self.grpc_tls_cert_file) != bool(self.grpc_tls_key_file):
            raise ValueError("grpc_tls_cert_file and grpc_tls_key_file must be set together")
        return self

    @model_validator(mode="after")
    def _allowed_client_names_need_mtls(self) -> ServiceSettings:
        if self.grpc_allowed_client_names and not (self.grpc_tls_cert_file and self.grpc_tls_ca_file):
            raise ValueError(
                "grpc_allowed_client_names needs mTLS: set grpc_tls_cert_file, grpc_tls_key_file and grpc_tls_ca_file"
            )
        return self

    @model_validator(mode="after")
    def _nats_credentials_whole(self) -> ServiceSettings:
        if bool(self.nats_user) != bool(self.nats_password):
            raise ValueError("nats_user and nats_password must be set together")
        if bool(self.nats_tls_cert_file) != bool(self.nats_tls_key_file):
            raise ValueError("nats_tls_cert_file and nats_tls_key_file must be set together")
        if self.environment == "production" and self.nats_user and self.nats_password in DEVELOPMENT_SECRETS:
            raise ValueError("production refuses a development or empty secret: nats_password")
        return self

    @model_validator(mode="after")
    def _refuse_failpoints_in_production(self) -> ServiceSettings:
        if self.environment == "production" and self.failpoints.strip():
            raise ValueError("production refuses CRM_FAILPOINTS (crash injection is for tests only)")
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> ServiceSettings:
        if self.environment == "production":
            weak = [name for name, value in self.secrets().items() if value in DEVELOPMENT_SECRETS]
            if weak:
                raise ValueError(f"production refuses development or empty secrets: {', '.join(weak)}")
        return self
