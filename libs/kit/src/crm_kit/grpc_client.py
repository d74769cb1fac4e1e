"""gRPC client set-up: channels that carry the trace context and a default deadline, and
retries (tenacity) for idempotent calls only."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from crm_kit import metrics, telemetry

T = TypeVar("T")

RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, default_timeout: float) -> None:
        self.default_timeout = default_timeout

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        md = list(client_call_details.metadata or [])
        carrier: dict[str, str] = {}
        telemetry.inject_headers(carrier)
        md.extend(carrier.items())
        details = grpc.aio.ClientCallDetails(
            method=client_call_details.method,
            timeout=client_call_details.timeout if client_call_details.timeout is not None else self.default_timeout,
            metadata=grpc.aio.Metadata(*md),
            credentials=client_call_details.credentials,
            wait_for_ready=client_call_details.wait_for_ready,
        )
        method = (
            client_call_details.method.decode()
            if isinstance(client_call_details.method, bytes)
            else str(client_call_details.method)
        )
        started = time.perf_counter()
        call = await continuation(details, request)
        try:
            code = await call.code()
        finally:
            metrics.GRPC_CLIENT_SECONDS.labels(method).observe(time.perf_counter() - started)
        metrics.GRPC_CLIENT_HANDLED.labels(method, code.name).inc()
        return call


def channel(address: str, *, default_timeout: float = 5.0) -> grpc.aio.Channel:
    """An insecure channel (mTLS arrives with the gateway-hardening work) with the client interceptor."""
    return grpc.aio.insecure_channel(
        address,
        interceptors=[_ClientInterceptor(default_timeout)],
        options=[("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 0)],
    )


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in RETRYABLE


async def call_idempotent(fn: Callable[[], Awaitable[T]], *, attempts: int = 3) -> T:
    """Run an idempotent call, retrying UNAVAILABLE/DEADLINE_EXCEEDED with jittered back-off."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=0.05, max=1.0),
        reraise=True,
    ):
        with attempt:
            return await fn()
    raise AssertionError("unreachable")
