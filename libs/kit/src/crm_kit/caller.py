"""Who a request acts for, across processes: the caller context.

The gateway sets it per HTTP request from the verified token; the chassis' gRPC client sends it
as metadata (`x-crm-actor`, `x-request-id`) and the chassis' gRPC server restores it, so a
service records the real actor in its audit log. Event handlers act as `SYSTEM_ACTOR`.
"""

from __future__ import annotations

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
