"""Console settings, from CRM_CONSOLE_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SESSION_KEY = "ZGV2LW9ubHktY29uc29sZS1zZXNzaW9uLWtleS0zMmI="  # base64 of 32 bytes; refused in production


class ConsoleSettings(BaseSettings):
    """The console owns no database: it calls the gateway with the signed-in user's token."""

    model_config = SettingsConfigDict(env_prefix="CRM_CONSOLE_", extra="ignore")

    service_name: str = "console"
    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    access_log: Literal["all", "failures"] = "failures"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8081, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=1, le=65535)
    # The gateway as this server reaches it (calls with the user's token), and the address the
    # browser sees for the console itself (the OIDC redirect URI is built from it).
    gateway_url: str = "http://127.0.0.1:8080"
    public_url: str = "http://localhost:8081"
    # OIDC: the issuer's discovery document is read from here at start-up (authorization and
    # token endpoints); the development issuer is the gateway's own.
    oidc_issuer_url: str = "http://127.0.0.1:8080"
    # The browser-facing base of the authorization endpoint when it differs from the server's
    # view of the issuer (a local run: 127.0.0.1 for the server, localhost for the browser).
    oidc_browser_issuer_url: str = "http://localhost:8080"
    oidc_client_id: str = "crm-console"
    # AES-256-GCM key (base64 of 32 bytes) sealing the session cookie that holds the token.
    session_key: str = Field(default=DEV_SESSION_KEY, repr=False)
    session_max_age_seconds: int = Field(default=8 * 3600, ge=60)
    # Cookies marked Secure (https only); a local run is plain http.
    secure_cookies: bool = False
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    default_locale: Literal["he", "fa", "en"] = "he"
    # The gateway as a browser or a customer's web site reaches it (the web-form snippet posts
    # there); empty: the OIDC browser issuer's address, which is the gateway in development.
    public_gateway_url: str = ""
    # A lead-import upload is passed to the gateway whole: the console refuses larger files (413)
    # instead of holding them in memory; the wait for the gateway's answer is longer than a page's.
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    upload_timeout_seconds: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _no_dev_key_in_production(self) -> ConsoleSettings:
        if self.environment == "production":
            if self.session_key == DEV_SESSION_KEY:
                raise ValueError("CRM_CONSOLE_SESSION_KEY must be set in production (the development key is public)")
            if not self.secure_cookies:
                raise ValueError("CRM_CONSOLE_SECURE_COOKIES must be true in production (cookies over https only)")
        return self
