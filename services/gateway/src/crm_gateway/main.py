"""Entry point: `python -m crm_gateway serve` runs the HTTP server; `migrate` is a no-op."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn

from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings
from crm_kit import metrics, telemetry
from crm_kit.logs import setup_logging

USAGE = "usage: python -m crm_gateway [serve|migrate]"


def serve(settings: GatewaySettings) -> None:
    setup_logging(settings.service_name, settings.log_level, settings.access_log)
    # A client's traceparent keeps its trace id but not its say on sampling (EdgeSampler).
    telemetry.setup_tracing(settings.service_name, sampler=telemetry.EdgeSampler(settings.trace_sample_ratio))
    # Metrics on their own port, as every service: never on the public listener.
    metrics.serve_metrics(settings.metrics_port, host=settings.metrics_host)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        # Keep the chassis' JSON logging instead of uvicorn's own configuration.
        log_config=None,
        server_header=False,
        # request.client stays the TCP peer: the visitor behind a proxy is found only through the
        # configured trusted proxies (crm_gateway.platform.client_address), never uvicorn's own rule,
        # which believes X-Forwarded-For from any local peer.
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "serve"
    if command == "migrate":
        # The gateway owns no database; the command exists so a launcher treats every service alike.
        return
    if command != "serve":
        raise SystemExit(USAGE)
    serve(GatewaySettings())
