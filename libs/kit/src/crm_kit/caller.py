"""Who a request acts for, across processes: the caller context.

The gateway sets it per HTTP request from the verified token; the chassis' gRPC client sends it
as metadata (`x-crm-actor`, `x-request-id`) and the chassis' gRPC server restores it, so a
service records the real actor in its audit log. Event handlers act as `SYSTEM_ACTOR`.

The request's deadline travels the same way: `deadline_after` sets a time budget (the gateway
per HTTP request; the chassis' gRPC server from the incoming call's deadline), and every call
through `crm_kit.grpc_client` made inside it gets at most the time that is left.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

ACTOR_METADATA_KEY = "x-crm-actor"
REQUEST_ID_METADATA_KEY = "x-request-id"
SYSTEM_ACTOR = "system"
# gRPC calls that carried no actor (operators' tools, health probes).
UNKNOWN_ACTOR = "unknown"

# A request id is a correlation token, not data: letters, digits and `. _ : -`, at most 100
# characters. It arrives from other processes (an HTTP client through the gateway, any gRPC
# caller, an event's id) and ends in logs and the audit log, so every caller set here is checked,
# not only the public edge's. A value outside the rule is dropped, never written as given.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
MAX_ACTOR_LENGTH = 200


def safe_request_id(value: str) -> str:
    """value when it is a well-formed request id, else "" (the caller's id is dropped)."""
    return value if REQUEST_ID.fullmatch(value) else ""


def safe_actor(value: str) -> str:
    """value without control or format characters (no newline or terminal escape reaches the
    audit log or an operator's terminal), cut to MAX_ACTOR_LENGTH; UNKNOWN_ACTOR when nothing
    is left."""
    cleaned = "".join(ch for ch in value[: MAX_ACTOR_LENGTH * 2] if unicodedata.category(ch)[0] != "C")
    return cleaned[:MAX_ACTOR_LENGTH] or UNKNOWN_ACTOR


@dataclass(frozen=True)
class Caller:
    actor: str
    request_id: str = ""


_current: ContextVar[Caller | None] = ContextVar("crm_caller", default=None)
# Absolute time.monotonic() by which the request being handled must be answered.
_deadline: ContextVar[float | None] = ContextVar("crm_deadline", default=None)


def current() -> Caller | None:
    """The caller of the request being handled, or None outside one."""
    return _current.get()


@contextmanager
def acting_as(actor: str, request_id: str = "") -> Iterator[Caller]:
    """Run a block on behalf of actor (restores the previous caller afterwards); both values are
    made safe first (`safe_actor`, `safe_request_id`), whoever sent them."""
    caller = Caller(actor=safe_actor(actor), request_id=safe_request_id(request_id))
    token = _current.set(caller)
    try:
        yield caller
    finally:
        _current.reset(token)


@contextmanager
def deadline_after(seconds: float | None) -> Iterator[float | None]:
    """Run a block with at most `seconds` left for it (None: no new budget).

    A nested budget never extends the one around it: the earlier deadline wins. Yields the
    absolute `time.monotonic()` deadline in force inside the block (None if there is none).
    """
    if seconds is None:
        yield _deadline.get()
        return
    deadline = time.monotonic() + max(0.0, seconds)
    outer = _deadline.get()
    if outer is not None:
        deadline = min(deadline, outer)
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left of the current deadline (0 once it passed), or None outside any budget."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())
