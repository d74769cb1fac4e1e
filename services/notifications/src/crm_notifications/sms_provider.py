"""The SMS provider adapter: one HTTP call per message, carrying the intent's idempotency key.

Transient failures (connection errors, timeouts, 429, 5xx) are retried here a few times with
a short jittered back-off; retrying is safe because the provider de-duplicates by
Idempotency-Key. Any other 4xx is permanent: resending the same request cannot succeed.

`SmsGateway` is what the service needs of any SMS provider (this one, or Kavenegar's adapter in
kavenegar.py); `build_sms_gateway` makes the one the settings name.
"""

from __future__ import annotations

from typing import Protocol

import httpx
from opentelemetry import trace

from crm_kit import telemetry
from crm_notifications.kavenegar import KavenegarSmsProvider
from crm_notifications.outbound import PermanentSendError, RetryPolicy, SendReceipt, TransientSendError, with_retries

SMS_GATEWAY_KINDS = ("generic", "kavenegar")


class SmsGateway(Protocol):
    """An SMS provider's adapter: sends one message under our idempotency key (the provider
    de-duplicates by it, so a retry never sends twice) and retries its transient failures itself."""

    async def send(self, *, to: str, body: str, sender: str, idempotency_key: str) -> SendReceipt:
        """Raises TransientSendError (the same send may succeed later) or PermanentSendError."""
        ...

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


def build_sms_gateway(
    kind: str,
    base_url: str,
    api_key: str,
    *,
    timeout_seconds: float = 5.0,
    max_connections: int = 16,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SmsGateway:
    """The adapter of the provider kind names: "generic" (our provider's /v1/messages API) or
    "kavenegar". Raises ValueError for any other kind."""
    name = kind.strip().lower()
    if name == "generic":
        return HttpSmsProvider(
            base_url, api_key, timeout_seconds=timeout_seconds, max_connections=max_connections, transport=transport
        )
    if name == "kavenegar":
        return KavenegarSmsProvider(
            base_url, api_key, timeout_seconds=timeout_seconds, max_connections=max_connections, transport=transport
        )
    raise ValueError(f"unknown SMS provider kind {kind!r}; one of {', '.join(SMS_GATEWAY_KINDS)}")


class HttpSmsProvider:
    """Client of the provider's ``POST /v1/messages`` API."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_seconds: float = 5.0,
        max_connections: int = 16,
        attempts: int = 3,
        backoff_initial_seconds: float = 0.1,
        backoff_max_seconds: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_seconds,
            # One pooled client for every send: as many keep-alive connections as sends run at
            # once, so a busy minute reuses connections instead of opening one per SMS.
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )
        self._retry = RetryPolicy(attempts, backoff_initial_seconds, backoff_max_seconds)

    async def send(self, *, to: str, body: str, sender: str, idempotency_key: str) -> SendReceipt:
        """Send one SMS; returns the provider's message id. Raises TransientSendError or PermanentSendError."""
        return await with_retries(self._retry, lambda: self._post(to, body, sender, idempotency_key))

    async def _post(self, to: str, body: str, sender: str, idempotency_key: str) -> str:
        headers = {"Idempotency-Key": idempotency_key}
        try:
            # A client span whose traceparent reaches the provider: one trace from the HTTP
            # request that shipped the order to this call.
            with telemetry.tracer(__name__).start_as_current_span("sms.send", kind=trace.SpanKind.CLIENT):
                telemetry.inject_headers(headers)
                response = await self._client.post(
                    "/v1/messages", json={"to": to, "body": body, "sender": sender}, headers=headers
                )
        except httpx.TransportError as exc:
            # Covers connect errors and timeouts; a timed-out send may have gone out, and the
            # retry with the same key then returns the first result.
            raise TransientSendError(f"provider unreachable: {exc!r}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientSendError(f"provider answered {status}: {response.text[:500]}")
        if status >= 400:
            raise PermanentSendError(f"provider rejected the message with {status}: {response.text[:500]}")
        try:
            provider_id = response.json()["id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentSendError(f"provider answered {status} without a message id: {response.text[:500]}") from exc
        return str(provider_id)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
