"""Reads of sales: a deal with its items and its stage, its stage history, pipelines and their
stages, the lost reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_sales import domain
from crm_sales.db import deal_items, deal_stage_history, deals, lost_reasons, pipeline_stages, pipelines


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


async def get_deal(uow: UnitOfWork, deal_id: str) -> DealView:
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
