"""Wiring of the customers service: settings, gRPC servicer, event consumers, migrations."""

from __future__ import annotations

from pydantic import field_validator

from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm_customers import consent_rules
from crm_customers.db import messaging
from crm_customers.grpc_api import CustomersServicer
from crm_customers.handlers import subscribe_handlers
from crm_kit.migrations import migrations_dir
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings

MIGRATIONS_DIR = migrations_dir(__file__)


class CustomersSettings(ServiceSettings):
    service_name: str = "customers"
    # CRM_CONSENT_RULES: the country whose consent rules hold (IL, IR) or a rules file's path.
    consent_rules: str = "IL"

    @field_validator("consent_rules")
    @classmethod
    def _rules_load(cls, value: str) -> str:
        consent_rules.load(value)
        return value


async def setup(service: Service) -> None:
    settings = service.settings
    if not isinstance(settings, CustomersSettings):
        raise TypeError("the customers service needs CustomersSettings")
    service.grpc.add(
        customers_pb2_grpc.add_CustomersServiceServicer_to_server,
        CustomersServicer(service.db, consent_rules.load(settings.consent_rules)),
        customers_pb2.DESCRIPTOR.services_by_name["CustomersService"].full_name,
    )
    subscribe_handlers(service.bus, consent_rules.load(settings.consent_rules))


def main() -> None:
    run_cli(CustomersSettings, messaging, MIGRATIONS_DIR, setup)
