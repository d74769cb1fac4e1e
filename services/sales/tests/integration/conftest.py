"""The sales service in process against real PostgreSQL and NATS JetStream, for every integration test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from crm.sales.v1 import catalog_pb2_grpc, deals_pb2_grpc, pipelines_pb2_grpc, quotes_pb2_grpc
from crm_kit.service import Service
from crm_kit.testing import free_port, local_channel, reset_stream, running_service
from crm_sales.db import messaging
from crm_sales.main import MIGRATIONS_DIR, SalesSettings, setup


@dataclass
class Sales:
    deals: deals_pb2_grpc.DealsServiceStub
    pipelines: pipelines_pb2_grpc.PipelinesServiceStub
    service: Service
    nats_url: str
    catalog: catalog_pb2_grpc.CatalogServiceStub
    quotes: quotes_pb2_grpc.QuotesServiceStub


@pytest.fixture
async def sales(fresh_database: Any, nats_server: str) -> AsyncIterator[Sales]:
    await reset_stream(nats_server)
    port = free_port()
    settings = SalesSettings(
        database_url=await fresh_database("sales"),
        nats_url=nats_server,
        grpc_port=port,
        metrics_port=free_port(),
        consumer_backoff_seconds=[0.1],
        consumer_max_deliver=3,
        consumer_retry_later_max_seconds=2.0,
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup) as service:
        ch = local_channel(port)
        yield Sales(
            deals_pb2_grpc.DealsServiceStub(ch),
            pipelines_pb2_grpc.PipelinesServiceStub(ch),
            service,
            nats_server,
            catalog=catalog_pb2_grpc.CatalogServiceStub(ch),
            quotes=quotes_pb2_grpc.QuotesServiceStub(ch),
        )
        await ch.close()
