"""The Idempotency-Key store every gateway replica shares: a JetStream key-value bucket on a real
NATS server, driven through two middleware instances (two replicas) in front of one app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import nats
import pytest
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from starlette.datastructures import Headers
from starlette.types import Scope

from crm_gateway.platform.idempotency import (
    Claimed,
    IdempotencyMiddleware,
    IdempotencyStore,
    InFlight,
    JetStreamStore,
    StoredBytesQuota,
)
from crm_kit.bus import idempotency_stream_config
from crm_kit.settings import ServiceSettings

pytestmark = pytest.mark.integration

CREDENTIAL = {"Authorization": "Bearer alice"}


async def identify(scope: Scope) -> str | None:
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    return token if scheme == "Bearer" and token else None


class Backend:
    """The app behind both replicas: counts what it created; /slow waits to be released."""

    def __init__(self) -> None:
        self.created = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.app = FastAPI()

        @self.app.post("/campaigns", status_code=201)
        async def create() -> dict[str, int]:
            self.created += 1
            return {"id": self.created}

        @self.app.post("/report", status_code=201)
        async def report() -> dict[str, str]:
            self.created += 1
            return {"text": "ד" * 100_000}  # 200 KB of UTF-8: close to the answer cap

        @self.app.post("/slow", status_code=201)
        async def slow() -> dict[str, int]:
            self.created += 1
            self.entered.set()
            await self.release.wait()
            return {"id": self.created}


@pytest.fixture
async def nc(nats_server: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_server)
    try:
        yield client
    finally:
        await client.close()


async def provisioned(nc: NatsClient, bucket: str, **settings: float) -> str:
    """Make the bucket as the provisioner does (the gateway only binds to it), from chassis
    settings (idempotency_ttl_seconds, idempotency_max_bytes, idempotency_max_response_bytes)."""
    config = idempotency_stream_config(
        ServiceSettings(service_name="provisioner", **{"idempotency_ttl_seconds": 60, **settings}), bucket
    )
    await nc.jetstream().add_stream(config)
    return bucket


async def replica(nc: NatsClient, app: FastAPI, bucket: str, **overrides: float) -> IdempotencyMiddleware:
    async def open_store() -> IdempotencyStore:
        return await JetStreamStore.open(
            nc.jetstream(), bucket=bucket, in_flight_ttl_seconds=overrides.get("in_flight_ttl_seconds", 60)
        )

    return IdempotencyMiddleware(
        app, open_store=open_store, identify=identify, quota=StoredBytesQuota(10 * 1024 * 1024, 60)
    )


def client(app: IdempotencyMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=CREDENTIAL)


def bucket_name() -> str:
    return f"T_{uuid.uuid4().hex[:12]}"


async def test_a_bucket_nobody_provisioned_is_not_created_and_keyed_posts_get_503(nc: NatsClient) -> None:
    """The gateway never creates its bucket (its NATS identity may not): missing, a keyed POST is
    refused, the handler does not run, and nothing appears on the server."""
    backend = Backend()
    bucket = bucket_name()
    gateway = await replica(nc, backend.app, bucket)
    async with client(gateway) as http:
        refused = await http.post("/campaigns", json={"name": "expo"}, headers={"Idempotency-Key": "k-1"})
        await provisioned(nc, bucket)
        accepted = await http.post("/campaigns", json={"name": "expo"}, headers={"Idempotency-Key": "k-1"})

    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert accepted.status_code == 201
    assert backend.created == 1


async def test_a_retry_on_another_replica_replays(nc: NatsClient) -> None:
    backend = Backend()
    bucket = await provisioned(nc, bucket_name())
    one, two = await replica(nc, backend.app, bucket), await replica(nc, backend.app, bucket)
    async with client(one) as first_replica, client(two) as second_replica:
        first = await first_replica.post("/campaigns", json={"name": "expo"}, headers={"Idempotency-Key": "k-1"})
        retry = await second_replica.post("/campaigns", json={"name": "expo"}, headers={"Idempotency-Key": "k-1"})
        other_body = await second_replica.post("/campaigns", json={"name": "x"}, headers={"Idempotency-Key": "k-1"})
        bob = await second_replica.post(
            "/campaigns", json={"name": "expo"}, headers={"Idempotency-Key": "k-1", "Authorization": "Bearer bob"}
        )

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json() == {"id": 1}
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["content-type"] == "application/json"
    assert other_body.status_code == 422
    # Another principal's key of the same name is its own.
    assert bob.json() == {"id": 2}
    assert backend.created == 2


async def test_a_retry_while_the_first_runs_on_another_replica_is_409(nc: NatsClient) -> None:
    backend = Backend()
    bucket = await provisioned(nc, bucket_name())
    one, two = await replica(nc, backend.app, bucket), await replica(nc, backend.app, bucket)
    async with client(one) as first_replica, client(two) as second_replica:
        running = asyncio.create_task(first_replica.post("/slow", content=b"{}", headers={"Idempotency-Key": "k"}))
        await asyncio.wait_for(backend.entered.wait(), timeout=10)
        during = await second_replica.post("/slow", content=b"{}", headers={"Idempotency-Key": "k"})
        backend.release.set()
        done = await running
        after = await second_replica.post("/slow", content=b"{}", headers={"Idempotency-Key": "k"})

    assert during.status_code == 409
    assert done.status_code == 201
    assert after.headers["idempotent-replayed"] == "true"
    assert backend.created == 1


async def test_a_replica_killed_mid_request_frees_its_key_by_itself(nc: NatsClient) -> None:
    """The in-flight marker carries its own TTL: a gateway that died holding a key does not
    block its retries for the whole day."""
    bucket = await provisioned(nc, bucket_name())
    store = await JetStreamStore.open(nc.jetstream(), bucket=bucket, in_flight_ttl_seconds=1)
    claim = await store.claim("k", "fingerprint")
    blocked = await store.claim("k", "fingerprint")
    await asyncio.sleep(2.5)
    retried = await store.claim("k", "fingerprint")

    assert isinstance(claim, Claimed)
    assert isinstance(blocked, InFlight)
    assert isinstance(retried, Claimed)


async def test_the_bucket_is_bounded_in_bytes_oldest_out(nc: NatsClient) -> None:
    backend = Backend()
    bucket = await provisioned(nc, bucket_name(), idempotency_max_bytes=64 * 1024)
    one = await replica(nc, backend.app, bucket)
    async with client(one) as http:
        for i in range(400):
            await http.post("/campaigns", json={"n": i}, headers={"Idempotency-Key": f"k-{i}"})
        oldest = await http.post("/campaigns", json={"n": 0}, headers={"Idempotency-Key": "k-0"})
        newest = await http.post("/campaigns", json={"n": 399}, headers={"Idempotency-Key": "k-399"})

    info = await nc.jetstream().stream_info(f"KV_{bucket}")
    assert info.state.bytes <= 64 * 1024
    assert "idempotent-replayed" not in oldest.headers
    assert newest.headers["idempotent-replayed"] == "true"


async def test_an_answer_near_the_cap_is_kept_and_replayed(nc: NatsClient) -> None:
    backend = Backend()
    bucket = await provisioned(nc, bucket_name(), idempotency_max_bytes=8 * 1024 * 1024)
    app = IdempotencyMiddleware(
        backend.app,
        open_store=lambda: JetStreamStore.open(nc.jetstream(), bucket=bucket, in_flight_ttl_seconds=60),
        identify=identify,
        quota=StoredBytesQuota(10 * 1024 * 1024, 60),
        max_response_bytes=256 * 1024,
    )
    async with client(app) as http:
        first = await http.post("/report", content=b"{}", headers={"Idempotency-Key": "k"})
        retry = await http.post("/report", content=b"{}", headers={"Idempotency-Key": "k"})

    assert len(first.content) > 200_000
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    assert backend.created == 1
