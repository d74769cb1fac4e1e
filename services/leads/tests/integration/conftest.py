"""The leads service in process against real PostgreSQL and NATS, for every integration test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from crm_kit.service import Service
from crm_kit.testing import free_port, reset_stream, running_service
from crm_leads.db import messaging
from crm_leads.main import MIGRATIONS_DIR, setup
from crm_leads.settings import LeadsSettings


@pytest.fixture
def leads_server(fresh_database: Any, nats_server: str) -> Any:
    """``async with leads_server(**settings) as service:`` — a leads service with these settings."""

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[Service]:
        await reset_stream(nats_server)
        settings = LeadsSettings(
            database_url=await fresh_database("leads"),
            nats_url=nats_server,
            grpc_port=free_port(),
            metrics_port=free_port(),
            **overrides,
        )
        async with running_service(settings, messaging, MIGRATIONS_DIR, setup) as running:
            yield running

    return serve


@pytest.fixture
async def service(leads_server: Any) -> AsyncIterator[Service]:
    async with leads_server() as running:
        yield running
