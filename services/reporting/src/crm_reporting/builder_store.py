"""Rows of the report builder (crm_reporting.builder has the vocabulary): one GROUP BY statement per
fact table a report's measures need — by the company's local day when the report is by period,
by the dimension columns, and by currency when it sums money — and the saved reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Row, Table, and_, cast, false, func, or_, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.elements import ColumnElement

from crm_kit.db import UnitOfWork
from crm_reporting import builder
from crm_reporting.db import (
    campaign_facts,
    deal_facts,
    deal_stage_facts,
    lead_facts,
    notification_facts,
    saved_reports,
    ticket_facts,
)

TABLES: dict[str, Table] = {
    "leads": lead_facts,
    "deals": deal_facts,
    "tickets": ticket_facts,
    "stages": deal_stage_facts,
    "messages": notification_facts,
    "campaigns": campaign_facts,
}


def _part(table: Table, part: builder.Part) -> ColumnElement[Any]:
    aggregate: ColumnElement[Any]
    if part.fn == "count":
        counted = func.count(table.c[part.column]) if part.column else func.count()
        aggregate = counted.filter(_when(table, part.when)) if part.when else counted
    else:
        summed = func.sum(table.c[part.column])
        aggregate = func.coalesce(summed.filter(_when(table, part.when)) if part.when else summed, 0)
    return aggregate.label(part.name)


def _when(table: Table, when: str) -> ColumnElement[bool]:
    column = table.c[when.removeprefix("not ")]
    return ~column if when.startswith("not ") else column


async def day_rows(uow: UnitOfWork, query: builder.Query, reach: builder.Reach, zone: ZoneInfo) -> list[builder.DayRow]:
    """Each fact table's parts per local day (when by period), dimension values and currency."""
    found: list[builder.DayRow] = []
    for fact in builder.facts_of(query.measures):
        table = TABLES[fact.name]
        shape = builder.row_shape(fact, query)
        keys: list[ColumnElement[Any]] = []
        if shape.by_day:
            keys.append(cast(func.timezone(zone.key, table.c[fact.time_column]), Date).label("day"))
        keys += [table.c[fact.dimensions[d]] for d in query.dimensions if d != builder.PERIOD]
        if shape.money:
            keys.append(table.c[fact.currency_column])
        statement = (
            select(*keys, *(_part(table, p) for p in shape.parts))
            .where(*_conditions(table, fact, query, reach, zone))
            .limit(builder.MAX_DAY_ROWS + 1)
        )
        if keys:
            statement = statement.group_by(*keys)
        found += builder.day_rows_of(fact, shape, list(await uow.conn.execute(statement)))
    return found


def _conditions(
    table: Table, fact: builder.Fact, query: builder.Query, reach: builder.Reach, zone: ZoneInfo
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if fact.skip_blank:
        conditions.append(table.c[fact.skip_blank] != "")
    if fact.time_column:
        start = datetime.combine(query.start, time(), zone)
        end = datetime.combine(query.end + timedelta(days=1), time(), zone)
        column = table.c[fact.time_column]
        conditions += [column >= start, column < end]
    for name, values in query.filters.items():
        conditions.append(table.c[fact.dimensions[name]].in_(values))
    if reach.rep_id:
        conditions.append(table.c[fact.rep_column] == reach.rep_id)
    if reach.team_id:
        conditions.append(table.c[fact.team_column] == reach.team_id)
    return conditions


# ---------------------------------------------------------------- saved reports


def _visible(user_id: str, roles: Sequence[str], team_id: str) -> ColumnElement[bool]:
    """The owner's, and those shared with one of the caller's roles (of their team, or everyone's);
    an admin's every one."""
    if "admin" in roles:
        return true()
    shared = (
        and_(
            saved_reports.c.shared_roles.overlap(list(roles)),
            or_(saved_reports.c.team_id == "", saved_reports.c.team_id == team_id if team_id else false()),
        )
        if roles
        else false()
    )
    return or_(saved_reports.c.owner_id == user_id if user_id else false(), shared)


async def by_request(uow: UnitOfWork, request_id: str) -> Row[Any] | None:
    found = select(saved_reports).where(saved_reports.c.request_id == request_id)
    return (await uow.conn.execute(found)).first()


async def create(uow: UnitOfWork, values: dict[str, Any]) -> Row[Any] | None:
    """Save it; None when a concurrent save with the same request_id won (read that one instead)."""
    inserted = await uow.conn.execute(
        pg_insert(saved_reports)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[saved_reports.c.request_id])
        .returning(*saved_reports.c)
    )
    row = inserted.first()
    if row is not None:
        uow.audit("reporting.CreateSavedReport", "saved_report", values["id"], {"name": values["name"]})
    return row


async def listed(uow: UnitOfWork, user_id: str, roles: Sequence[str], team_id: str, limit: int) -> list[Row[Any]]:
    found = (
        select(saved_reports)
        .where(_visible(user_id, roles, team_id))
        .order_by(saved_reports.c.created_at.desc(), saved_reports.c.id)
        .limit(limit)
    )
    return list(await uow.conn.execute(found))


async def get(uow: UnitOfWork, report_id: str, user_id: str, roles: Sequence[str], team_id: str) -> Row[Any] | None:
    found = select(saved_reports).where(saved_reports.c.id == report_id, _visible(user_id, roles, team_id))
    return (await uow.conn.execute(found)).first()


async def delete(uow: UnitOfWork, report_id: str, owner_id: str | None) -> bool:
    """Delete one (its owner's, or any when owner_id is None: an admin); whether it was deleted."""
    condition = saved_reports.c.owner_id == owner_id if owner_id is not None else true()
    deleted = await uow.conn.execute(saved_reports.delete().where(saved_reports.c.id == report_id, condition))
    if deleted.rowcount:
        uow.audit("reporting.DeleteSavedReport", "saved_report", report_id)
    return bool(deleted.rowcount)


def today(zone: ZoneInfo) -> date:
    return datetime.now(zone).date()
