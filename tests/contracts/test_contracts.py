"""The contracts: committed generated code is fresh, and buf STANDARD lint is clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


def test_generated_code_matches_the_protos() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_standard_is_clean() -> None:
    npx = shutil.which("npx")
    assert npx, "npx (Node.js) is needed to run buf; .ci/run installs it"
    result = subprocess.run(
        [npx, "--yes", "@bufbuild/buf", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_event_has_its_subject() -> None:
    from crm.leads.v1 import events_pb2 as leads_events
    from crm.orders.v1 import events_pb2 as orders_events
    from crm.reporting.v1 import events_pb2 as reporting_events
    from crm.sales.v1 import events_pb2 as sales_events
    from crm_kit.events import subject_for

    assert subject_for(leads_events.LeadCaptured) == "crm.leads.lead_captured"
    assert subject_for(leads_events.LeadConverted) == "crm.leads.lead_converted"
    assert subject_for(sales_events.DealClosed) == "crm.sales.deal_closed"
    assert subject_for(orders_events.OrderShipped) == "crm.orders.order_shipped"
    assert subject_for(reporting_events.CustomerAtRisk) == "crm.reporting.customer_at_risk"
