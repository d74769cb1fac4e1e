"""The customers service in process against real PostgreSQL and NATS, for every integration test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import pytest

from crm.customers.v1 import customers_pb2_grpc
from crm_customers.db import messaging
from crm_customers.main import MIGRATIONS_DIR, CustomersSettings, setup
from crm_kit.testing import free_port, local_channel, reset_stream, running_service


class Running(NamedTuple):
    stub: customers_pb2_grpc.CustomersServiceStub
    database_url: str


@asynccontextmanager
async def serve_customers(fresh_database: Any, nats_url: str, **overrides: Any) -> AsyncIterator[Running]:
    await reset_stream(nats_url)
    port = free_port()
    options: dict[str, Any] = {"consumer_backoff_seconds": [0.1], "consumer_max_deliver": 3, **overrides}
    settings = CustomersSettings(
        database_url=await fresh_database("customers"),
        nats_url=nats_url,
        grpc_port=port,
        metrics_port=free_port(),
        **options,
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup):
        ch = local_channel(port)
        try:
            yield Running(customers_pb2_grpc.CustomersServiceStub(ch), settings.database_url)
        finally:
            await ch.close()


@pytest.fixture
def customers_server(fresh_database: Any, nats_server: str) -> Any:
    """``async with customers_server(**settings) as running:`` — a service with other settings."""

    def serve(**overrides: Any) -> Any:
        return serve_customers(fresh_database, nats_server, **overrides)

    return serve


@pytest.fixture
async def customers(fresh_database: Any, nats_server: str) -> AsyncIterator[Running]:
    async with serve_customers(fresh_database, nats_server) as running:
        yield running
