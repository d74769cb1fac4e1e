"""The load generator shared by every scenario: closed loop (N clients) and open loop (fixed rate).

Both run on aiohttp with a connection pool in the bench process (uvloop when ``run.py`` starts
it). A ``Send`` coroutine performs one request and returns whether it succeeded plus an optional
payload the scenario keeps (e.g. the created lead's id). The generator measures its own CPU
(``time.process_time`` of this process / wall time) so a report shows it was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

Send = Callable[[aiohttp.ClientSession, int], Awaitable[tuple[bool, Any]]]


def commit() -> str:
    """The short hash of the commit being measured (a results file's name); "unknown" outside git."""
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=__file__.rsplit("/", 1)[0]
    )
    return out.stdout.strip() or "unknown"


def write_result(result: dict[str, Any], results_dir: Path, name: str, table: str) -> Path:
    """A sized bench's figures as `<results_dir>/<name>-<date>-<commit>.json`, and its table printed."""
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{name}-{datetime.now(UTC):%Y-%m-%d}-{result['commit']}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(table)
    print(f"\nwritten to {out}")
    return out


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def plan_nodes(node: dict[str, Any]) -> list[str]:
    """Node types of a JSON EXPLAIN plan, depth first, with their relation and index: a sequential
    scan where an index was meant shows."""
    label = node["Node Type"]
    if "Relation Name" in node:
        label += f" on {node['Relation Name']}"
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    return [label, *(n for child in node.get("Plans", []) for n in plan_nodes(child))]


def latency_summary(values_ms: list[float]) -> dict[str, float]:
    """n, p50, p95, p99, max and mean of latencies in milliseconds."""
    return {
        "n": len(values_ms),
        "p50_ms": round(percentile(values_ms, 50), 2),
        "p95_ms": round(percentile(values_ms, 95), 2),
        "p99_ms": round(percentile(values_ms, 99), 2),
        "max_ms": round(max(values_ms, default=0.0), 2),
        "mean_ms": round(statistics.fmean(values_ms), 2) if values_ms else 0.0,
    }


@dataclass
class Sample:
    """One request: when it was meant to start (wall clock, epoch s), its latency, outcome, payload."""

    index: int
    started_wall: float
    latency_ms: float
    ok: bool
    payload: Any = None


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_lag_ms: float = 0.0

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    def summary(self) -> dict[str, Any]:
        """Throughput of successful requests, their latency percentiles, errors and generator CPU."""
        good = self.ok
        return {
            "requests": len(self.samples),
            "errors": self.errors,
            "throughput_per_s": round(len(good) / self.wall_s, 1) if self.wall_s else 0.0,
            **latency_summary([s.latency_ms for s in good]),
            "loadgen_cpu_pct": round(100 * self.cpu_s / self.wall_s, 1) if self.wall_s else 0.0,
        }


def session(limit: int = 256, headers: dict[str, str] | None = None) -> aiohttp.ClientSession:
    """A client session with a keep-alive pool of ``limit`` connections, a 30 s timeout and
    default headers (the bearer token)."""
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them, so a request never
    # races a server-side close ("Can not write request body") after a scenario's quiet drain.
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ttl_dns_cache=3600, keepalive_timeout=2)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30), headers=headers)


async def _one(http: aiohttp.ClientSession, send: Send, index: int, started_wall: float, t0: float) -> Sample:
    try:
        ok, payload = await send(http, index)
    except (aiohttp.ClientError, TimeoutError) as error:
        ok, payload = False, repr(error)
    return Sample(index, started_wall, (time.perf_counter() - t0) * 1000, ok, payload)


async def closed_loop(http: aiohttp.ClientSession, send: Send, clients: int, duration_s: float) -> LoadResult:
    """``clients`` workers, each sending its next request as soon as the previous one answered."""
    result = LoadResult()
    counter = iter(range(10**12))
    cpu0, t_start = time.process_time(), time.perf_counter()
    deadline = t_start + duration_s

    async def worker() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            result.samples.append(await _one(http, send, next(counter), time.time(), t0))

    await asyncio.gather(*(worker() for _ in range(clients)))
    result.wall_s = time.perf_counter() - t_start
    result.cpu_s = time.process_time() - cpu0
    return result


async def open_loop(http: aiohttp.ClientSession, send: Send, rate_per_s: float, duration_s: float) -> LoadResult:
    """Start one request every ``1/rate`` seconds without waiting for answers (no coordinated omission).

    Latency counts from the scheduled start, so a late generator or a queue in the client's
    pool shows up in the figures; ``max_lag_ms`` is how late the generator itself ever was.
    """
    result = LoadResult()
    total = max(1, round(rate_per_s * duration_s))
    cpu0, t_start = time.process_time(), time.perf_counter()
    wall_start = time.time()
    tasks: list[asyncio.Task[Sample]] = []
    for i in range(total):
        target = t_start + i / rate_per_s
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.max_lag_ms = max(result.max_lag_ms, -delay * 1000)
        tasks.append(asyncio.create_task(_one(http, send, i, wall_start + (target - t_start), target)))
    result.samples = list(await asyncio.gather(*tasks))
    # Throughput is over the offered window; answers still arriving after it are backlog, not rate.
    result.wall_s = total / rate_per_s
    result.cpu_s = (time.process_time() - cpu0) * result.wall_s / max(time.perf_counter() - t_start, 1e-9)
    return result
