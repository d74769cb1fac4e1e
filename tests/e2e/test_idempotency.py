"""Idempotency-Key against the running system: a retry that lands on another gateway replica
replays the first answer (one campaign, one web-form key), and a flood of large bad requests with
keys leaves the gateway's memory where it was."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from crm_devstack._util import free_ports
from crm_devstack.stack import GATEWAY, Stack

pytestmark = pytest.mark.e2e

# What the review's attack may cost the gateway process at most (docs/security.md): nothing it
# sends is kept, so what remains is the allocator's working set.
MEMORY_BUDGET_BYTES = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def second_gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second gateway replica beside the stack's: same backends, same NATS, its own port."""
    http_port, metrics_port = free_ports(2)
    command, env = stack.command(GATEWAY)
    env.update({"CRM_HTTP_PORT": str(http_port), "CRM_METRICS_PORT": str(metrics_port)})
    log = Path(tmp_path_factory.mktemp("gateway-2")) / "gateway-2.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the second gateway did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
async def replicas(stack: Stack, second_gateway: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    headers = stack.auth_headers("marketing")
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as one,
        httpx.AsyncClient(base_url=second_gateway, timeout=15, headers=headers) as two,
    ):
        yield one, two


async def test_a_retried_create_on_another_replica_makes_one_campaign(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = replicas
    name = f"expo-{uuid.uuid4().hex[:8]}"
    body = {"source": "exhibition", "name": name}
    key = {"Idempotency-Key": f"campaign-{name}"}

    first = await one.post("/api/v1/campaigns", json=body, headers=key)
    retry = await two.post("/api/v1/campaigns", json=body, headers=key)
    listed = await two.get("/api/v1/campaigns", params={"source": "exhibition", "page_size": 100})

    assert first.status_code == 201, first.text
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert [c["id"] for c in listed.json()["campaigns"] if c["name"] == name] == [first.json()["id"]]


async def test_a_retried_web_form_key_on_another_replica_is_the_same_key(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    """The secret is shown once: a retry must get the same key and secret, not mint a second key."""
    one, two = replicas
    campaign = f"site-{uuid.uuid4().hex[:8]}"
    created = await one.post("/api/v1/campaigns", json={"source": "web_form", "name": campaign})
    assert created.status_code == 201, created.text
    body = {"display_name": "אתר", "source": "web_form", "campaign": campaign}
    key = {"Idempotency-Key": f"key-{campaign}"}

    first = await one.post("/api/v1/web-form-keys", json=body, headers=key)
    retry = await two.post("/api/v1/web-form-keys", json=body, headers=key)
    keys = await one.get("/api/v1/web-form-keys", params={"page_size": 100})

    assert first.status_code == 201, first.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert [k["id"] for k in keys.json()["web_form_keys"] if k["campaign"] == created.json()["id"]] == [
        first.json()["web_form_key"]["id"]
    ]


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_large_bad_requests_with_keys_leave_the_gateways_memory_within_budget(stack: Stack) -> None:
    """~900 KB of unknown fields per request, each with a new key, with and without a token: before
    the fix every answer (~2 MB) was kept for a day; now none is, and the answers are small."""
    pid = stack.processes[GATEWAY].pid
    body = "{" + ",".join(f'"unknown_field_{i:06d}":"{"x" * 60}"' for i in range(11_000)) + "}"
    assert 800_000 < len(body) < 1_000_000
    token = stack.auth_headers("marketing")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:

        async def attack(i: int) -> httpx.Response:
            headers = {"content-type": "application/json", "Idempotency-Key": f"flood-{uuid.uuid4().hex}"}
            if i % 2:
                headers.update(token)
            return await http.post("/api/v1/campaigns", content=body, headers=headers)

        await asyncio.gather(*(attack(i) for i in range(8)))  # warm the allocator
        before = resident_bytes(pid)
        answers = []
        for start in range(0, 200, 8):
            answers += await asyncio.gather(*(attack(i) for i in range(start, start + 8)))
        after = resident_bytes(pid)

    assert {a.status_code for a in answers} == {401, 422}
    assert max(len(a.content) for a in answers) < 10_000
    assert after - before < MEMORY_BUDGET_BYTES, f"RSS grew by {(after - before) / 2**20:.0f} MiB"
