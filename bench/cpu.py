"""CPU time of every process of the stack, read from /proc: where a captured lead's CPU goes.

A snapshot sums, per stack process, the user and system time of the process and of every
descendant still running, plus what its finished children left in its ``cutime``/``cstime``
(PostgreSQL's backends are the postmaster's children; a backend that ended is counted there once
the postmaster reaped it). Two snapshots give the CPU seconds each process spent in between: the
gateway, every backend service (with its relay and consumers, which run in the same process), the
fake SMS provider, PostgreSQL (all databases: one server) and NATS.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from crm_devstack.stack import Stack

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, own CPU s, reaped children's CPU s) of pid, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return ppid, (utime + stime) / _TICKS, (cutime + cstime) / _TICKS


def _all() -> dict[int, tuple[int, float, float]]:
    stats: dict[int, tuple[int, float, float]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    return stats


def roots(stack: Stack) -> dict[str, int]:
    """The stack's top-level process per name."""
    found = {name: proc.pid for name, proc in stack.processes.items() if proc.poll() is None}
    if stack.postgres.pid is not None:
        found["postgres"] = stack.postgres.pid
    if stack.nats.pid is not None:
        found["nats"] = stack.nats.pid
    return found


def snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds spent so far per stack process (its tree), by name."""
    stats = _all()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    totals: dict[str, float] = {}
    for name, root in roots(stack).items():
        if root not in stats:
            continue
        seconds, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            _, own, reaped = stats[pid]
            seconds += own + (reaped if pid == root else 0.0)
            todo.extend(children.get(pid, ()))
        totals[name] = seconds
    return totals


def per_item(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, Any]:
    """Milliseconds of CPU per item, per process and in total, between two snapshots."""
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    per = {name: round(seconds * 1000 / items, 3) for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1])}
    return {
        "items": items,
        "total_ms": round(sum(spent.values()) * 1000 / items, 3) if items else None,
        "per_process_ms": per,
        "cpu_s": round(sum(spent.values()), 3),
    }
