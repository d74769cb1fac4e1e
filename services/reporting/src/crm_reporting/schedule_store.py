"""Report schedules in reporting's database: kept, listed, deleted, and the next one due taken
under a row lock (SKIP LOCKED: replicas deliver different schedules, never one twice)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_kit.db import UnitOfWork
from crm_reporting.db import report_schedules, saved_reports

_WITH_NAME = select(report_schedules, saved_reports.c.name.label("report_name")).join(
    saved_reports, saved_reports.c.id == report_schedules.c.saved_report_id
)


async def by_request(uow: UnitOfWork, request_id: str) -> Row[Any] | None:
    return (await uow.conn.execute(_WITH_NAME.where(report_schedules.c.request_id == request_id))).first()


async def count_of(uow: UnitOfWork, owner_id: str) -> int:
    found = select(func.count()).select_from(report_schedules).where(report_schedules.c.owner_id == owner_id)
    return int((await uow.conn.execute(found)).scalar_one())


async def create(uow: UnitOfWork, values: dict[str, Any]) -> Row[Any] | None:
    """Keep it; None when a concurrent request with the same request_id won (read that one)."""
    inserted = await uow.conn.execute(
        pg_insert(report_schedules)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[report_schedules.c.request_id])
        .returning(report_schedules.c.id)
    )
    if inserted.first() is None:
        return None
    uow.audit(
        "reporting.CreateReportSchedule",
        "report_schedule",
        values["id"],
        {"saved_report_id": values["saved_report_id"], "recipients": values["recipients"]},
    )
    return await get(uow, values["id"], None)


async def get(uow: UnitOfWork, schedule_id: str, owner_id: str | None) -> Row[Any] | None:
    """One schedule, its owner's (any when owner_id is None: an admin)."""
    condition = report_schedules.c.owner_id == owner_id if owner_id is not None else true()
    return (await uow.conn.execute(_WITH_NAME.where(report_schedules.c.id == schedule_id, condition))).first()


async def listed(uow: UnitOfWork, owner_id: str | None, saved_report_id: str, limit: int) -> list[Row[Any]]:
    found = _WITH_NAME
    if owner_id is not None:
        found = found.where(report_schedules.c.owner_id == owner_id)
    if saved_report_id:
        found = found.where(report_schedules.c.saved_report_id == saved_report_id)
    ordered = found.order_by(report_schedules.c.created_at.desc(), report_schedules.c.id).limit(limit)
    return list(await uow.conn.execute(ordered))


async def delete(uow: UnitOfWork, schedule_id: str, owner_id: str | None) -> bool:
    condition = report_schedules.c.owner_id == owner_id if owner_id is not None else true()
    deleted = await uow.conn.execute(report_schedules.delete().where(report_schedules.c.id == schedule_id, condition))
    if deleted.rowcount:
        uow.audit("reporting.DeleteReportSchedule", "report_schedule", schedule_id)
    return bool(deleted.rowcount)


async def send_now(uow: UnitOfWork, schedule_id: str, owner_id: str | None, now: datetime) -> Row[Any] | None:
    """Due now (the next delivery round sends it, and then keeps its regular time)."""
    condition = report_schedules.c.owner_id == owner_id if owner_id is not None else true()
    updated = await uow.conn.execute(
        report_schedules.update()
        .where(report_schedules.c.id == schedule_id, condition)
        .values(next_run_at=now)
        .returning(report_schedules.c.id)
    )
    if updated.first() is None:
        return None
    uow.audit("reporting.SendReportScheduleNow", "report_schedule", schedule_id)
    return await get(uow, schedule_id, owner_id)


async def take_due(uow: UnitOfWork, now: datetime) -> Row[Any] | None:
    """The schedule due longest, with its report's name and definition, locked for this
    transaction; one another replica holds is skipped."""
    found = (
        select(report_schedules, saved_reports.c.name.label("report_name"), saved_reports.c.definition)
        .join(saved_reports, saved_reports.c.id == report_schedules.c.saved_report_id)
        .where(report_schedules.c.next_run_at <= now)
        .order_by(report_schedules.c.next_run_at)
        .limit(1)
        .with_for_update(of=report_schedules, skip_locked=True)
    )
    return (await uow.conn.execute(found)).first()


async def delivered(uow: UnitOfWork, schedule_id: str, now: datetime, next_run_at: datetime, error: str) -> None:
    await uow.conn.execute(
        report_schedules.update()
        .where(report_schedules.c.id == schedule_id)
        .values(last_run_at=now, next_run_at=next_run_at, last_error=error[:1000])
    )
