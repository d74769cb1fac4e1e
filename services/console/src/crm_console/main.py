"""Entry point: `python -m crm_console serve` runs the console; `migrate` is a no-op (no database)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn

from crm_console.app import create_app
from crm_console.settings import ConsoleSettings
from crm_kit import metrics
from crm_kit.logs import setup_logging

USAGE = "usage: python -m crm_console [serve|migrate]"


def serve(settings: ConsoleSettings) -> None:
    setup_logging(settings.service_name, settings.log_level, settings.access_log)
    metrics.serve_metrics(settings.metrics_port, host=settings.metrics_host)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "serve"
    if command == "migrate":
        return
    if command != "serve":
        raise SystemExit(USAGE)
    serve(ConsoleSettings())
