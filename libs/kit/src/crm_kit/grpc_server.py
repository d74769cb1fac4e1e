"""The gRPC server every service runs: health, reflection, optional (m)TLS, and one interceptor
for errors, traces, logs, RED metrics, the caller and the deadline — so no handler maps errors,
measures itself or reads metadata.

The interceptor restores the caller the client sent (`x-crm-actor`, `x-request-id`; actor
"unknown" when absent) with `caller.acting_as`, and the call's remaining time as the budget
(`caller.deadline_after`), so audit rows name the actor and outgoing calls from the handler get
at most the time the incoming call has left.

Who may call: the server listens on `host` (127.0.0.1 unless told otherwise: a laptop's backends
are not on the network). With mTLS and `allowed_client_names`, a call whose client certificate
names none of them (DNS or URI SAN) is refused with PERMISSION_DENIED before its handler runs, so
the actor in its metadata is never believed; only the health service answers any client the CA
signed, since probes run with the pod's own certificate and the answer is one status word."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from opentelemetry import trace

from crm_kit import caller, logs, metrics, telemetry
from crm_kit.db import database_unavailable, transaction_conflict
from crm_kit.errors import DomainError, InvalidArgument, PermissionDenied, nul_characters
from crm_kit.grpc_tls import peer_names, server_credentials
from crm_kit.settings import TlsFiles

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]


# Open to every client the CA signed, whatever allowed_client_names says (module docstring).
_OPEN_TO_ANY_CLIENT_PREFIX = f"/{health.SERVICE_NAME}/"


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Maps DomainError to a status with ErrorInfo/BadRequest details; hides other errors.

    allowed_clients: the client certificate names (DNS/URI SAN) that may call, or None for any
    client the transport let in."""

    def __init__(self, error_domain: str, allowed_clients: frozenset[str] | None = None) -> None:
        self.error_domain = error_domain
        self.allowed_clients = allowed_clients

    def client_allowed(self, context: grpc.aio.ServicerContext) -> bool:
        return self.allowed_clients is None or not self.allowed_clients.isdisjoint(peer_names(context))

    def _refusal(self, context: grpc.aio.ServicerContext) -> PermissionDenied:
        names = sorted(peer_names(context))
        log.warning("gRPC call from a client not allowed here refused", extra={"client_names": names})
        return PermissionDenied(
            "this client's certificate is not allowed to call this service",
            reason="CLIENT_NOT_ALLOWED",
            metadata={"client_names": ",".join(names)},
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        open_to_any = method.startswith(_OPEN_TO_ANY_CLIENT_PREFIX)
        if handler.unary_unary is None and handler.stream_unary is None:
            # Server- and bidi-streaming calls (health Watch, reflection) get only the client check.
            return handler if open_to_any or self.allowed_clients is None else self._guard_streaming(handler)
        # A client-streaming call (an upload) gets the same caller, budget, trace, error mapping,
        # metrics and access log; it is not run again on a conflict (its stream is consumed).
        streaming = handler.unary_unary is None
        behavior = handler.stream_unary if streaming else handler.unary_unary

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await self._serve(method, behavior, request, context, streaming=streaming, open_to_any=open_to_any)

        make_handler = grpc.stream_unary_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
        return make_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _serve(
        self,
        method: str,
        behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
        request: Any,
        context: grpc.aio.ServicerContext,
        *,
        streaming: bool,
        open_to_any: bool,
    ) -> Any:
        """One call under the caller, budget and trace it came with; errors mapped, metrics and access log."""
        carrier = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        # The actor is believed only from a client allowed to call (module docstring).
        allowed = self.client_allowed(context)
        with (
            caller.acting_as(
                (carrier.get(caller.ACTOR_METADATA_KEY) if allowed else None) or caller.UNKNOWN_ACTOR,
                carrier.get(caller.REQUEST_ID_METADATA_KEY, ""),
            ),
            caller.deadline_after(context.time_remaining()),
            telemetry.tracer(__name__).start_as_current_span(
                method, context=telemetry.extract_context(carrier), kind=trace.SpanKind.SERVER
            ) as span,
        ):
            try:
                if not (allowed or open_to_any):
                    raise self._refusal(context)
                return await _invoke(behavior, request, context, method, streaming=streaming)
            except DomainError as exc:
                if streaming:
                    # Read the rest of the client's stream first: a client still writing to a
                    # call that already ended gets an INTERNAL error instead of this answer.
                    async for _ in request:
                        pass
                code = exc.grpc_code
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                await context.abort_with_status(rpc_status.to_status(exc.to_status(self.error_domain)))
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as exc:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
                if database_unavailable(exc):
                    # An outage of the moment, not a bug: UNAVAILABLE (HTTP 503), which
                    # clients and the chassis' idempotent-call helper retry.
                    code = grpc.StatusCode.UNAVAILABLE
                    log.warning("database unavailable in %s", method, extra={"error": repr(exc)})
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable; retry later")
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error in %s", method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                _record_call(method, code, time.perf_counter() - started)

    def _guard_streaming(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """handler (unary-stream or stream-stream) behind the client check. grpc.aio runs an async
        generator and a coroutine writing with context.write differently, so the guard keeps the
        handler's kind."""
        client_streaming = handler.unary_stream is None
        behavior = handler.stream_stream if client_streaming else handler.unary_stream
        domain = self.error_domain

        async def refuse(context: grpc.aio.ServicerContext) -> None:
            await context.abort_with_status(rpc_status.to_status(self._refusal(context).to_status(domain)))

        if inspect.isasyncgenfunction(behavior):

            async def guarded_generator(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                if not self.client_allowed(context):
                    await refuse(context)
                async for response in behavior(request, context):
                    yield response

            guarded: Callable[..., Any] = guarded_generator
        else:

            async def guarded_coroutine(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if not self.client_allowed(context):
                    await refuse(context)
                return await behavior(request, context)

            guarded = guarded_coroutine
        make_handler = (
            grpc.stream_stream_rpc_method_handler if client_streaming else grpc.unary_stream_rpc_method_handler
        )
        return make_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


async def _invoke(
    behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
    request: Any,
    context: grpc.aio.ServicerContext,
    method: str,
    *,
    streaming: bool,
) -> Any:
    """The handler itself; a unary request is checked for NUL characters and re-run on a transaction conflict."""
    if streaming:
        return await behavior(request, context)
    if bad := nul_characters(request):
        raise InvalidArgument(
            "text fields must not contain NUL characters",
            field_violations=[(name, "contains a NUL character") for name in bad],
        )
    return await _with_conflict_retries(behavior, request, context, method)


# Always in the access log: the codes a caller cannot have caused (the gateway answers them with
# a 5xx), and refusals (who was turned away, and why).
_FAILED_CODES = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


def _record_call(method: str, code: grpc.StatusCode, elapsed: float) -> None:
    metrics.GRPC_SERVER_HANDLED.labels(method, code.name).inc()
    metrics.GRPC_SERVER_SECONDS.labels(method).observe(elapsed)
    # The access log: one line per call, carrying the trace id of the caller's request (a
    # successful, quick one only with CRM_ACCESS_LOG=all: crm_kit.logs).
    logs.access(
        log,
        "rpc handled",
        {"method": method, "grpc_code": code.name, "duration_ms": round(elapsed * 1000, 2)},
        failed=code in _FAILED_CODES,
        elapsed=elapsed,
    )


# A handler whose transaction PostgreSQL rolled back to break a deadlock runs again (nothing of it
# was written); after these attempts the caller gets the error (INTERNAL) like any other.
_CONFLICT_ATTEMPTS = 4


async def _with_conflict_retries(
    behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
    request: Any,
    context: grpc.aio.ServicerContext,
    method: str,
) -> Any:
    for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
        try:
            return await behavior(request, context)
        except Exception as exc:
            if attempt == _CONFLICT_ATTEMPTS or not transaction_conflict(exc):
                raise
            log.info("transaction conflict in %s; running it again", method, extra={"attempt": attempt})
            await asyncio.sleep(random.uniform(0.001, 0.01 * attempt))
    raise AssertionError("unreachable")


# The health service name of liveness: SERVING from the start until shutdown begins, whatever the
# readiness checks say, so a probe of it asks only "does this process still serve?" (a database
# outage makes a pod unready, never restarts it). Service "" and the servicers' names are readiness.
LIVENESS = "liveness"


class GrpcServer:
    """grpc.aio server whose health says NOT_SERVING until every readiness check passes (service
    "" and each servicer's name), and SERVING for LIVENESS while it runs.

    Listens on host:port (127.0.0.1 by default). Plaintext unless tls has a certificate and key
    (reloaded when the files are renewed: `grpc_tls.server_credentials`); with a CA too, clients
    must present a certificate signed by it (mTLS), and with allowed_client_names one naming one
    of them (module docstring)."""

    def __init__(
        self,
        port: int,
        error_domain: str,
        checks: list[ReadinessCheck],
        *,
        tls: TlsFiles | None = None,
        host: str = "127.0.0.1",
        allowed_client_names: Iterable[str] = (),
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.port = port
        self.host = host
        self.checks = checks
        self.tls = tls
        allowed = frozenset(allowed_client_names)
        if allowed and not (tls is not None and tls.cert_file and tls.ca_file):
            # Without mTLS there is no client certificate to check: refusing beats a silent no-op.
            raise ValueError("allowed client names need mTLS (a certificate, its key and a CA)")
        self.server = grpc.aio.server(
            interceptors=[ServerInterceptor(error_domain, allowed or None)],
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                # Clients reconnect (and re-resolve DNS) at least every 5 minutes, so replicas added
                # by an autoscaler get their share of calls; in-flight calls get 30 s to finish.
                ("grpc.max_connection_age_ms", 300_000),
                ("grpc.max_connection_age_grace_ms", 30_000),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names: list[str] = [health.SERVICE_NAME]
        self._watch: asyncio.Task[None] | None = None
        self._ready = False

    def add(self, register: Callable[[Any, grpc.aio.Server], None], servicer: Any, service_name: str) -> None:
        register(servicer, self.server)
        self.service_names.append(service_name)

    async def start(self) -> None:
        reflection.enable_server_reflection([*self.service_names, reflection.SERVICE_NAME], self.server)
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        if self.tls is not None and self.tls.cert_file:
            self.server.add_secure_port(address, server_credentials(self.tls))
        else:
            self.server.add_insecure_port(address)
        await self._set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        self._watch = asyncio.create_task(self._watch_readiness())

    async def _set_all(self, status: int) -> None:
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def _watch_readiness(self) -> None:
        while True:
            results = await asyncio.gather(*(check() for check in self.checks), return_exceptions=True)
            ready = all(r is True for r in results)
            if ready != self._ready:
                log.info("health changed", extra={"serving": ready})
                await self._set_all(
                    health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
                )
                self._ready = ready
            await asyncio.sleep(1 if ready else 0.2)

    async def stop(self, grace_seconds: float) -> None:
        if self._watch:
            self._watch.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_seconds)
