"""Wiring of the leads service: settings, gRPC servicer, migrations."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

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
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings
from crm_leads import activities, sla
from crm_leads.activities_grpc import ActivitiesServicer
from crm_leads.campaigns import CampaignsServicer
from crm_leads.db import messaging
from crm_leads.duplicates_api import DuplicatesServicer
from crm_leads.grpc_api import LeadsServicer
from crm_leads.imports import ImportLimits, LeadImportsServicer, resume_imports
from crm_leads.routing_api import RoutingServicer

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class LeadsSettings(ServiceSettings):
    service_name: str = "leads"
    # How often open tasks whose reminder time passed are looked for (TaskReminderDue).
    task_reminder_interval_seconds: float = 10.0
    # How often leads past their first-response deadline are looked for, and how many per run.
    sla_scan_interval_seconds: float = 5.0
    sla_scan_batch_size: int = 100
    # CSV lead imports: most rows per file, rows per staging commit / capture transaction, how
    # long a worker owns an import between batches, and how often stalled imports are resumed.
    import_max_rows: int = Field(default=1_000_000, ge=1)
    import_batch_rows: int = Field(default=300, ge=1, le=5_000)
    import_lease_seconds: float = Field(default=60.0, gt=0)
    # How long an upload waits for its rows to be routed before answering (the rest goes on in
    # the background); 0 answers as soon as the file is validated.
    import_wait_seconds: float = Field(default=20.0, ge=0, le=600)
    import_resume_interval_seconds: float = Field(default=10.0, gt=0)


async def setup(service: Service) -> None:
    settings = service.settings
    assert isinstance(settings, LeadsSettings), "the leads service runs with LeadsSettings"
    service.grpc.add(
        leads_pb2_grpc.add_LeadsServiceServicer_to_server,
        LeadsServicer(service.db),
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
        lambda: activities.send_due_reminders(service.db),
    )
    service.grpc.add(
        routing_pb2_grpc.add_RoutingServiceServicer_to_server,
        RoutingServicer(service.db),
        routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name,
    )
    service.run_periodically(
        "sla_breaches",
        settings.sla_scan_interval_seconds,
        lambda: sla.scan_breaches(service.db, batch_size=settings.sla_scan_batch_size),
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
        lambda: resume_imports(service.db, import_limits),
    )


def main() -> None:
    run_cli(LeadsSettings, messaging, MIGRATIONS_DIR, setup)
