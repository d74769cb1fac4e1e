"""The whole stack's CPU while nothing happens: what every process burns per second idle (health
checks, relay polls, consumers' waiting fetches, consumer-lag reports, scans), which a quiet
cluster pays around the clock and a busy one pays on top of its load.

    uv run python bench/idle.py [--settle 20] [--seconds 30]

Starts its own stack on free ports (as `make bench` does), waits `--settle` seconds for start-up
work to end, then reads every process' CPU (`cpu.snapshot`) over `--seconds` and prints the ms of
CPU per second per process and in total, as JSON. Reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import cpu

from crm_devstack.stack import Ports, Stack


async def idle(settle_s: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="crm-idle-") as tmp:
        stack = Stack(Path(tmp), Ports.free())
        await stack.start()
        try:
            await asyncio.sleep(settle_s)
            before = cpu.snapshot(stack)
            await asyncio.sleep(seconds)
            after = cpu.snapshot(stack)
        finally:
            await stack.stop()
    per_s = {name: round((after[name] - before.get(name, 0.0)) * 1000 / seconds, 1) for name in after}
    return {"total_ms_per_s": round(sum(per_s.values()), 1), **dict(sorted(per_s.items(), key=lambda kv: -kv[1]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait after the start")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds to measure")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(idle(args.settle, args.seconds))))


if __name__ == "__main__":
    main()
