"""Wiring of the leads service: each feature's servicer and periodic jobs, migrations."""

from __future__ import annotations

import logging

from crm.leads.v1 import (
    activities_pb2,
    activities_pb2_grpc,
    campaigns_pb2,
    campaigns_pb2_grpc,
    duplicates_pb2,
    duplicates_pb2_grpc,
    imports_pb2,
    imports_pb2_grpc,
    leads_pb2,
    leads_pb2_grpc,
    routing_pb2,
    routing_pb2_grpc,
)
from crm_kit.db import Database
from crm_kit.migrations import migrations_dir
from crm_kit.service import Service, run_cli
from crm_leads.activities import commands as activity_commands
from crm_leads.activities.grpc_api import ActivitiesServicer
from crm_leads.campaigns.grpc_api import CampaignsServicer
from crm_leads.db import messaging
from crm_leads.duplicates.grpc_api import DuplicatesServicer
from crm_leads.imports import commands as import_commands
from crm_leads.imports.domain import ImportLimits
from crm_leads.imports.grpc_api import LeadImportsServicer
from crm_leads.leads import commands as lead_commands
from crm_leads.leads.grpc_api import LeadsServicer
from crm_leads.routing import commands as routing_commands
from crm_leads.routing.grpc_api import RoutingServicer
from crm_leads.settings import LeadsSettings
from crm_leads.web_forms.grpc_api import WebFormKeyRpcs

MIGRATIONS_DIR = migrations_dir(__file__)
log = logging.getLogger(__name__)


class LeadsServiceServicer(WebFormKeyRpcs, LeadsServicer):
    """LeadsService as the proto declares it: the leads feature's RPCs and the web forms feature's
    key RPCs (see crm_leads.web_forms.grpc_api for why they are composed here)."""


async def setup(service: Service) -> None:
    settings = service.settings
    assert isinstance(settings, LeadsSettings), "the leads service runs with LeadsSettings"
    service.grpc.add(
        leads_pb2_grpc.add_LeadsServiceServicer_to_server,
        LeadsServiceServicer(service.db),
        leads_pb2.DESCRIPTOR.services_by_name["LeadsService"].full_name,
    )
    service.grpc.add(
        duplicates_pb2_grpc.add_DuplicatesServiceServicer_to_server,
        DuplicatesServicer(service.db),
        duplicates_pb2.DESCRIPTOR.services_by_name["DuplicatesService"].full_name,
    )
    service.grpc.add(
        activities_pb2_grpc.add_ActivitiesServiceServicer_to_server,
        ActivitiesServicer(service.db),
        activities_pb2.DESCRIPTOR.services_by_name["ActivitiesService"].full_name,
    )
    service.run_periodically(
        "task_reminders",
        settings.task_reminder_interval_seconds,
        lambda: activity_commands.send_due_reminders(service.db),
    )
    service.grpc.add(
        routing_pb2_grpc.add_RoutingServiceServicer_to_server,
        RoutingServicer(service.db),
        routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name,
    )
    service.run_periodically(
        "sla_breaches",
        settings.sla_scan_interval_seconds,
        lambda: routing_commands.scan_breaches(service.db, batch_size=settings.sla_scan_batch_size),
    )
    # Sources, campaigns and CSV imports.
    service.grpc.add(
        campaigns_pb2_grpc.add_CampaignsServiceServicer_to_server,
        CampaignsServicer(service.db),
        campaigns_pb2.DESCRIPTOR.services_by_name["CampaignsService"].full_name,
    )
    import_limits = ImportLimits(
        max_rows=settings.import_max_rows,
        batch_rows=settings.import_batch_rows,
        lease_seconds=settings.import_lease_seconds,
        wait_seconds=settings.import_wait_seconds,
    )
    service.grpc.add(
        imports_pb2_grpc.add_LeadImportsServiceServicer_to_server,
        LeadImportsServicer(service.db, import_limits),
        imports_pb2.DESCRIPTOR.services_by_name["LeadImportsService"].full_name,
    )
    service.run_periodically(
        "lead_import_resume",
        settings.import_resume_interval_seconds,
        lambda: import_commands.resume_imports(service.db, import_limits),
    )


async def record_legacy_conversions(settings: LeadsSettings) -> None:
    """The `record-legacy-conversions` job (docs/operations.md, "Upgrading to the sales service")."""
    db = Database(settings.database_url, messaging, source=f"/crm/{settings.service_name}", pool_size=1)
    try:
        async with db.unit_of_work() as uow:
            recorded = await lead_commands.record_legacy_conversions(uow)
        log.info("legacy conversions recorded", extra={"recorded": recorded})
    finally:
        await db.dispose()


def main() -> None:
    """Entry point: `python -m crm_leads migrate|serve|record-legacy-conversions`."""
    run_cli(
        LeadsSettings,
        messaging,
        MIGRATIONS_DIR,
        setup,
        jobs={"record-legacy-conversions": record_legacy_conversions},
    )
