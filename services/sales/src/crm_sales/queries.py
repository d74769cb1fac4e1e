"""Reads of sales: a deal with its items and its stage, its stage history, pipelines and their
stages, the lost reasons; deal lists, a pipeline's board, the forecast and the open pipeline's
value for the metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    DateTime,
    Select,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    true,
    tuple_,
    union_all,
)

from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_sales import domain
from crm_sales.db import (
    deal_items,
    deal_stage_history,
    deal_stage_totals,
    deals,
    lost_reasons,
    pipeline_stages,
    pipelines,
)
from crm_sales.pipelines import ForecastCategory


@dataclass
class DealView:
    # The deal's row with its stage's `probability`.
    row: Any
    items: list[Any] = field(default_factory=list)


@dataclass
class PipelineView:
    row: Any
    stages: list[Any] = field(default_factory=list)


def deal_not_found(deal_id: str) -> NotFound:
    return NotFound(f"deal {deal_id} not found", reason="DEAL_NOT_FOUND", metadata={"deal_id": deal_id})


def pipeline_not_found(pipeline_id: str) -> NotFound:
    return NotFound(
        f"pipeline {pipeline_id} not found", reason="PIPELINE_NOT_FOUND", metadata={"pipeline_id": pipeline_id}
    )


async def get_deal(uow: UnitOfWork, deal_id: str, *, share: bool = False) -> DealView:
    """The deal with its items; `share` holds its row FOR SHARE until the commit (a change that
    depends on the deal staying as read, e.g. open, while it does not change the deal itself)."""
    if share:
        # Locked on its own: a locking join that waited for a concurrent change is rechecked on the
        # changed row against the old stage row, and a deal a close moved to another stage would
        # read as missing. The read below then sees the committed change.
        await uow.conn.execute(select(deals.c.id).where(deals.c.id == deal_id).with_for_update(read=True))
    query = (
        select(deals, pipeline_stages.c.probability)
        .join(pipeline_stages, pipeline_stages.c.id == deals.c.stage_id)
        .where(deals.c.id == deal_id)
    )
    row = (await uow.conn.execute(query)).first()
    if row is None:
        raise deal_not_found(deal_id)
    items = (
        await uow.conn.execute(
            select(deal_items).where(deal_items.c.deal_id == deal_id).order_by(deal_items.c.position)
        )
    ).all()
    return DealView(row=row, items=list(items))


def stage_of(row: Any) -> domain.Stage:
    """A pipeline_stages row as the deal rules see it."""
    return domain.Stage(
        id=row.id,
        pipeline_id=row.pipeline_id,
        name=row.name,
        outcome=domain.StageOutcome(row.outcome),
        required_fields=tuple(row.required_fields),
    )


async def get_stage(uow: UnitOfWork, stage_id: str) -> domain.Stage | None:
    row = (await uow.conn.execute(select(pipeline_stages).where(pipeline_stages.c.id == stage_id))).first()
    return stage_of(row) if row else None


async def closing_stage(uow: UnitOfWork, pipeline_id: str, outcome: domain.StageOutcome) -> str:
    """The id of the pipeline's won or lost stage (each pipeline has exactly one of each)."""
    query = select(pipeline_stages.c.id).where(
        pipeline_stages.c.pipeline_id == pipeline_id, pipeline_stages.c.outcome == outcome.value
    )
    return str((await uow.conn.execute(query)).scalar_one())


async def first_open_stage(uow: UnitOfWork, pipeline_id: str) -> str:
    query = (
        select(pipeline_stages.c.id)
        .where(pipeline_stages.c.pipeline_id == pipeline_id, pipeline_stages.c.outcome == domain.StageOutcome.OPEN)
        .order_by(pipeline_stages.c.position)
        .limit(1)
    )
    return str((await uow.conn.execute(query)).scalar_one())


async def stage_history(uow: UnitOfWork, deal_id: str) -> list[Any]:
    if (await uow.conn.execute(select(deals.c.id).where(deals.c.id == deal_id))).first() is None:
        raise deal_not_found(deal_id)
    query = select(deal_stage_history).where(deal_stage_history.c.deal_id == deal_id).order_by(deal_stage_history.c.id)
    return list((await uow.conn.execute(query)).all())


async def _stages(uow: UnitOfWork, pipeline_ids: list[str]) -> dict[str, list[Any]]:
    query = select(pipeline_stages).where(pipeline_stages.c.pipeline_id.in_(pipeline_ids))
    by_pipeline: dict[str, list[Any]] = {pipeline_id: [] for pipeline_id in pipeline_ids}
    for row in await uow.conn.execute(query.order_by(pipeline_stages.c.position)):
        by_pipeline[row.pipeline_id].append(row)
    return by_pipeline


async def get_pipeline(uow: UnitOfWork, pipeline_id: str, *, lock: bool = False) -> PipelineView:
    query = select(pipelines).where(pipelines.c.id == pipeline_id)
    row = (await uow.conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise pipeline_not_found(pipeline_id)
    return PipelineView(row=row, stages=(await _stages(uow, [pipeline_id]))[pipeline_id])


async def find_pipeline_by_request_id(uow: UnitOfWork, request_id: str) -> PipelineView | None:
    query = select(pipelines.c.id).where(pipelines.c.request_id == request_id)
    pipeline_id = (await uow.conn.execute(query)).scalar()
    return await get_pipeline(uow, pipeline_id) if pipeline_id else None


async def list_pipelines(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, show_inactive: bool
) -> tuple[list[PipelineView], list[Any] | None]:
    """Pipelines oldest first (the seeded default leads), by keyset (created_at, id)."""
    query = select(pipelines) if show_inactive else select(pipelines).where(pipelines.c.active)
    rows, next_position = await keyset_page(
        uow.conn, query, pipelines.c.created_at, pipelines.c.id, limit=limit, after=after
    )
    stages = await _stages(uow, [r.id for r in rows])
    return [PipelineView(row=r, stages=stages[r.id]) for r in rows], next_position


async def deals_per_stage(uow: UnitOfWork, pipeline_id: str) -> dict[str, int]:
    query = select(deals.c.stage_id, func.count()).where(deals.c.pipeline_id == pipeline_id).group_by(deals.c.stage_id)
    return {stage_id: int(count) for stage_id, count in await uow.conn.execute(query)}


async def list_lost_reasons(uow: UnitOfWork) -> list[Any]:
    return list((await uow.conn.execute(select(lost_reasons).order_by(lost_reasons.c.position))).all())


# ---------------------------------------------------------------- deal lists and the board

# Each order's sort column and whether it runs newest first; the deal id breaks ties, so a keyset
# position (sort value, id) is unique. Every order is served by an index that ends in (sort, id).
_ORDER = {
    domain.DealOrder.EXPECTED_CLOSE: (deals.c.expected_close_sort, False),
    domain.DealOrder.CREATE_TIME_DESC: (deals.c.created_at, True),
    domain.DealOrder.CLOSE_TIME_DESC: (deals.c.closed_at, True),
}
_WON = deals.c.status == domain.DealStatus.WON.value
# What a deal is worth on a board and in the forecast: a won deal's total (what was sold), else
# its amount (what it is expected to bring, or what was lost).
_VALUE = case((_WON, deals.c.total_minor), else_=deals.c.amount_minor)
_VALUE_CURRENCY = case((_WON, deals.c.currency_code), else_=deals.c.amount_currency)


def _contains(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _dated(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    # Ranges run on the sort column (an index range); a deal without a date never matches one.
    return and_(condition, deals.c.expected_close_date.is_not(None))


_FILTERS: list[tuple[str, Callable[[Any], ColumnElement[bool]]]] = [
    ("pipeline_id", lambda v: deals.c.pipeline_id == v),
    ("stage_id", lambda v: deals.c.stage_id == v),
    ("status", lambda v: deals.c.status == v.value),
    ("owner_rep_id", lambda v: deals.c.owner_rep_id == v),
    ("owner_team_id", lambda v: deals.c.owner_team_id == v),
    ("expected_close_from", lambda v: _dated(deals.c.expected_close_sort >= v)),
    ("expected_close_to", lambda v: _dated(deals.c.expected_close_sort <= v)),
    ("amount_currency", lambda v: deals.c.amount_currency == v),
    ("amount_min", lambda v: deals.c.amount_minor >= v),
    ("amount_max", lambda v: deals.c.amount_minor <= v),
    ("close_time_from", lambda v: deals.c.closed_at >= v),
    ("title_contains", lambda v: deals.c.title.ilike(_contains(v), escape="\\")),
]


def _where(f: domain.DealFilter) -> list[ColumnElement[bool]]:
    """The conditions of every filter set (None or "" filters nothing)."""
    return [condition(getattr(f, name)) for name, condition in _FILTERS if getattr(f, name) not in (None, "")]


def _ordered(query: Select[Any], order: domain.DealOrder) -> Select[Any]:
    sort, newest_first = _ORDER[order]
    if order is domain.DealOrder.CLOSE_TIME_DESC:
        query = query.where(deals.c.closed_at.is_not(None))
    return query.order_by(sort.desc(), deals.c.id.desc()) if newest_first else query.order_by(sort, deals.c.id)


def _after(order: domain.DealOrder, position: tuple[Any, str]) -> ColumnElement[bool]:
    """Rows after a keyset position, as one row comparison: PostgreSQL serves `(a, b) > (x, y)`
    with an index range scan on (a, b), where `a > x OR (a = x AND b > y)` would filter a scan
    from the index's start (so a late page would cost what OFFSET does)."""
    sort, newest_first = _ORDER[order]
    key, at = tuple_(sort, deals.c.id), tuple_(*position)
    return key < at if newest_first else key > at


def position_of(row: Any, order: domain.DealOrder) -> tuple[Any, str]:
    """The keyset position of a listed deal's row in `order`."""
    sort, _ = _ORDER[order]
    return getattr(row, sort.key), str(row.id)


async def _with_items(uow: UnitOfWork, rows: Sequence[Any]) -> list[DealView]:
    """The deals with their items, in one query (only won deals have items)."""
    won = [r.id for r in rows if r.status == domain.DealStatus.WON.value]
    items: dict[str, list[Any]] = {}
    if won:
        query = select(deal_items).where(deal_items.c.deal_id.in_(won))
        for item in await uow.conn.execute(query.order_by(deal_items.c.deal_id, deal_items.c.position)):
            items.setdefault(item.deal_id, []).append(item)
    return [DealView(row=r, items=items.get(r.id, [])) for r in rows]


async def list_deals(
    uow: UnitOfWork,
    f: domain.DealFilter,
    order: domain.DealOrder,
    *,
    limit: int,
    after: tuple[Any, str] | None,
) -> tuple[list[DealView], tuple[Any, str] | None]:
    """A page of deals matching `f` in `order` after the keyset position `after`, and the position
    of the next page (None on the last)."""
    query = select(deals, pipeline_stages.c.probability).join(pipeline_stages, pipeline_stages.c.id == deals.c.stage_id)
    query = _ordered(query.where(*_where(f)), order)
    if after is not None:
        query = query.where(_after(order, after))
    rows = list((await uow.conn.execute(query.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return await _with_items(uow, rows), position_of(rows[-1], order) if more else None


@dataclass
class BoardColumn:
    """One stage of a board: its row, its deals' count and sums, its first deals."""

    stage: Any
    order: domain.DealOrder
    # The filter of the stage's deals, which ListDeals continues with the next position.
    filter: domain.DealFilter
    deal_count: int = 0
    # (currency, deals, amount, weighted amount) per currency, by currency code.
    amounts: list[tuple[str, int, int, int]] = field(default_factory=list)
    deals: list[DealView] = field(default_factory=list)
    next_position: tuple[Any, str] | None = None


def _closed(stage: Any) -> bool:
    return bool(stage.outcome != domain.StageOutcome.OPEN.value)


def _board_columns(
    stages: Sequence[Any], owners: domain.DealFilter, close_time_from: datetime
) -> dict[str, BoardColumn]:
    columns: dict[str, BoardColumn] = {}
    for stage in stages:
        closed = _closed(stage)
        f = domain.DealFilter(
            pipeline_id=stage.pipeline_id,
            stage_id=stage.id,
            owner_rep_id=owners.owner_rep_id,
            owner_team_id=owners.owner_team_id,
            close_time_from=close_time_from if closed else None,
        )
        order = domain.DealOrder.CLOSE_TIME_DESC if closed else domain.DealOrder.EXPECTED_CLOSE
        columns[stage.id] = BoardColumn(stage=stage, order=order, filter=f)
    return columns


async def _board_sums(
    uow: UnitOfWork, columns: dict[str, BoardColumn], owners: domain.DealFilter, close_time_from: datetime
) -> list[Any]:
    """(stage, currency, deals, amount) of the board's deals in one statement: the open stages from
    deal_stage_totals (a few rows per stage and owner), the won and lost stages from their deals
    closed since close_time_from (an index range of each stage)."""
    t = deal_stage_totals
    open_ids = [sid for sid, c in columns.items() if not _closed(c.stage)]
    closed_ids = [sid for sid, c in columns.items() if _closed(c.stage)]
    on_totals: list[ColumnElement[bool]] = [t.c.stage_id.in_(open_ids)]
    on_totals += [t.c.owner_rep_id == owners.owner_rep_id] if owners.owner_rep_id else []
    on_totals += [t.c.owner_team_id == owners.owner_team_id] if owners.owner_team_id else []
    open_sums = (
        select(t.c.stage_id, t.c.currency_code.label("currency"), t.c.deals, t.c.amount_minor.label("amount"))
        .where(*on_totals)
        .subquery()
    )
    closed = (
        select(deals.c.stage_id, func.coalesce(_VALUE_CURRENCY, "").label("currency"), _VALUE.label("value"))
        .where(deals.c.stage_id.in_(closed_ids), deals.c.closed_at >= close_time_from, *_where(owners))
        .subquery()
    )
    query = union_all(
        select(
            open_sums.c.stage_id, open_sums.c.currency, func.sum(open_sums.c.deals), func.sum(open_sums.c.amount)
        ).group_by(open_sums.c.stage_id, open_sums.c.currency),
        select(closed.c.stage_id, closed.c.currency, func.count(), func.coalesce(func.sum(closed.c.value), 0)).group_by(
            closed.c.stage_id, closed.c.currency
        ),
    )
    return list((await uow.conn.execute(query)).all())


def _stage_deals(columns: Sequence[BoardColumn], limit: int) -> Select[Any] | CompoundSelect[Any]:
    """The first `limit` deals of each column: one LATERAL per stage (a range scan of the stage's
    index in the column's order), open and closed columns in one statement."""
    parts = []
    for closed in (False, True):
        same = [c for c in columns if _closed(c.stage) == closed]
        if not same:
            continue
        # The columns of a kind share their filter but for the stage, which the LATERAL correlates.
        shared = replace(same[0].filter, pipeline_id="", stage_id="")
        inner = select(deals).where(deals.c.stage_id == pipeline_stages.c.id, *_where(shared))
        stage_deals = _ordered(inner, same[0].order).limit(limit).lateral()
        parts.append(
            select(stage_deals, pipeline_stages.c.probability)
            .select_from(pipeline_stages.join(stage_deals, true()))
            .where(pipeline_stages.c.id.in_([c.stage.id for c in same]))
        )
    return union_all(*parts) if len(parts) > 1 else parts[0]


async def pipeline_board(
    uow: UnitOfWork, pipeline_id: str, owners: domain.DealFilter, *, per_stage: int, close_time_from: datetime
) -> list[BoardColumn]:
    """The board of a pipeline's deals (those of `owners`' rep or team when set): per stage its
    count and sums, and its first `per_stage` deals; the won and lost stages hold the deals closed
    since close_time_from. Five statements whatever the number of stages (the pipeline, its stages,
    the sums, the first deals, their items)."""
    pipeline = await get_pipeline(uow, pipeline_id)
    columns = _board_columns(pipeline.stages, owners, close_time_from)
    for stage_id, currency, deal_count, amount in sorted(await _board_sums(uow, columns, owners, close_time_from)):
        column, count = columns[stage_id], int(deal_count)
        if not count:  # totals of deals that all left the stage
            continue
        column.deal_count += count
        if currency:
            weighted = domain.weighted_minor(int(amount) * column.stage.probability)
            column.amounts.append((currency, count, int(amount), weighted))
    rows = list((await uow.conn.execute(_stage_deals(list(columns.values()), per_stage + 1))).all())
    views = {v.row.id: v for v in await _with_items(uow, rows)}
    for column in columns.values():
        listed = sorted((r for r in rows if r.stage_id == column.stage.id), key=lambda r: position_of(r, column.order))
        if column.order is not domain.DealOrder.EXPECTED_CLOSE:
            listed.reverse()
        column.deals = [views[r.id] for r in listed[:per_stage]]
        if len(listed) > per_stage:
            column.next_position = position_of(listed[per_stage - 1], column.order)
    return list(columns.values())


# ---------------------------------------------------------------- the forecast

_FORECAST_GROUP: dict[domain.ForecastGroup, Callable[[ZoneInfo], ColumnElement[Any]]] = {
    domain.ForecastGroup.OWNER_REP: lambda zone: func.coalesce(deals.c.owner_rep_id, ""),
    domain.ForecastGroup.OWNER_TEAM: lambda zone: func.coalesce(deals.c.owner_team_id, ""),
    domain.ForecastGroup.PIPELINE: lambda zone: deals.c.pipeline_id,
    # An open deal's expected close month (a company day already), a won deal's close month on the
    # company's calendar: a deal won at 00:30 on 1 April in Tel Aviv is an April deal, as in
    # reporting's targets vs actual.
    domain.ForecastGroup.MONTH: lambda zone: func.coalesce(
        func.to_char(
            case(
                (_WON, func.timezone(zone.key, deals.c.closed_at)),
                else_=cast(deals.c.expected_close_date, DateTime),
            ),
            "YYYY-MM",
        ),
        "",
    ),
}


def _in_period(start: date | None, end: date | None, zone: ZoneInfo) -> ColumnElement[bool]:
    """Open deals in non-omitted stages expected to close in the period; won deals closed in it
    (from local midnight of its first day to local midnight after its last, in the company's zone)."""
    counted = pipeline_stages.c.forecast_category != ForecastCategory.OMITTED.value
    opened = [deals.c.status == domain.DealStatus.OPEN.value, counted]
    won = [_WON]
    since, until = domain.period_instants(start, end, zone)
    if start is not None:
        opened.append(_dated(deals.c.expected_close_sort >= start))
    if since is not None:
        won.append(deals.c.closed_at >= since)
    if end is not None:
        opened.append(_dated(deals.c.expected_close_sort <= end))
    if until is not None:
        won.append(deals.c.closed_at < until)
    return or_(and_(*opened), and_(*won))


@dataclass
class ForecastFigures:
    """One group's figures in one currency (amounts in minor units)."""

    group: str
    currency: str
    open_deals: int = 0
    pipeline_amount: int = 0
    # Sum of amount × probability (in percent): divided by 100 once, by domain.weighted_minor.
    weighted: int = 0
    best_case_amount: int = 0
    commit_amount: int = 0
    won_deals: int = 0
    closed_won_amount: int = 0

    def add(self, won: bool, category: str, probability: int, deals: int, amount: int) -> None:
        """Deals of one stage in this group and currency: won, or open in a stage of `category`."""
        if won:
            self.won_deals += deals
            self.closed_won_amount += amount
            return
        self.open_deals += deals
        self.pipeline_amount += amount
        self.weighted += amount * probability
        if category in (ForecastCategory.BEST_CASE, ForecastCategory.COMMIT):
            self.best_case_amount += amount
        if category == ForecastCategory.COMMIT:
            self.commit_amount += amount


async def forecast(
    uow: UnitOfWork,
    group: domain.ForecastGroup,
    f: domain.DealFilter,
    *,
    period_start: date | None,
    period_end: date | None,
    zone: ZoneInfo,
) -> list[ForecastFigures]:
    """Per (group, currency), by group then currency: open deals and their pipeline, weighted, best
    case and commit amounts, won deals and their totals; months and the period are the company's
    (`zone`). One statement sums per (group, currency, stage); the stages' probabilities and
    categories are applied to those few sums here."""
    valued = (
        select(
            _FORECAST_GROUP[group](zone).label("group"),
            func.coalesce(_VALUE_CURRENCY, "").label("currency"),
            deals.c.stage_id,
            _WON.label("won"),
            _VALUE.label("value"),
        )
        .join(pipeline_stages, pipeline_stages.c.id == deals.c.stage_id)
        .where(_in_period(period_start, period_end, zone), *_where(f))
        .subquery()
    )
    v = valued.c
    sums = (
        select(v.group, v.currency, v.stage_id, v.won, func.count().label("deals"), func.sum(v.value).label("amount"))
        .group_by(v.group, v.currency, v.stage_id, v.won)
        .subquery()
    )
    query = select(sums, pipeline_stages.c.probability, pipeline_stages.c.forecast_category).join(
        pipeline_stages, pipeline_stages.c.id == sums.c.stage_id
    )
    figures: dict[tuple[str, str], ForecastFigures] = {}
    for row in await uow.conn.execute(query):
        key = (row.group, row.currency)
        totals = figures.setdefault(key, ForecastFigures(*key))
        totals.add(row.won, row.forecast_category, row.probability, row.deals, int(row.amount or 0))
    return [figures[key] for key in sorted(figures)]


# ---------------------------------------------------------------- the open pipeline's value (metrics)


async def open_stages(uow: UnitOfWork) -> list[Any]:
    """(pipeline id, stage id) of every open stage."""
    query = select(pipeline_stages.c.pipeline_id, pipeline_stages.c.id).where(
        pipeline_stages.c.outcome == domain.StageOutcome.OPEN.value
    )
    return list((await uow.conn.execute(query)).all())


async def open_value(uow: UnitOfWork) -> list[Any]:
    """Per (pipeline, stage, amount currency; "" for deals without an amount): open deals, their
    amounts and the stage's probability, from deal_stage_totals."""
    t = deal_stage_totals
    query = (
        select(
            t.c.pipeline_id,
            t.c.stage_id,
            t.c.currency_code,
            func.sum(t.c.deals).label("deals"),
            func.sum(t.c.amount_minor).label("amount"),
            pipeline_stages.c.probability,
        )
        .join(pipeline_stages, pipeline_stages.c.id == t.c.stage_id)
        .group_by(t.c.pipeline_id, t.c.stage_id, t.c.currency_code, pipeline_stages.c.probability)
    )
    return list((await uow.conn.execute(query)).all())
