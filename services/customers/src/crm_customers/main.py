"""Wiring of the customers service: settings, gRPC servicer, event consumers, migrations."""

from __future__ import annotations

from pathlib import Path

from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm_customers.db import messaging
from crm_customers.grpc_api import CustomersServicer
from crm_customers.handlers import subscribe_handlers
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class CustomersSettings(ServiceSettings):
    service_name: str = "customers"


async def setup(service: Service) -> None:
    service.grpc.add(
        customers_pb2_grpc.add_CustomersServiceServicer_to_server,
        CustomersServicer(service.db),
        customers_pb2.DESCRIPTOR.services_by_name["CustomersService"].full_name,
    )
    subscribe_handlers(service.bus)


def main() -> None:
    run_cli(CustomersSettings, messaging, MIGRATIONS_DIR, setup)
