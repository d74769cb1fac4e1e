"""Wiring of the support service: settings, gRPC servicer, the SLA scan, migrations."""

from __future__ import annotations

from crm.support.v1 import support_pb2, support_pb2_grpc
from crm_kit.migrations import migrations_dir
from crm_kit.objectstore import object_store_from_url
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings
from crm_support import scan
from crm_support.db import messaging
from crm_support.grpc_api import SupportServicer

MIGRATIONS_DIR = migrations_dir(__file__)


class SupportSettings(ServiceSettings):
    service_name: str = "support"
    # How often the SLA scan looks for tickets due a warning, a breach or an escalation. Each pass
    # reads only the tickets due (an index on sla_check_at), so a short interval is cheap.
    sla_scan_interval_seconds: float = 30.0
    # An attachment (at most domain.MAX_ATTACHMENT_BYTES) travels in one message, with room for
    # the rest of the request.
    grpc_max_message_bytes: int = 11 * 1024 * 1024


async def setup(service: Service) -> None:
    """Register the gRPC servicer and the periodic SLA scan on the service."""
    settings = service.settings
    assert isinstance(settings, SupportSettings), "the support service runs with SupportSettings"
    store = (
        object_store_from_url(
            settings.object_store_url,
            access_key_id=settings.object_store_access_key_id,
            secret_access_key=settings.object_store_secret_access_key,
        )
        if settings.object_store_url
        else None
    )
    service.grpc.add(
        support_pb2_grpc.add_SupportServiceServicer_to_server,
        SupportServicer(service.db, store),
        support_pb2.DESCRIPTOR.services_by_name["SupportService"].full_name,
    )
    service.run_periodically("sla_scan", settings.sla_scan_interval_seconds, lambda: scan.scan(service.db))


def main() -> None:
    """Entry point: `python -m crm_support migrate|serve`."""
    run_cli(SupportSettings, messaging, MIGRATIONS_DIR, setup)
