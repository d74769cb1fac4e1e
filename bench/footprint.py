"""Each service's memory and CPU, idle and under capture load: where the charts' per-service
resource requests and limits come from (deploy/helm/<service>/values.yaml, docs/operations.md).

    uv run python bench/footprint.py [--clients 16] [--seconds 60]

Starts its own stack on free ports, reads every CRM process's resident memory after start-up
(`VmRSS`), captures leads through the gateway in a closed loop (the realistic people of
`people.py`), waits for the consumers to settle, and reads the resident memory again and its peak
(`VmHWM`) and the CPU each process spent per second of load and per lead (`cpu.snapshot`). Writes
bench/results/footprint-<date>-<commit>.json. Reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import cpu
from loadgen import closed_loop, commit, session
from people import People

from crm_devstack.stack import BACKEND_SERVICES, CONSOLE, GATEWAY, Ports, Stack

RESULTS = Path(__file__).resolve().parent / "results"
PROCESSES = (*BACKEND_SERVICES, GATEWAY, CONSOLE)


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory now and its peak, in MB, from /proc/<pid>/status."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: round(int(fields[key].split()[0]) / 1024, 1) for key in ("VmRSS", "VmHWM")}


def memory(stack: Stack) -> dict[str, dict[str, float]]:
    return {name: memory_mb(stack.processes[name].pid) for name in PROCESSES}


async def measure(clients: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="crm-footprint-") as tmp:
        stack = Stack(Path(tmp), Ports.free(), extra_env={"CRM_RATE_LIMIT_BURST": "1000000"})
        await stack.start()
        try:
            await asyncio.sleep(15)
            idle = memory(stack)
            people = People()
            api = f"{stack.gateway_url}/api/v1/leads"

            async def send(http: Any, _: int) -> tuple[bool, Any]:
                person = people.next()
                body = {"full_name": person.full_name, "phone_number": person.phone_number, "source": "radio"}
                async with http.post(api, json=body) as response:
                    return response.status in (200, 201), response.status

            before = cpu.snapshot(stack)
            started = time.monotonic()
            async with session(headers=stack.auth_headers()) as http:
                load = await closed_loop(http, send, clients, seconds)
            await asyncio.sleep(10)  # the consumers finish what the load left them
            elapsed = time.monotonic() - started
            after = cpu.snapshot(stack)
            loaded = memory(stack)
        finally:
            await stack.stop()
    leads = len(load.ok)
    per_process = {}
    for name in PROCESSES:
        spent = after.get(name, 0.0) - before.get(name, 0.0)
        per_process[name] = {
            "rss_idle_mb": idle[name]["VmRSS"],
            "rss_after_mb": loaded[name]["VmRSS"],
            "rss_peak_mb": loaded[name]["VmHWM"],
            "cpu_ms_per_s": round(spent * 1000 / elapsed, 1),
            "cpu_ms_per_lead": round(spent * 1000 / leads, 3) if leads else None,
        }
    return {"load": load.summary(), "leads": leads, "clients": clients, "seconds": seconds, "processes": per_process}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    result = {"date": time.strftime("%Y-%m-%d"), "commit": commit(), **asyncio.run(measure(args.clients, args.seconds))}
    path = RESULTS / f"footprint-{result['date']}-{result['commit']}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'process':<14} {'idle MB':>8} {'after MB':>9} {'peak MB':>8} {'CPU ms/s':>9} {'CPU ms/lead':>12}")
    for name, row in result["processes"].items():
        print(
            f"{name:<14} {row['rss_idle_mb']:>8} {row['rss_after_mb']:>9} {row['rss_peak_mb']:>8}"
            f" {row['cpu_ms_per_s']:>9} {row['cpu_ms_per_lead']!s:>12}"
        )
    print(f"{result['leads']} leads, {result['load']['throughput_per_s']}/s; {path}")


if __name__ == "__main__":
    main()
