"""Fixtures the notifications integration tests share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn

from crm_devstack.sms_provider import create_app
from crm_kit.testing import eventually, free_port


@pytest.fixture
async def sms_base_url() -> AsyncIterator[str]:
    """The fake SMS provider (the one `make run` starts), served by uvicorn on a free port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, result=server.started), timeout=10, interval=0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
