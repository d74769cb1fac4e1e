"""Who a request acts for, across processes: the caller context.

The gateway sets it per HTTP request from the verified token; the chassis' gRPC client sends it
as metadata (`x-crm-actor`, `x-request-id`) and the chassis' gRPC server restores it, so a
service records the real actor in its audit log. Event handlers act as `SYSTEM_ACTOR`.

The request's deadline travels the same way: `deadline_after` sets a time budget (the gateway
per HTTP request; the chassis' gRPC server from the incoming call's deadline), and every call
through `crm_kit.grpc_client` made inside it gets at most the time that is left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

ACTOR_METADATA_KEY = "x-crm-actor"
REQUEST_ID_METADATA_KEY = "x-request-id"
SYSTEM_ACTOR = "system"
# gRPC calls that carried no actor (operators' tools, health probes).
UNKNOWN_ACTOR = "unknown"


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
    """Run a block on behalf of actor (restores the previous caller afterwards)."""
    caller = Caller(actor=actor, request_id=request_id)
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
