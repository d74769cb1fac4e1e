"""Wiring of the sales service: settings, gRPC servicers, event consumers, migrations."""

from __future__ import annotations

from crm.leads.v1 import events_pb2 as leads_events
from crm.sales.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    deals_pb2,
    deals_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
    quotes_pb2,
    quotes_pb2_grpc,
)
from crm_kit.company import CompanyCalendarSettings
from crm_kit.migrations import migrations_dir
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings
from crm_sales import commands
from crm_sales.catalog.grpc_api import CatalogServicer
from crm_sales.db import messaging
from crm_sales.deal_copy import copy_deals_from_leads
from crm_sales.grpc_api import DealsServicer, PipelinesServicer
from crm_sales.handlers import on_lead_converted, on_leads_merged
from crm_sales.quotes import commands as quote_commands
from crm_sales.quotes.document import CompanyDetails
from crm_sales.quotes.grpc_api import QuoteSettings, QuotesServicer

MIGRATIONS_DIR = migrations_dir(__file__)


class SalesSettings(ServiceSettings, CompanyCalendarSettings):
    service_name: str = "sales"
    # The leads database to copy pre-sales deals from (the one-off `copy-deals-from-leads` job only).
    legacy_leads_database_url: str = ""
    # company_time_zone (CompanyCalendarSettings): a quote's date, the day after its valid_until
    # it expires, and the forecast's months and periods.
    # The seller as printed on quote documents.
    company_name: str = "CRM Demo Ltd."
    company_address: str = ""
    company_tax_id: str = ""
    company_phone: str = ""
    company_email: str = ""
    # How often sent quotes past their valid_until are stored as expired (reads show it at once).
    quote_expiry_interval_seconds: float = 600.0
    # How often the open pipeline's value is read into the metrics (one aggregate per replica).
    pipeline_metrics_interval_seconds: float = 30.0


async def setup(service: Service) -> None:
    """Register the gRPC servicers and the consumers of leads' conversions and merges."""
    settings = service.settings
    assert isinstance(settings, SalesSettings), "the sales service runs with SalesSettings"
    service.grpc.add(
        deals_pb2_grpc.add_DealsServiceServicer_to_server,
        DealsServicer(service.db, time_zone=settings.company_time_zone),
        deals_pb2.DESCRIPTOR.services_by_name["DealsService"].full_name,
    )
    service.grpc.add(
        pipelines_pb2_grpc.add_PipelinesServiceServicer_to_server,
        PipelinesServicer(service.db),
        pipelines_pb2.DESCRIPTOR.services_by_name["PipelinesService"].full_name,
    )
    service.grpc.add(
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server,
        CatalogServicer(service.db),
        catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
    )
    _add_quotes(service)
    service.run_periodically(
        "pipeline_metrics",
        settings.pipeline_metrics_interval_seconds,
        lambda: commands.refresh_pipeline_metrics(service.db),
    )
    service.bus.subscribe(leads_events.LeadConverted, on_lead_converted)
    service.bus.subscribe(leads_events.LeadsMerged, on_leads_merged)


def _add_quotes(service: Service) -> None:
    """QuotesService, with the company's details and calendar, and the sweep storing expiries."""
    settings = service.settings
    assert isinstance(settings, SalesSettings), "the sales service runs with SalesSettings"
    company = CompanyDetails(
        name=settings.company_name,
        address=settings.company_address,
        tax_id=settings.company_tax_id,
        phone=settings.company_phone,
        email=settings.company_email,
    )
    service.grpc.add(
        quotes_pb2_grpc.add_QuotesServiceServicer_to_server,
        QuotesServicer(service.db, QuoteSettings(time_zone=settings.company_time_zone, company=company)),
        quotes_pb2.DESCRIPTOR.services_by_name["QuotesService"].full_name,
    )
    service.run_periodically(
        "quote_expiry",
        settings.quote_expiry_interval_seconds,
        lambda: quote_commands.expire_quotes(service.db, time_zone=settings.company_time_zone),
    )


def main() -> None:
    """Entry point: `python -m crm_sales migrate|serve`, and the one-off `copy-deals-from-leads`."""
    run_cli(SalesSettings, messaging, MIGRATIONS_DIR, setup, jobs={"copy-deals-from-leads": copy_deals_from_leads})
