"""Reading activities: what an activity is logged against, one activity, a record's timeline and
open tasks with their current owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, select

from crm_kit.db import UnitOfWork
from crm_kit.errors import AlreadyExists, FailedPrecondition, NotFound
from crm_kit.pagination import keyset_page
from crm_leads.activities.domain import ActivityKind
from crm_leads.db import activities, lead_conversions, leads, reps
from crm_leads.errors import lead_not_found

# A merged lead points at its survivor, which may have been merged in turn; a loop is a bug.
_MAX_MERGE_HOPS = 10


@dataclass(frozen=True)
class Target:
    """What an activity is logged against: the lead (always), its deal (optional), and whose it is."""

    lead_id: str
    deal_id: str
    rep_id: str
    team_id: str


def _activity_not_found(activity_id: str) -> NotFound:
    return NotFound(
        f"activity {activity_id} not found", reason="ACTIVITY_NOT_FOUND", metadata={"activity_id": activity_id}
    )


async def _deal_target(uow: UnitOfWork, deal_id: str) -> Target:
    row = (
        await uow.conn.execute(
            select(lead_conversions.c.lead_id, lead_conversions.c.owner_rep_id, leads.c.team_id)
            .join(leads, leads.c.id == lead_conversions.c.lead_id)
            .where(lead_conversions.c.deal_id == deal_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"deal {deal_id} not found", reason="DEAL_NOT_FOUND", metadata={"deal_id": deal_id})
    return Target(lead_id=row.lead_id, deal_id=deal_id, rep_id=row.owner_rep_id or "", team_id=row.team_id or "")


async def resolve_target(uow: UnitOfWork, *, lead_id: str = "", deal_id: str = "") -> Target:
    """The lead (or deal and its lead) an activity is about; NotFound when it does not exist. A lead
    merged into another hands its new activities to the survivor."""
    if deal_id:
        return await _deal_target(uow, deal_id)
    asked = lead_id
    for _ in range(_MAX_MERGE_HOPS):
        row = (
            await uow.conn.execute(
                select(leads.c.rep_id, leads.c.team_id, leads.c.merged_into_id).where(leads.c.id == lead_id)
            )
        ).first()
        if row is None:
            raise lead_not_found(asked)
        if not row.merged_into_id:
            return Target(lead_id=lead_id, deal_id="", rep_id=row.rep_id or "", team_id=row.team_id or "")
        lead_id = row.merged_into_id
    raise FailedPrecondition(f"lead {asked} was merged too many times", reason="LEAD_MERGE_CHAIN")


async def find_by_request_id(uow: UnitOfWork, request_id: str) -> Any | None:
    return (await uow.conn.execute(select(activities).where(activities.c.request_id == request_id))).first()


def check_replay(row: Any, target: Target) -> Any:
    """The activity a repeated request_id answers with — only on the same lead or deal: a request_id
    reused (or guessed) elsewhere must not read an activity of a record the caller may not see."""
    if row.lead_id != target.lead_id or (row.deal_id or "") != target.deal_id:
        raise AlreadyExists("request_id was already used for another record", reason="REQUEST_ID_IN_USE")
    return row


async def get_activity(uow: UnitOfWork, activity_id: str) -> Any:
    row = (await uow.conn.execute(select(activities).where(activities.c.id == activity_id))).first()
    if row is None:
        raise _activity_not_found(activity_id)
    return row


async def list_activities(
    uow: UnitOfWork, target: Target, *, limit: int, after: tuple[Any, ...] | None
) -> tuple[list[Any], list[Any] | None]:
    """A deal's activities, or all of a lead's (its deal's included), newest first."""
    query = select(activities)
    if target.deal_id:
        query = query.where(activities.c.deal_id == target.deal_id)
    else:
        query = query.where(activities.c.lead_id == target.lead_id)
    return await keyset_page(
        uow.conn, query, activities.c.occurred_at, activities.c.id, limit=limit, after=after, descending=True
    )


# Whose a task is now: the deal's owner for a deal's task, else the lead's rep; and the lead's team —
# the same owners the gateway's record rules check. Read when listing, so open tasks follow a
# reassigned lead and a merge (which moves activities to the surviving lead).
_OWNER_REP = case((activities.c.deal_id.is_not(None), lead_conversions.c.owner_rep_id), else_=leads.c.rep_id)


def open_tasks_with_owner() -> Select[Any]:
    columns = [c for c in activities.c if c.name not in ("rep_id", "team_id")]
    return (
        select(*columns, _OWNER_REP.label("rep_id"), leads.c.team_id.label("team_id"))
        .select_from(
            activities.join(leads, leads.c.id == activities.c.lead_id).outerjoin(
                lead_conversions, lead_conversions.c.deal_id == activities.c.deal_id
            )
        )
        .where(activities.c.kind == ActivityKind.TASK.value, activities.c.completed_at.is_(None))
    )


async def list_open_tasks(
    uow: UnitOfWork, *, rep_id: str, team_id: str, limit: int, after: tuple[Any, ...] | None
) -> tuple[list[Any], list[Any] | None]:
    """Open tasks, soonest due first (overdue ones lead the list), of their current owner."""
    query = open_tasks_with_owner()
    if rep_id:
        query = query.where(_OWNER_REP == rep_id)
    if team_id:
        query = query.where(leads.c.team_id == team_id)
    return await keyset_page(uow.conn, query, activities.c.due_at, activities.c.id, limit=limit, after=after)


async def rep_name(uow: UnitOfWork, rep_id: str) -> str:
    """A rep's name ("" when rep_id is no rep, e.g. an admin's subject)."""
    return (await uow.conn.execute(select(reps.c.name).where(reps.c.id == rep_id))).scalar() or ""
