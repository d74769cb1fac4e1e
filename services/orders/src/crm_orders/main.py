"""Wiring of the orders service: settings, gRPC servicer, DealClosed consumer, migrations."""

from __future__ import annotations

from crm.orders.v1 import orders_pb2, orders_pb2_grpc
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit.migrations import migrations_dir
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings
from crm_orders.db import messaging
from crm_orders.grpc_api import OrdersServicer
from crm_orders.handlers import on_deal_closed

MIGRATIONS_DIR = migrations_dir(__file__)


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"


async def setup(service: Service) -> None:
    """Register the gRPC servicer and the DealClosed consumer on the service."""
    service.grpc.add(
        orders_pb2_grpc.add_OrdersServiceServicer_to_server,
        OrdersServicer(service.db),
        orders_pb2.DESCRIPTOR.services_by_name["OrdersService"].full_name,
    )
    service.bus.subscribe(sales_events.DealClosed, on_deal_closed)


def main() -> None:
    """Entry point: `python -m crm_orders migrate|serve`."""
    run_cli(OrdersSettings, messaging, MIGRATIONS_DIR, setup)
