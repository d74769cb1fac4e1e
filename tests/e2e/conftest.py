"""The whole CRM as separate processes (the same launcher as `make run`), on free ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from crm_devstack.stack import Ports, Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = Path(tmp_path_factory.mktemp("crm-e2e"))
    # Every e2e client shares 127.0.0.1 and the fuzzing sends thousands of requests per role: widen
    # the per-principal limit and the per-address limit of requests without a valid token (unit
    # tests cover the limiters). The web form's limits stay at their defaults: they count per key,
    # each test has its own key, and a made-up key counts against nothing.
    system = Stack(
        state,
        Ports.free(),
        extra_env={
            "CRM_RATE_LIMIT_BURST": "100000",
            # Every access line, successful ones too: test_trace_logs reads them (crm_kit.logs).
            "CRM_ACCESS_LOG": "all",
            "CRM_ANONYMOUS_RATE_LIMIT_BURST": "100000",
        },
    )
    asyncio.run(system.start())
    try:
        yield system
    finally:
        asyncio.run(system.stop())


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, as an admin (tests of other roles mint their own tokens)."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as client:
        yield client


@pytest.fixture
async def sms(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.sms_url, timeout=15) as client:
        yield client
