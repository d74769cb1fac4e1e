"""Named failpoints: a real crash (SIGKILL) at an exact point of the code, for crash-window tests.

The idea of etcd's gofail and TiKV's fail-rs, reduced to the one action that matters for
exactly-once: the process dies with no chance to clean up. ``failpoint(name)`` does nothing
unless the process environment's ``CRM_FAILPOINTS`` names it::

    CRM_FAILPOINTS=outbox.after_publish                 # die on the first hit
    CRM_FAILPOINTS=bus.after_commit_before_ack=2        # let one hit pass, die on the second
    CRM_FAILPOINTS=outbox.after_publish,notifications.after_intent

The variable is read once, at import; a disabled failpoint costs one dict lookup. Production
refuses the variable at start-up (``ServiceSettings``), and this module never arms anything
when ``CRM_ENVIRONMENT=production``. The chaos suite (``tests/chaos/test_crash_windows.py``)
sets it for the one process under test.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "CRM_FAILPOINTS"

POINTS: dict[str, str] = {
    "outbox.after_publish": "relay: the batch is published to JetStream, its outbox rows not yet deleted",
    "bus.after_commit_before_ack": "consumer: the handler's transaction committed, the message not yet acked",
    "bus.after_dead_letter_before_term": "consumer: the dead letter committed, the message not yet terminated",
    "notifications.after_intent": "SMS: the intent row committed, the provider not yet called",
    "notifications.after_provider_accepted": "SMS: the provider accepted the message, the intent not yet marked sent",
    "promotions.after_intents": "promotion: a batch's intents committed, none of it sent yet",
    "promotions.after_sends": "promotion: a batch handed to the provider, its outcomes not yet recorded",
}
"""Every failpoint in the code base and where it sits; `parse` refuses any other name."""


def parse(spec: str) -> dict[str, int]:
    """``name[=N],...`` → {name: the hit that kills (1-based)}. Raises ValueError on a typo."""
    armed: dict[str, int] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, count = item.partition("=")
        name = name.strip()
        if name not in POINTS:
            raise ValueError(f"{ENV_VAR}: unknown failpoint {name!r}; known: {', '.join(sorted(POINTS))}")
        if name in armed:
            raise ValueError(f"{ENV_VAR}: failpoint {name!r} is listed twice")
        hit = 1
        if sep:
            try:
                hit = int(count.strip())
            except ValueError:
                raise ValueError(f"{ENV_VAR}: {item!r}: the hit count must be a whole number") from None
            if hit < 1:
                raise ValueError(f"{ENV_VAR}: {item!r}: the hit count must be at least 1")
        armed[name] = hit
    return armed


def _from_environment() -> dict[str, int]:
    if os.environ.get("CRM_ENVIRONMENT", "").strip().lower() == "production":
        return {}  # ServiceSettings refuses to start with failpoints in production
    return parse(os.environ.get(ENV_VAR, ""))


_armed: dict[str, int] = _from_environment()
_hits: dict[str, int] = {}


def armed() -> dict[str, int]:
    """The failpoints this process will die at, with the hit that kills (a copy)."""
    return dict(_armed)


def failpoint(name: str) -> None:
    """Die here (SIGKILL to this process) if ``name`` is armed and this is its fatal hit."""
    fatal = _armed.get(name)
    if fatal is None:
        return
    hits = _hits.get(name, 0) + 1
    _hits[name] = hits
    if hits < fatal:
        return
    # Written straight to the file descriptor: nothing buffered survives a SIGKILL.
    os.write(2, f"failpoint {name} hit {hits}: SIGKILL pid {os.getpid()}\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)
