"""`make bench`: the whole CRM on free ports, the floor first, then every application scenario.

Writes ``bench/results/<date>-<commit>.json``, prints a Markdown table and every figure that
regressed by more than 10 % against the newest other result file. Figures are reported, never
asserted. ``--full`` runs minutes instead of seconds; ``--profile`` records a py-spy flame graph
of every service process during an extra capture run (``bench/results/profile-<service>.svg``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:  # sibling modules, whether run as a script or loaded by a test
    sys.path.insert(0, str(BENCH))

import deal_lists  # noqa: E402
import flames  # noqa: E402
import floor  # noqa: E402
import promotions  # noqa: E402
import quote_pdf  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402
from loadgen import closed_loop, commit, session  # noqa: E402

from crm_devstack._util import free_ports  # noqa: E402
from crm_devstack.stack import BACKEND_SERVICES, GATEWAY, Ports, Stack  # noqa: E402


@dataclass(frozen=True)
class Mode:
    name: str
    floor_s: float
    golden_captures: int
    golden_ships: int
    capture_clients: list[int]
    capture_s: float
    pipeline_rate: float
    pipeline_s: float
    ladder: list[float]
    ladder_step_s: float
    ship_rate: float
    ship_s: float
    read_clients: int
    read_s: float
    profile_s: int
    p99_limit_ms: float = 250.0
    # The reliability figure of docs/reliability.md: outbox lag and ship → SMS at a steady 200/s.
    ship_rate_high: float = 200.0
    ship_high_s: float = 0.0


LADDER = [25, 50, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000]
MODES = {
    "tiny": Mode("tiny", 1, 5, 2, [1, 8], 1, 20, 1, [20], 1, 10, 1, 4, 1, 5),
    "short": Mode("short", 3, 40, 8, [1, 8, 32, 64], 4, 200, 5, LADDER, 4, 50, 3, 16, 4, 10, ship_high_s=3),
    "full": Mode("full", 15, 500, 100, [1, 8, 32, 64], 30, 200, 60, LADDER, 60, 50, 20, 16, 30, 30, ship_high_s=20),
}
# Quote PDF (bench/quote_pdf.py, in the bench process): timed renders per locale and size, and the
# sizes in lines (500 is the cap, crm_sales.quotes.pdf.MAX_LINES).
QUOTE_PDF = {"tiny": (1, (3,)), "short": (10, (3, 60)), "full": (30, (3, 60, 500))}


def say(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def service_pids(stack: Stack) -> dict[str, int]:
    """The gateway's and every backend's process id, for py-spy."""
    return {name: stack.processes[name].pid for name in (GATEWAY, *BACKEND_SERVICES)}


async def profile_capture(ctx: scenarios.Context, stack: Stack, mode: Mode, out_dir: Path) -> dict[str, Any]:
    """A capture run at 32 clients while py-spy samples every service process."""
    pids = service_pids(stack)
    recorders = await flames.record(pids, out_dir, mode.profile_s)
    await asyncio.sleep(1)  # let py-spy attach before the load starts
    load = await closed_loop(ctx.http, ctx.capture, 32, max(1, mode.profile_s - 2))
    return {"capture_c32_under_py_spy": load.summary(), "flame_graphs": await flames.finish(recorders, mode.profile_s)}


async def profile_fulfilment(ctx: scenarios.Context, stack: Stack, mode: Mode, out_dir: Path) -> dict[str, Any]:
    """Shipping at the high rate while py-spy samples every service process (ship-<service>.svg)."""
    pids = service_pids(stack)
    recorders: dict[str, Any] = {}

    async def start() -> None:
        recorders.update(await flames.record(pids, out_dir, mode.profile_s, prefix="ship-"))
        await asyncio.sleep(1)  # let py-spy attach before the load starts

    run = await scenarios.fulfilment(ctx, mode.ship_rate_high, max(1, mode.profile_s - 4), before_load=start)
    return {"ship_under_py_spy": run, "flame_graphs": await flames.finish(recorders, mode.profile_s)}


async def fulfilment(
    ctx: scenarios.Context, stack: Stack, mode: Mode, profile: bool, results_dir: Path, result: dict[str, Any]
) -> None:
    """Ship → SMS at the steady rate and the high one (and under py-spy when profiling)."""
    say("fulfilment")
    result["scenarios"]["fulfilment"] = await scenarios.fulfilment(ctx, mode.ship_rate, mode.ship_s)
    if mode.ship_high_s:
        say(f"fulfilment at {mode.ship_rate_high:g}/s")
        result["scenarios"]["fulfilment_200"] = await scenarios.fulfilment(ctx, mode.ship_rate_high, mode.ship_high_s)
    if profile:
        say(f"shipping under py-spy ({mode.profile_s} s)")
        result["profile_ship"] = await profile_fulfilment(ctx, stack, mode, results_dir)


async def through_gateway(
    ctx: scenarios.Context,
    stack: Stack,
    mode: Mode,
    profile: bool,
    results_dir: Path,
    want: Callable[[str], bool],
    result: dict[str, Any],
) -> None:
    """The scenarios driven through the gateway, in order, into result["scenarios"]."""
    s = result["scenarios"]
    if want("golden"):
        say("golden path (one client)")
        s["golden"] = await scenarios.golden(ctx, mode.golden_captures, mode.golden_ships)
    if want("capture"):
        say("capture")
        s["capture"] = await scenarios.capture(ctx, mode.capture_clients, mode.capture_s)
    if want("capture_keyed"):
        say("capture with Idempotency-Key")
        s["capture_keyed"] = await scenarios.capture(
            ctx, [mode.capture_clients[0], mode.capture_clients[-1]], mode.capture_s, keyed=True
        )
    if profile:
        say(f"capture under py-spy ({mode.profile_s} s)")
        result["profile"] = await profile_capture(ctx, stack, mode, results_dir)
    if want("pipeline"):
        say("pipeline")
        s["pipeline"] = await scenarios.pipeline(
            ctx, mode.pipeline_rate, mode.pipeline_s, mode.ladder, mode.ladder_step_s, mode.p99_limit_ms
        )
    if want("fulfilment"):
        await fulfilment(ctx, stack, mode, profile, results_dir, result)
    if want("read"):
        say("read")
        s["read"] = await scenarios.read(ctx, mode.read_clients, mode.read_s)
    if want("promotions"):
        # The audience is seeded straight into customers; each SMS's receipt comes back signed.
        say("promotions (SMS and e-mail to the local sinks)")
        s["promotions"] = await promotions.run(stack, ctx.http, mode.name)
    if want("deal_lists"):
        # Last with the stack: its 100k deals and 1M history rows would weigh on the others.
        say("deal lists and the board")
        s["deal_lists"] = await deal_lists.run(stack, ctx.http, mode.name, mode.read_clients, mode.read_s)


async def bench(mode: Mode, profile: bool, results_dir: Path, only: frozenset[str] = frozenset()) -> dict[str, Any]:
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "mode": mode.name,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": asdict(mode),
        "scenarios": {},
    }
    s = result["scenarios"]

    def want(name: str) -> bool:
        return not only or name in only

    if only:
        result["only"] = sorted(only)
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        # The load comes from one principal: lift its per-principal rate limit (600/min by default).
        stack = Stack(
            Path(tmp),
            Ports.free(),
            extra_env={
                "CRM_RATE_LIMIT_PER_MINUTE": "60000000",
                "CRM_RATE_LIMIT_BURST": "1000000",
                **promotions.STACK_ENV,
            },
        )
        say("starting the stack")
        await stack.start()
        try:
            pg = stack.postgres
            if want("floor"):
                say("floor")
                s["floor"] = await floor.run_floor(
                    pg.dsn(), pg.dsn, stack.nats_url, free_ports(1)[0], mode.floor_s, Path(tmp) / "logs"
                )
            async with session(headers=stack.auth_headers("admin", ttl_seconds=6 * 3600)) as http:
                ctx, nc = await scenarios.connect(stack, http)
                try:
                    await scenarios.warm_up(ctx)
                    await through_gateway(ctx, stack, mode, profile, results_dir, want, result)
                finally:
                    await scenarios.close(ctx, nc)
            exited = stack.exited()
            if exited:
                raise RuntimeError(f"stack processes exited during the bench: {exited}")
        finally:
            say("stopping the stack")
            await stack.stop()
    # CPU-bound and in this process: measured with the stack stopped, so nothing competes for the cores.
    if want("quote_pdf"):
        say("quote PDF")
        s["quote_pdf"] = quote_pdf.run(*QUOTE_PDF[mode.name])
    result["ratios"] = {} if only else report.ratios(s)
    return result


def write(result: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{datetime.now(UTC):%Y-%m-%d}-{result['commit']}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return out


def print_report(result: dict[str, Any], out: Path, results_dir: Path) -> None:
    print(f"## {result['date'][:10]}, commit {result['commit']}, mode {result['mode']}\n")
    if result.get("only"):
        print(report.cpu_table(result))
        print(json.dumps(result["scenarios"], indent=1, ensure_ascii=False))
        print(f"\nwritten to {out}")
        return
    print(report.table(result))
    print("\n" + report.cpu_table(result))
    for name, flame in result.get("profile", {}).get("flame_graphs", {}).items():
        if "error" in flame:
            print(f"\n- flame graph {name}: py-spy failed: {flame['error']}")
            continue
        own = ", ".join(f"{t['frame']} {t['self_pct']}%" for t in flame["top_self"][:5])
        app = ", ".join(f"{t['frame']} {t['pct']}%" for t in flame["top_app_inclusive"][:3])
        print(
            f"\n- flame graph {name} ({flame['svg']}, {flame['busy_cores']} cores busy): "
            f"top self time: {own}; our code, inclusive: {app}"
        )
    prev = report.previous(results_dir, out)
    if prev is None:
        print("\nNo previous result to compare with.")
    else:
        old = json.loads(prev.read_text())
        lines = report.regressions(old, result)
        note = "" if old.get("mode") == result["mode"] else f" (note: it ran in {old.get('mode')} mode)"
        print(f"\nCompared with {prev.name}{note}: {len(lines)} figure(s) regressed by more than 10 %.")
        print("\n".join(lines))
    print(f"\nwritten to {out}")


async def amain(mode: Mode, profile: bool, results_dir: Path, only: frozenset[str] = frozenset()) -> Path:
    result = await bench(mode, profile, results_dir, only)
    out = write(result, results_dir)
    print_report(result, out, results_dir)
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="minutes per scenario instead of seconds")
    parser.add_argument("--tiny", action="store_true", help="about a second per scenario (the smoke test)")
    parser.add_argument("--profile", action="store_true", help="py-spy flame graph per service during capture")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios to run (floor, golden, capture, capture_keyed, pipeline, fulfilment, "
        "read, deal_lists, quote_pdf); for a quick before/after of one change, not for the committed results",
    )
    args = parser.parse_args(argv)
    only = frozenset(filter(None, args.only.split(",")))
    mode = MODES["full" if args.full else "tiny" if args.tiny else "short"]
    try:
        import uvloop
    except ImportError:  # the generator still works, with more CPU per request
        return asyncio.run(amain(mode, args.profile, args.results_dir, only))
    return uvloop.run(amain(mode, args.profile, args.results_dir, only))


if __name__ == "__main__":
    main()
