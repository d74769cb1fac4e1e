"""gRPC client set-up: channels that carry the trace context, the caller (actor, request id) and
a deadline, optionally over (m)TLS; and retries (tenacity) for idempotent calls only.

A call's timeout is its explicit timeout or the channel's default, cut to what is left of the
request's budget (`deadline_after`, set per HTTP request by the gateway and restored from the
incoming call's deadline by the chassis' gRPC server), so a chain of calls never outlives the
request that started it. A call made once the budget is spent fails at once with
DEADLINE_EXCEEDED instead of being sent.

Over TLS the channel follows its certificate files: gRPC Python fixes a channel's credentials when
it is made, so when the files are renewed the next call goes through a new channel built from
them (stubs keep working: they hold this channel, not the one inside), and the previous channel
closes once its in-flight calls had their grace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from crm_kit import caller, metrics, telemetry
from crm_kit.caller import deadline_after as deadline_after  # the public budget, re-exported here
from crm_kit.grpc_tls import CertificateFiles, channel_credentials
from crm_kit.settings import TlsFiles

T = TypeVar("T")

RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


def effective_timeout(explicit: float | None, default: float) -> float:
    """The call's timeout: explicit (else the channel's default), at most what is left of the
    current budget (`deadline_after`)."""
    timeout = explicit if explicit is not None else default
    left = caller.remaining()
    return timeout if left is None else min(timeout, left)


def caller_metadata(existing: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """`x-crm-actor` / `x-request-id` for the current caller, unless the call sets them itself."""
    who = caller.current()
    if who is None:
        return []
    present = {str(key).lower() for key, _ in existing}
    md: list[tuple[str, str]] = []
    if caller.ACTOR_METADATA_KEY not in present:
        md.append((caller.ACTOR_METADATA_KEY, who.actor))
    if who.request_id and caller.REQUEST_ID_METADATA_KEY not in present:
        md.append((caller.REQUEST_ID_METADATA_KEY, who.request_id))
    return md


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, default_timeout: float) -> None:
        self.default_timeout = default_timeout

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        method = (
            client_call_details.method.decode()
            if isinstance(client_call_details.method, bytes)
            else str(client_call_details.method)
        )
        timeout = effective_timeout(client_call_details.timeout, self.default_timeout)
        if timeout <= 0:
            metrics.GRPC_CLIENT_HANDLED.labels(method, grpc.StatusCode.DEADLINE_EXCEEDED.name).inc()
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="the request's deadline passed before this call was made",
            )
        md = list(client_call_details.metadata or [])
        carrier: dict[str, str] = {}
        telemetry.inject_headers(carrier)
        md.extend(carrier.items())
        md.extend(caller_metadata(md))
        details = grpc.aio.ClientCallDetails(
            method=client_call_details.method,
            timeout=timeout,
            metadata=grpc.aio.Metadata(*md),
            credentials=client_call_details.credentials,
            wait_for_ready=client_call_details.wait_for_ready,
        )
        started = time.perf_counter()
        call = await continuation(details, request)
        try:
            code = await call.code()
        finally:
            metrics.GRPC_CLIENT_SECONDS.labels(method).observe(time.perf_counter() - started)
        metrics.GRPC_CLIENT_HANDLED.labels(method, code.name).inc()
        return call


def channel(
    address: str,
    *,
    default_timeout: float = 5.0,
    tls: TlsFiles | None = None,
    max_message_bytes: int = 4 * 1024 * 1024,
) -> grpc.aio.Channel:
    """A channel with the client interceptor (trace, caller, deadline); plaintext unless tls is
    given (`ServiceSettings.grpc_tls()`): then TLS verifying the server against tls' CA (the
    system roots without one), presenting tls' certificate when it has one (mTLS)."""
    interceptors = [_ClientInterceptor(default_timeout)]
    # round_robin over every address DNS gives (a headless Service lists each pod); servers close
    # connections after a few minutes (GrpcServer), so clients re-resolve and find new replicas.
    # Reconnect back-off capped at 2 s (gRPC's default grows to 120 s): a restarted backend is
    # called again within seconds of turning SERVING, instead of calls failing UNAVAILABLE meanwhile.
    options = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 0),
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        # The largest answer received (gRPC's own default, 4 MiB, unless raised: a file's bytes).
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
    if tls is None:
        return grpc.aio.insecure_channel(address, interceptors=interceptors, options=options)
    files = CertificateFiles(tls)
    return _RenewingChannel(
        files,
        lambda: grpc.aio.secure_channel(
            address, channel_credentials(files.material), interceptors=interceptors, options=options
        ),
    )


# How long a channel replaced after a certificate renewal lets its in-flight calls finish (as
# long as a server lets its calls finish when it closes a connection: GrpcServer).
_RETIRED_CHANNEL_GRACE_SECONDS = 30.0


class _RenewingChannel(grpc.aio.Channel):  # type: ignore[misc]
    """A TLS channel that, at each call, checks its certificate files and moves to a channel
    built from them when they were renewed (module docstring)."""

    def __init__(self, files: CertificateFiles, make: Callable[[], grpc.aio.Channel]) -> None:
        self._files = files
        self._make = make
        self._channel = make()
        self._retiring: set[asyncio.Task[None]] = set()

    def current(self) -> grpc.aio.Channel:
        """The channel for the next call (a new one if the certificate files were renewed)."""
        if self._files.reload_if_changed():
            retired, self._channel = self._channel, self._make()
            task = asyncio.get_running_loop().create_task(retired.close(_RETIRED_CHANNEL_GRACE_SECONDS))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return self._channel

    def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
        return _RenewingMethod(self, "unary_unary", args, kwargs)

    def unary_stream(self, *args: Any, **kwargs: Any) -> Any:
        return _RenewingMethod(self, "unary_stream", args, kwargs)

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:
        return _RenewingMethod(self, "stream_unary", args, kwargs)

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:
        return _RenewingMethod(self, "stream_stream", args, kwargs)

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)
        await asyncio.gather(*self._retiring, return_exceptions=True)

    async def __aenter__(self) -> _RenewingChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.current().get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.current().wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current().channel_ready()


class _RenewingMethod:
    """A stub's method on a _RenewingChannel: the multi-callable of the channel current at call time."""

    def __init__(self, owner: _RenewingChannel, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._owner, self._kind, self._args, self._kwargs = owner, kind, args, kwargs
        self._bound: tuple[grpc.aio.Channel, Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        channel = self._owner.current()
        if self._bound is None or self._bound[0] is not channel:
            self._bound = (channel, getattr(channel, self._kind)(*self._args, **self._kwargs))
        return self._bound[1](*args, **kwargs)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in RETRYABLE


class _budget_spent(stop_base):  # named like tenacity's own stop strategies
    """Stop once the request's budget (`deadline_after`) is spent: no attempt could finish."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        left = caller.remaining()
        return left is not None and left <= 0


async def call_idempotent(fn: Callable[[], Awaitable[T]], *, attempts: int = 3) -> T:
    """Run an idempotent call, retrying UNAVAILABLE/DEADLINE_EXCEEDED with jittered back-off
    (never past the request's budget, `deadline_after`)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(attempts) | _budget_spent(),
        wait=wait_exponential_jitter(multiplier=0.05, max=1.0),
        reraise=True,
    ):
        with attempt:
            return await fn()
    raise AssertionError("unreachable")
