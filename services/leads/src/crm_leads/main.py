"""Wiring of the leads service: settings, gRPC servicer, migrations."""

from __future__ import annotations

from pathlib import Path

from crm.leads.v1 import leads_pb2, leads_pb2_grpc
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings
from crm_leads.db import messaging
from crm_leads.grpc_api import LeadsServicer

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class LeadsSettings(ServiceSettings):
    service_name: str = "leads"


async def setup(service: Service) -> None:
    service.grpc.add(
        leads_pb2_grpc.add_LeadsServiceServicer_to_server,
        LeadsServicer(service.db),
        leads_pb2.DESCRIPTOR.services_by_name["LeadsService"].full_name,
    )


def main() -> None:
    run_cli(LeadsSettings, messaging, MIGRATIONS_DIR, setup)
