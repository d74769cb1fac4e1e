"""Golden-path latency on this machine, with the whole system as separate processes.

Measures, one client at a time (the floor a single user feels):
- capture: POST /api/v1/leads round trip through gateway → leads (routing, outbox);
- capture → LeadAssigned consumed: from just before the POST to the moment reporting's consumer
  recorded the event (its transaction time in reporting's event_log);
- ship → SMS: from just before POST /orders/{id}/ship to the fake provider's receipt.
Writes bench/results/<date>-<commit>.json and prints a Markdown table. Timings are reported,
never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats

from crm_devstack.stack import Ports, Stack

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(values_ms),
        "p50_ms": round(percentile(values_ms, 50), 2),
        "p95_ms": round(percentile(values_ms, 95), 2),
        "p99_ms": round(percentile(values_ms, 99), 2),
        "mean_ms": round(statistics.fmean(values_ms), 2),
    }


async def poll(fetch: Any, timeout: float = 20.0) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await fetch()
        if value:
            return value
        await asyncio.sleep(0.002)
    raise TimeoutError("bench step did not complete")


async def lead_body(i: int) -> dict[str, Any]:
    return {
        "full_name": f"לקוח בדיקה {i}",
        "phone_number": f"052-{uuid.uuid4().int % 10_000_000:07d}",
        "source": ["radio", "tv", "website", "press"][i % 4],
        "request_id": str(uuid.uuid4()),
    }


async def measure_capture(stack: Stack, api: httpx.AsyncClient, n: int) -> tuple[list[float], list[float]]:
    nc = await nats.connect(stack.nats_url)
    js = nc.jetstream()
    reporting = await asyncpg.connect(stack.database_url("reporting").replace("+asyncpg", ""))
    capture_ms: list[float] = []
    consumed_ms: list[float] = []
    try:
        for i in range(n):
            started_wall = datetime.now(UTC)
            t0 = time.perf_counter()
            response = await api.post("/api/v1/leads", json=await lead_body(i))
            capture_ms.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
            lead_id = response.json()["id"]
            assigned = await js.get_last_msg("CRM", "crm.leads.lead_assigned")
            event_id = dict(assigned.headers or {})["ce-id"]
            assert lead_id  # the last LeadAssigned is this lead's: one client, one lead at a time

            async def received(eid: str = event_id) -> Any:
                return await reporting.fetchval("select received_at from event_log where event_id = $1", eid)

            received_at = await poll(received)
            consumed_ms.append((received_at - started_wall).total_seconds() * 1000)
    finally:
        await reporting.close()
        await nc.close()
    return capture_ms, consumed_ms


async def measure_ship_to_sms(api: httpx.AsyncClient, sms: httpx.AsyncClient, n: int) -> list[float]:
    results: list[float] = []
    eta = (date.today() + timedelta(days=3)).isoformat()
    for i in range(n):
        lead = (await api.post("/api/v1/leads", json=await lead_body(i))).json()
        deal = (await api.post(f"/api/v1/leads/{lead['id']}/convert", json={})).json()
        item = {
            "sku": "S",
            "description": "d",
            "quantity": 1,
            "unit_price": {"amount_minor": 100, "currency_code": "ILS"},
        }
        (
            await api.post(f"/api/v1/deals/{deal['id']}/close", json={"outcome": "won", "items": [item]})
        ).raise_for_status()

        async def order(deal_id: str = deal["id"]) -> Any:
            return (await api.get("/api/v1/orders", params={"deal_id": deal_id})).json()["orders"]

        order_id = (await poll(order))[0]["id"]
        tracking = f"BENCH{i}{uuid.uuid4().hex[:8]}"
        started_wall = datetime.now(UTC)
        shipped = await api.post(
            f"/api/v1/orders/{order_id}/ship",
            json={"carrier": "UPS", "tracking_number": tracking, "estimated_delivery_date": eta},
        )
        shipped.raise_for_status()

        async def message(phone: str = lead["phone_number"]) -> Any:
            return [m for m in (await sms.get("/messages")).json() if m["to"] == phone]

        received = datetime.fromisoformat((await poll(message))[0]["received_at"])
        results.append((received - started_wall).total_seconds() * 1000)
    return results


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


async def main(full: bool) -> None:
    n_capture, n_ship = (500, 100) if full else (60, 15)
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        stack = Stack(Path(tmp), Ports.free())
        await stack.start()
        try:
            async with (
                httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as api,
                httpx.AsyncClient(base_url=stack.sms_url, timeout=30) as sms,
            ):
                for i in range(10):  # warm-up: connections, prepared plans
                    (await api.post("/api/v1/leads", json=await lead_body(i))).raise_for_status()
                capture_ms, consumed_ms = await measure_capture(stack, api, n_capture)
                ship_ms = await measure_ship_to_sms(api, sms, n_ship)
        finally:
            await stack.stop()
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "mode": "full" if full else "short",
        "clients": 1,
        "scenarios": {
            "capture_http": summary(capture_ms),
            "capture_to_lead_assigned_consumed": summary(consumed_ms),
            "ship_to_sms_received": summary(ship_ms),
        },
    }
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-{result['commit']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| scenario | n | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
    for name, s in result["scenarios"].items():
        print(f"| {name} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} |")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="more samples (minutes instead of seconds)")
    asyncio.run(main(parser.parse_args().full))
