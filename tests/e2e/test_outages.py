"""One outage is not a full outage (issue 21): reporting's database taken away (no connection
allowed, every open one cut) makes reporting unready, yet the gateway stays ready and says which
backend is down, a lead is captured, a report is a quick 503 problem+json — and when the database
returns, reporting serves again and counts the lead captured during the outage (nothing lost)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from crm_devstack.stack import Stack, grpc_serving
from crm_kit.testing import eventually

from .test_promotions import unique_phone
from .test_report_builder import campaign

pytestmark = pytest.mark.e2e


def leads_report(name: str) -> dict[str, Any]:
    return {"measures": ["leads"], "dimensions": [], "filters": {"campaign": [name]}, "range": "last_7_days"}


async def test_reportings_database_away_leaves_capture_answering(api: httpx.AsyncClient, stack: Stack) -> None:
    name = await campaign(api, "radio")
    before = await api.post("/api/v1/reports/builder/run", json=leads_report(name))
    assert before.status_code == 200, before.text
    assert before.json()["total"]["values"] == [0]
    admin = await asyncpg.connect(stack.postgres.dsn())
    try:
        await admin.execute("ALTER DATABASE reporting ALLOW_CONNECTIONS false")
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'reporting'")

        async def reporting_unready() -> bool | None:
            return True if not await grpc_serving(stack.grpc_address("reporting")) else None

        await eventually(reporting_unready, timeout=30)

        async def gateway_names_it() -> dict[str, Any] | None:
            ready = await api.get("/readyz")
            assert ready.status_code == 200, ready.text
            return ready.json() if "reporting" in ready.json()["unavailable"] else None

        assert (await eventually(gateway_names_it, timeout=15))["status"] == "ready"
        person = {"full_name": "ליד בזמן תקלה", "phone_number": unique_phone("+97252"), "source": "radio"}
        captured = await api.post("/api/v1/leads", json=person | {"campaign": name})
        assert captured.status_code == 201, captured.text
        assert (await api.get(f"/api/v1/leads/{captured.json()['id']}")).status_code == 200
        report = await api.post("/api/v1/reports/builder/run", json=leads_report(name))
        assert report.status_code == 503, report.text
        assert report.headers["content-type"] == "application/problem+json"
    finally:
        await admin.execute("ALTER DATABASE reporting ALLOW_CONNECTIONS true")
        await admin.close()

    async def reporting_back() -> bool | None:
        return True if await grpc_serving(stack.grpc_address("reporting")) else None

    await eventually(reporting_back, timeout=60)

    async def counted() -> list[float] | None:
        found = await api.post("/api/v1/reports/builder/run", json=leads_report(name))
        return [1] if found.status_code == 200 and found.json()["total"]["values"] == [1] else None

    assert await eventually(counted, timeout=60) == [1]
