"""The gRPC stubs of every backend, held once per process (created in the app's lifespan).

Every stub is built here, one way: one channel per backend service, and each gRPC service that
backend serves as a stub over that channel (activities, campaigns, imports, duplicates and routing
are served on the leads service's port, deals, pipelines and quotes on the sales service's, targets
on reporting's, promotions on notifications')."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
from fastapi import Request
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crm.admin.v1 import admin_pb2_grpc, audit_pb2_grpc
from crm.customers.v1 import customers_pb2_grpc
from crm.leads.v1 import (
    activities_pb2_grpc,
    campaigns_pb2_grpc,
    duplicates_pb2_grpc,
    imports_pb2_grpc,
    leads_pb2_grpc,
    routing_pb2_grpc,
)
from crm.notifications.v1 import notifications_pb2_grpc, promotions_pb2_grpc
from crm.orders.v1 import orders_pb2_grpc
from crm.reporting.v1 import report_builder_pb2_grpc, reporting_pb2_grpc, retention_pb2_grpc, targets_pb2_grpc
from crm.sales.v1 import catalog_pb2_grpc, deals_pb2_grpc, pipelines_pb2_grpc, quotes_pb2_grpc
from crm.support.v1 import support_pb2_grpc
from crm_gateway.settings import GatewaySettings
from crm_kit.grpc_client import channel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendClients:
    """One channel per backend and the stubs over it."""

    leads: leads_pb2_grpc.LeadsServiceStub
    activities: activities_pb2_grpc.ActivitiesServiceStub
    campaigns: campaigns_pb2_grpc.CampaignsServiceStub
    lead_imports: imports_pb2_grpc.LeadImportsServiceStub
    duplicates: duplicates_pb2_grpc.DuplicatesServiceStub
    routing: routing_pb2_grpc.RoutingServiceStub
    deals: deals_pb2_grpc.DealsServiceStub
    pipelines: pipelines_pb2_grpc.PipelinesServiceStub
    catalog: catalog_pb2_grpc.CatalogServiceStub
    quotes: quotes_pb2_grpc.QuotesServiceStub
    customers: customers_pb2_grpc.CustomersServiceStub
    orders: orders_pb2_grpc.OrdersServiceStub
    support: support_pb2_grpc.SupportServiceStub
    notifications: notifications_pb2_grpc.NotificationsServiceStub
    promotions: promotions_pb2_grpc.PromotionsServiceStub
    reporting: reporting_pb2_grpc.ReportingServiceStub
    targets: targets_pb2_grpc.TargetsServiceStub
    retention: retention_pb2_grpc.RetentionServiceStub
    report_builder: report_builder_pb2_grpc.ReportBuilderServiceStub
    # Every backend's audit log (the chassis serves AuditService on each), by service name.
    audit: dict[str, audit_pb2_grpc.AuditServiceStub]
    # And every backend's dead letters (the chassis serves DeadLetterService on each), by service name.
    dead_letters: dict[str, admin_pb2_grpc.DeadLetterServiceStub]
    channels: dict[str, grpc.aio.Channel]

    @classmethod
    def connect(cls, settings: GatewaySettings) -> BackendClients:
        """Open the channels (lazily connecting) with the chassis' deadline and trace propagation."""
        addresses = {
            "leads": settings.leads_addr,
            "sales": settings.sales_addr,
            "customers": settings.customers_addr,
            "orders": settings.orders_addr,
            "support": settings.support_addr,
            "notifications": settings.notifications_addr,
            "reporting": settings.reporting_addr,
        }
        channels = {
            name: channel(
                addr,
                default_timeout=settings.grpc_client_timeout_seconds,
                tls=settings.grpc_tls(),
                max_message_bytes=settings.grpc_max_message_bytes,
            )
            for name, addr in addresses.items()
        }
        leads = channels["leads"]
        return cls(
            leads=leads_pb2_grpc.LeadsServiceStub(leads),
            activities=activities_pb2_grpc.ActivitiesServiceStub(leads),
            campaigns=campaigns_pb2_grpc.CampaignsServiceStub(leads),
            lead_imports=imports_pb2_grpc.LeadImportsServiceStub(leads),
            duplicates=duplicates_pb2_grpc.DuplicatesServiceStub(leads),
            routing=routing_pb2_grpc.RoutingServiceStub(leads),
            deals=deals_pb2_grpc.DealsServiceStub(channels["sales"]),
            pipelines=pipelines_pb2_grpc.PipelinesServiceStub(channels["sales"]),
            catalog=catalog_pb2_grpc.CatalogServiceStub(channels["sales"]),
            quotes=quotes_pb2_grpc.QuotesServiceStub(channels["sales"]),
            customers=customers_pb2_grpc.CustomersServiceStub(channels["customers"]),
            orders=orders_pb2_grpc.OrdersServiceStub(channels["orders"]),
            support=support_pb2_grpc.SupportServiceStub(channels["support"]),
            notifications=notifications_pb2_grpc.NotificationsServiceStub(channels["notifications"]),
            promotions=promotions_pb2_grpc.PromotionsServiceStub(channels["notifications"]),
            reporting=reporting_pb2_grpc.ReportingServiceStub(channels["reporting"]),
            targets=targets_pb2_grpc.TargetsServiceStub(channels["reporting"]),
            retention=retention_pb2_grpc.RetentionServiceStub(channels["reporting"]),
            report_builder=report_builder_pb2_grpc.ReportBuilderServiceStub(channels["reporting"]),
            audit={name: audit_pb2_grpc.AuditServiceStub(ch) for name, ch in channels.items()},
            dead_letters={name: admin_pb2_grpc.DeadLetterServiceStub(ch) for name, ch in channels.items()},
            channels=channels,
        )

    async def not_ready(self, wait_seconds: float) -> list[str]:
        """Names of the backends whose gRPC health (service "") is not SERVING, in a stable order."""
        names = list(self.channels)
        results = await asyncio.gather(*(self._serving(name, wait_seconds) for name in names))
        return [name for name, serving in zip(names, results, strict=True) if not serving]

    async def _serving(self, name: str, wait_seconds: float) -> bool:
        stub = health_pb2_grpc.HealthStub(self.channels[name])
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=wait_seconds)
        except grpc.aio.AioRpcError as exc:
            log.info("backend not ready", extra={"backend": name, "grpc_code": exc.code().name})
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await asyncio.gather(*(ch.close() for ch in self.channels.values()))


async def get_clients(request: Request) -> BackendClients:
    """FastAPI dependency: the holder the lifespan put on app.state."""
    clients: BackendClients = request.app.state.clients
    return clients
