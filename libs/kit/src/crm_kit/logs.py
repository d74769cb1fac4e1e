"""JSON logs, one object per line, carrying the current trace and span ids.

The access logs (the gateway's `http request`, every service's `rpc handled` and `handling
event`) are the only lines written per request or event. By default (`access_log = "failures"`)
only a failed or slow one is written, at INFO; a successful one is written at DEBUG, so a
lead's path through the system costs no log line at all (issue 16, bench/README.md). With
`CRM_ACCESS_LOG=all` every one is written at INFO (the end-to-end tests read them).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from opentelemetry import trace

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

AccessLog = Literal["all", "failures"]
# A request or event slower than this is logged even when it succeeded.
SLOW_SECONDS = 1.0
_access_level_ok = logging.DEBUG


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # orjson: several times faster than json.dumps; UTF-8 as is (Hebrew and Persian stay readable).
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def setup_logging(service: str, level: str = "INFO", access_log: AccessLog = "failures") -> None:
    """Route every logger to stdout as JSON lines; access_log: which access lines reach INFO."""
    global _access_level_ok
    _access_level_ok = logging.INFO if access_log == "all" else logging.DEBUG
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx writes a line per request at INFO (the SMS provider's every call): warnings only.
    for noisy in ("nats", "asyncio", "sqlalchemy.engine", "alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def access(
    logger: logging.Logger, message: str, fields: Mapping[str, Any], *, failed: bool, elapsed: float = 0.0
) -> None:
    """One access line: at INFO when it failed or took longer than SLOW_SECONDS (always written),
    else at the level the `access_log` setting gives successful ones (DEBUG unless "all")."""
    level = logging.INFO if failed or elapsed >= SLOW_SECONDS else _access_level_ok
    if logger.isEnabledFor(level):
        logger.log(level, message, extra=dict(fields))
