"""The floor: what the machine does with plain clients and no application logic.

Measured in the same session as the application scenarios, against the stack's own PostgreSQL
and NATS, so ratios to it compare like with like:

- ``pg_insert``: single-row INSERT rate with asyncpg, 1 and 16 clients, in a scratch database;
- ``jetstream``: publish one-by-one, pipelined (``publish_async``) and a pull consumer's
  consume rate, on the scratch stream ``BENCHFLOOR`` over ``benchfloor.>`` (never ``crm.>``);
- ``path``: the golden path's shape with nothing else — a tiny aiohttp server (child process)
  inserting a row + an outbox row in one transaction, a relay publishing the outbox to
  JetStream, and a consumer (second child process) inserting each fetched batch into a second
  database in one transaction
  — driven by the same load generator at 1 and 32 clients (HTTP and end-to-end latency).

Run as a script it is one of those child processes: ``floor.py app …`` or ``floor.py consumer …``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import nats
from loadgen import closed_loop, latency_summary, session
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

STREAM = "BENCHFLOOR"
SUBJECT_PREFIX = "benchfloor"
PATH_SUBJECT = f"{SUBJECT_PREFIX}.path.lead"
APP_DB = "benchfloor_app"
SINK_DB = "benchfloor_sink"
INSERT_DB = "benchfloor_insert"
HERE = Path(__file__).resolve()


# ---------------------------------------------------------------- child processes


async def serve_app(port: int, dsn: str, nats_url: str) -> None:
    """HTTP POST → row + outbox row in one transaction; a relay publishes the outbox and deletes it."""
    from aiohttp import web

    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=16)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    wake = asyncio.Event()

    async def capture(request: web.Request) -> web.Response:
        body = await request.json()
        row_id, event_id = uuid.uuid4().hex, uuid.uuid4().hex
        payload = json.dumps({"id": row_id, "phone": body.get("phone", "")}).encode()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO items (id, phone) VALUES ($1, $2)", row_id, body.get("phone", ""))
            await conn.execute(
                "INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3)", event_id, PATH_SUBJECT, payload
            )
        wake.set()
        return web.json_response({"id": row_id}, status=201)

    async def relay() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=0.5)
            wake.clear()
            while True:
                async with pool.acquire() as conn, conn.transaction():
                    rows = await conn.fetch(
                        "SELECT id, event_id, subject, payload FROM outbox ORDER BY id LIMIT 256 FOR UPDATE SKIP LOCKED"
                    )
                    if not rows:
                        break
                    futures = [
                        await js.publish_async(r["subject"], r["payload"], headers={"Nats-Msg-Id": r["event_id"]})
                        for r in rows
                    ]
                    await asyncio.gather(*futures)
                    await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/capture", capture)
    app.router.add_get("/healthz", healthz)
    relay_task = asyncio.create_task(relay())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        relay_task.cancel()
        await runner.cleanup()
        await nc.close()
        await pool.close()


async def serve_consumer(dsn: str, nats_url: str) -> None:
    """Durable pull consumer: each fetched batch inserted in one transaction (event id as key), then acked.

    One message when idle (returns as soon as it arrives), short-lingering batches when busy.
    """
    conn = await asyncpg.connect(dsn)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    psub = await js.pull_subscribe(
        PATH_SUBJECT, durable="floor-sink", stream=STREAM, config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
    )
    busy = False
    while True:
        try:
            msgs = await psub.fetch(64, timeout=0.02) if busy else await psub.fetch(1, timeout=1)
        except (nats.errors.TimeoutError, TimeoutError):
            busy = False
            continue
        busy = True
        rows = [((m.headers or {}).get("Nats-Msg-Id", ""), json.loads(m.data)["id"]) for m in msgs]
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO events (event_id, item_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", rows
            )
        for msg in msgs:
            await msg.ack()


# ---------------------------------------------------------------- helpers


async def recreate_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def recreate_stream(js: Any) -> None:
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(STREAM)
    await js.add_stream(
        StreamConfig(name=STREAM, subjects=[f"{SUBJECT_PREFIX}.>"], storage=StorageType.FILE, duplicate_window=120)
    )


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


# ---------------------------------------------------------------- scenarios


async def pg_insert(admin_dsn: str, dsn_of: Any, clients: int, duration_s: float) -> dict[str, Any]:
    """Single-row INSERTs, each its own implicit transaction, from ``clients`` connections."""
    conns = [await asyncpg.connect(dsn_of(INSERT_DB)) for _ in range(clients)]
    counts = [0] * clients
    try:
        deadline = time.perf_counter() + duration_s
        t0 = time.perf_counter()

        async def worker(k: int) -> None:
            while time.perf_counter() < deadline:
                await conns[k].execute("INSERT INTO rows (payload) VALUES ($1)", "x" * 64)
                counts[k] += 1

        await asyncio.gather(*(worker(k) for k in range(clients)))
        wall = time.perf_counter() - t0
    finally:
        for conn in conns:
            await conn.close()
    return {"clients": clients, "inserts": sum(counts), "throughput_per_s": _rate(sum(counts), wall)}


async def jetstream(nats_url: str, duration_s: float) -> dict[str, Any]:
    """Publish one-by-one, publish pipelined, then consume everything with a pull consumer."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(publish_async_max_pending=4000)
    payload = b"x" * 200
    try:
        await recreate_stream(js)
        one = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < duration_s:
            await js.publish(f"{SUBJECT_PREFIX}.one", payload)
            one += 1
        one_wall = time.perf_counter() - t0

        piped = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < duration_s:
            futures = [await js.publish_async(f"{SUBJECT_PREFIX}.async", payload) for _ in range(1000)]
            await asyncio.gather(*futures)
            piped += len(futures)
        piped_wall = time.perf_counter() - t0

        total = one + piped
        psub = await js.pull_subscribe(f"{SUBJECT_PREFIX}.>", durable="floor-reader", stream=STREAM)
        consumed = 0
        t0 = time.perf_counter()
        while consumed < total:
            try:
                msgs = await psub.fetch(256, timeout=1)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            for msg in msgs:
                await msg.ack()
            consumed += len(msgs)
        consume_wall = time.perf_counter() - t0
        await js.delete_stream(STREAM)
    finally:
        await nc.close()
    return {
        "publish_one_by_one": {"messages": one, "throughput_per_s": _rate(one, one_wall)},
        "publish_async": {"messages": piped, "throughput_per_s": _rate(piped, piped_wall)},
        "pull_consume": {"messages": consumed, "throughput_per_s": _rate(consumed, consume_wall)},
    }


async def path(
    admin_dsn: str, dsn_of: Any, nats_url: str, port: int, clients_list: list[int], duration_s: float, logs: Path
) -> dict[str, Any]:
    """The minimal HTTP → row + outbox → JetStream → consumer → second database path."""
    for name in (APP_DB, SINK_DB):
        await recreate_database(admin_dsn, name)
    app_conn = await asyncpg.connect(dsn_of(APP_DB))
    await app_conn.execute(
        "CREATE TABLE items (id text PRIMARY KEY, phone text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
        "CREATE TABLE outbox (id bigserial PRIMARY KEY, event_id text NOT NULL, subject text NOT NULL,"
        " payload bytea NOT NULL)"
    )
    await app_conn.close()
    sink = await asyncpg.connect(dsn_of(SINK_DB))
    await sink.execute(
        "CREATE TABLE events (event_id text PRIMARY KEY, item_id text NOT NULL,"
        " received_at timestamptz NOT NULL DEFAULT now())"
    )
    nc = await nats.connect(nats_url)
    await recreate_stream(nc.jetstream())
    children: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {}
    try:
        children = await asyncio.to_thread(
            start_children,
            logs,
            {
                "app": ["app", "--port", str(port), "--dsn", dsn_of(APP_DB), "--nats", nats_url],
                "consumer": ["consumer", "--dsn", dsn_of(SINK_DB), "--nats", nats_url],
            },
        )
        url = f"http://127.0.0.1:{port}"
        async with session() as http:
            await _wait_http(http, f"{url}/healthz", children)

            async def send(client: aiohttp.ClientSession, n: int) -> tuple[bool, Any]:
                async with client.post(f"{url}/capture", json={"phone": f"052-{n:07d}"}) as response:
                    if response.status != 201:
                        return False, response.status
                    return True, (await response.json())["id"]

            await closed_loop(http, send, 4, 0.5)  # warm-up: pools, prepared statements
            for clients in clients_list:
                load = await closed_loop(http, send, clients, duration_s)
                e2e = await _sink_latencies(sink, load.ok)
                results[f"clients_{clients}"] = {
                    "clients": clients,
                    "http": load.summary(),
                    "e2e": {**latency_summary(e2e), "lost": len(load.ok) - len(e2e)},
                }
    finally:
        await asyncio.to_thread(stop_children, children)
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(STREAM)
        await nc.close()
        await sink.close()
    return results


def start_children(logs: Path, roles: dict[str, list[str]]) -> list[subprocess.Popen[bytes]]:
    """This file as child processes (``floor.py <role> …``), each logging to ``logs/floor-<role>.log``."""
    logs.mkdir(parents=True, exist_ok=True)
    children = []
    for role, args in roles.items():
        with (logs / f"floor-{role}.log").open("ab") as log:
            children.append(subprocess.Popen([sys.executable, str(HERE), *args], stdout=log, stderr=subprocess.STDOUT))
    return children


def stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def _wait_http(http: aiohttp.ClientSession, url: str, children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(c.poll() is not None for c in children):
            raise RuntimeError("a floor child process exited; see bench logs (floor-*.log)")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


async def _sink_latencies(sink: asyncpg.Connection, samples: list[Any], wait_s: float = 30.0) -> list[float]:
    """Send (client wall clock) → consumer's transaction time in the second database, per request."""
    started = {s.payload: s.started_wall for s in samples}
    deadline = time.monotonic() + wait_s
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = await sink.fetch(
            "SELECT item_id, extract(epoch FROM received_at)::float8 AS at FROM events WHERE item_id = ANY($1)",
            list(started),
        )
        if len(rows) >= len(started):
            break
        await asyncio.sleep(0.1)
    return [(r["at"] - started[r["item_id"]]) * 1000 for r in rows]


async def run_floor(
    admin_dsn: str, dsn_of: Any, nats_url: str, port: int, duration_s: float, logs: Path
) -> dict[str, Any]:
    """Every floor figure, in the order the issue lists them."""
    await recreate_database(admin_dsn, INSERT_DB)
    conn = await asyncpg.connect(dsn_of(INSERT_DB))
    await conn.execute(
        "CREATE TABLE rows (id bigserial PRIMARY KEY, payload text NOT NULL, at timestamptz DEFAULT now())"
    )
    await conn.close()
    floor: dict[str, Any] = {
        "pg_insert_1": await pg_insert(admin_dsn, dsn_of, 1, duration_s),
        "pg_insert_16": await pg_insert(admin_dsn, dsn_of, 16, duration_s),
    }
    floor["jetstream"] = await jetstream(nats_url, duration_s)
    floor["path"] = await path(admin_dsn, dsn_of, nats_url, port, [1, 32], duration_s, logs)
    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description="A floor child process (started by bench/run.py).")
    parser.add_argument("role", choices=["app", "consumer"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--nats", required=True)
    args = parser.parse_args()
    # The default asyncio loop, like the services (uvloop is not adopted there yet).
    if args.role == "app":
        asyncio.run(serve_app(args.port, args.dsn, args.nats))
    else:
        asyncio.run(serve_consumer(args.dsn, args.nats))


if __name__ == "__main__":
    main()
