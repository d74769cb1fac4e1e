"""Wiring of the sales service: settings, gRPC servicers, event consumers, migrations."""

from __future__ import annotations

from pathlib import Path

from crm.leads.v1 import events_pb2 as leads_events
from crm.sales.v1 import deals_pb2, deals_pb2_grpc, pipelines_pb2, pipelines_pb2_grpc
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings
from crm_sales.db import messaging
from crm_sales.deal_copy import copy_deals_from_leads
from crm_sales.grpc_api import DealsServicer, PipelinesServicer
from crm_sales.handlers import on_lead_converted, on_leads_merged

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class SalesSettings(ServiceSettings):
    service_name: str = "sales"
    # The leads database to copy pre-sales deals from (the one-off `copy-deals-from-leads` job only).
    legacy_leads_database_url: str = ""


async def setup(service: Service) -> None:
    """Register the gRPC servicers and the consumers of leads' conversions and merges."""
    service.grpc.add(
        deals_pb2_grpc.add_DealsServiceServicer_to_server,
        DealsServicer(service.db),
        deals_pb2.DESCRIPTOR.services_by_name["DealsService"].full_name,
    )
    service.grpc.add(
        pipelines_pb2_grpc.add_PipelinesServiceServicer_to_server,
        PipelinesServicer(service.db),
        pipelines_pb2.DESCRIPTOR.services_by_name["PipelinesService"].full_name,
    )
    service.bus.subscribe(leads_events.LeadConverted, on_lead_converted)
    service.bus.subscribe(leads_events.LeadsMerged, on_leads_merged)


def main() -> None:
    """Entry point: `python -m crm_sales migrate|serve`, and the one-off `copy-deals-from-leads`."""
    run_cli(SalesSettings, messaging, MIGRATIONS_DIR, setup, jobs={"copy-deals-from-leads": copy_deals_from_leads})
