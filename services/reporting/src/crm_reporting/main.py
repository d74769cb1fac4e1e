"""Wiring of the reporting service: settings, event consumers, gRPC servicer, migrations."""

from __future__ import annotations

import asyncio
from typing import Literal

from crm.reporting.v1 import (
    report_builder_pb2,
    report_builder_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    retention_pb2,
    retention_pb2_grpc,
    targets_pb2,
    targets_pb2_grpc,
)
from crm_kit.company import CompanyCalendarSettings
from crm_kit.migrations import migrations_dir
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings
from crm_reporting import handlers, replica, schedule_api, targets
from crm_reporting.builder_api import ReportBuilderServicer
from crm_reporting.db import messaging
from crm_reporting.grpc_api import ReportingServicer, TargetsServicer, cross_selling, lead_scoring
from crm_reporting.retention_api import RetentionServicer, churn_modelling, scan_risks

MIGRATIONS_DIR = migrations_dir(__file__)


class ReportingSettings(ServiceSettings, CompanyCalendarSettings):
    service_name: str = "reporting"
    # company_time_zone (CompanyCalendarSettings): report periods are the company's local days.
    # Lead scoring: retrained on the first request this long after the last training, from at most
    # this many of the most recent decided leads.
    lead_score_refresh_seconds: float = 600.0
    lead_score_max_leads: int = 100_000
    # Cross-sell rules: relearned on the first request this long after the last, from the products
    # of at most this many of the most recent buyers.
    cross_sell_refresh_seconds: float = 600.0
    cross_sell_max_buyers: int = 200_000
    # The churn model: relearned (two snapshots of every customer's signals) on the first request
    # this long after the last.
    churn_refresh_seconds: float = 3600.0
    # Every customer is scored this often; a changed risk band publishes CustomerAtRisk.
    churn_scan_seconds: float = 3600.0
    # Scheduled reports: the company's mail domains, comma-separated — the only ones a report is
    # e-mailed to (empty: scheduling is refused) — and how often due schedules are looked for.
    report_mail_domains: str = ""
    report_schedule_poll_seconds: float = 10.0
    # The report builder's engine: "duckdb", an embedded copy of the fact tables in report_engine_dir
    # (empty: a temporary directory) within report_engine_memory and report_engine_threads, caught
    # up before each report and every report_engine_sync_seconds (crm_reporting.replica); or
    # "postgresql", reading the facts where they are kept.
    report_engine: Literal["duckdb", "postgresql"] = "duckdb"
    report_engine_dir: str = ""
    report_engine_memory: str = "256MB"
    report_engine_threads: int = 2
    report_engine_sync_seconds: float = 5.0


async def setup(service: Service) -> None:
    settings = service.settings
    assert isinstance(settings, ReportingSettings), "the reporting service runs with ReportingSettings"
    for event, handler in handlers.BY_EVENT.items():
        service.bus.subscribe(event, handler)
    cross_sell = cross_selling(
        service.db,
        refresh_seconds=settings.cross_sell_refresh_seconds,
        max_buyers=settings.cross_sell_max_buyers,
    )
    service.grpc.add(
        reporting_pb2_grpc.add_ReportingServiceServicer_to_server,
        ReportingServicer(
            service.db,
            lead_scoring(
                service.db,
                refresh_seconds=settings.lead_score_refresh_seconds,
                max_leads=settings.lead_score_max_leads,
            ),
            cross_sell,
        ),
        reporting_pb2.DESCRIPTOR.services_by_name["ReportingService"].full_name,
    )
    churn = churn_modelling(service.db, refresh_seconds=settings.churn_refresh_seconds)
    # The first scan one interval after the start: a fresh process learns the churn model from the
    # first request or scan, and a scan at start would learn it before the history is there.
    service.run_periodically(
        "customer-risk-scan",
        settings.churn_scan_seconds,
        lambda: scan_risks(service.db, churn, every_seconds=settings.churn_scan_seconds),
        wait_first=True,
    )
    copy = replica.open_replica(
        service.db,
        settings.report_engine,
        settings.report_engine_dir,
        settings.report_engine_memory,
        settings.report_engine_threads,
    )
    if copy is not None:
        service.run_periodically("report-replica", settings.report_engine_sync_seconds, copy.refresh)
        service.on_shutdown(lambda: asyncio.to_thread(copy.close))
    service.run_periodically(
        "report-schedules",
        settings.report_schedule_poll_seconds,
        lambda: schedule_api.deliver_due(service.db, targets.time_zone(settings.company_time_zone), copy),
    )
    service.grpc.add(
        retention_pb2_grpc.add_RetentionServiceServicer_to_server,
        RetentionServicer(service.db, cross_sell, churn),
        retention_pb2.DESCRIPTOR.services_by_name["RetentionService"].full_name,
    )
    service.grpc.add(
        targets_pb2_grpc.add_TargetsServiceServicer_to_server,
        TargetsServicer(service.db, targets.time_zone(settings.company_time_zone)),
        targets_pb2.DESCRIPTOR.services_by_name["TargetsService"].full_name,
    )
    service.grpc.add(
        report_builder_pb2_grpc.add_ReportBuilderServiceServicer_to_server,
        ReportBuilderServicer(
            service.db,
            targets.time_zone(settings.company_time_zone),
            [d for d in settings.report_mail_domains.split(",") if d.strip()],
            copy,
        ),
        report_builder_pb2.DESCRIPTOR.services_by_name["ReportBuilderService"].full_name,
    )


def main() -> None:
    run_cli(ReportingSettings, messaging, MIGRATIONS_DIR, setup)
