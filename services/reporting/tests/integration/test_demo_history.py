"""The seeded demo year through reporting's own handlers: every source reports leads by month, the
speed-to-lead curve pays for a fast answer, buyers get value segments, the churn model learns from
the history, and loading twice changes nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from crm.reporting.v1 import report_builder_pb2 as pb
from crm_kit.db import Database
from crm_reporting import churn_model, demo_history, funnel_store, retention_api
from crm_reporting.builder_api import ReportBuilderServicer
from crm_reporting.db import deal_facts, lead_facts, ticket_facts

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


async def count(db: Database, table: object) -> int:
    async with db.unit_of_work() as uow:
        return int((await uow.conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_a_year_of_history_fills_every_report_once(db: Database) -> None:
    started = time.perf_counter()
    handled = await demo_history.load(db, 1500, NOW)
    print(f"\n1500 customers: {handled} events in {time.perf_counter() - started:.1f} s")
    assert handled > 2000
    assert await demo_history.load(db, 1500, NOW) == 0  # once
    assert await count(db, lead_facts) == 1500
    assert await count(db, deal_facts) > 150 and await count(db, ticket_facts) > 20

    servicer = ReportBuilderServicer(db, ZoneInfo("Asia/Jerusalem"))
    by_source = await servicer.RunReport(
        pb.RunReportRequest(
            definition=pb.ReportDefinition(
                measures=["leads", "deals_won", "revenue"],
                dimensions=["source"],
                start_date="2025-12-01",
                end_date="2026-12-07",
            ),
            locale="en",
        ),
        None,  # type: ignore[arg-type]
    )
    rows = {r.keys[0]: [v.value for v in r.values] for r in by_source.result.rows}
    assert set(rows) == {s for s, _, _, _ in demo_history.SOURCES}
    assert all(leads > 0 for leads, _, _ in rows.values()) and sum(won for _, won, _ in rows.values()) > 50

    # A fast first answer pays: the speed-to-lead curve's first band wins more than a day's.
    async with db.unit_of_work() as uow:
        bands = {b.band: b for b in await funnel_store.speed_to_lead(uow, None, None, rep_id="", team_id="")}
    fast, slow = bands["under_5_minutes"].win_rate, bands["over_a_day"].win_rate
    assert fast is not None and slow is not None and fast > slow, (fast, slow)

    # The churn model learns from the history (its minimum-history rule holds) and validates on
    # the later window well above chance; the planted signal is strong, the figure is synthetic.
    _, model = await retention_api.churn_modelling(db, refresh_seconds=3600).current()
    assert isinstance(model, churn_model.ChurnModel), model
    assert model.validation.auc > 0.7
