"""Activities (application layer): log, list, complete tasks, list open tasks, send reminders.

Logging a call, e-mail, SMS or meeting on a lead whose first response is still NULL stops the
speed-to-lead clock in the same transaction; the histogram is observed after the commit.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, case, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.leads.v1 import events_pb2
from crm_kit import caller
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import AlreadyExists, FailedPrecondition, NotFound
from crm_kit.pagination import keyset_page
from crm_kit.protoconv import to_timestamp
from crm_leads import activity_rules, domain
from crm_leads.activity_rules import ActivityKind, NewActivity
from crm_leads.db import activities, lead_conversions, leads, reps
from crm_leads.metrics import ACTIVITIES_LOGGED, FIRST_RESPONSE_SECONDS, TASK_REMINDERS

_ACTOR_MAX = 200
REMINDER_BATCH = 100
# A merged lead points at its survivor, which may have been merged in turn; a loop is a bug.
_MAX_MERGE_HOPS = 10

# Every source exported from 0, so the first response of each is seen by rate()/increase().
for _source in domain.SOURCES:
    FIRST_RESPONSE_SECONDS.labels(_source)


class RequestIdRace(Exception):
    """Two LogActivity calls with one request_id ran at once; read the winner's activity."""


@dataclass(frozen=True)
class Target:
    """What an activity is logged against: the lead (always), its deal (optional), and whose it is."""

    lead_id: str
    deal_id: str
    rep_id: str
    team_id: str


def _lead_not_found(lead_id: str) -> NotFound:
    return NotFound(f"lead {lead_id} not found", reason="LEAD_NOT_FOUND", metadata={"lead_id": lead_id})


def _activity_not_found(activity_id: str) -> NotFound:
    return NotFound(
        f"activity {activity_id} not found", reason="ACTIVITY_NOT_FOUND", metadata={"activity_id": activity_id}
    )


async def resolve_target(uow: UnitOfWork, *, lead_id: str = "", deal_id: str = "") -> Target:
    """The lead (or deal and its lead) an activity is about; NotFound when it does not exist. A lead
    merged into another hands its new activities to the survivor."""
    if deal_id:
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
    asked = lead_id
    for _ in range(_MAX_MERGE_HOPS):
        row = (
            await uow.conn.execute(
                select(leads.c.rep_id, leads.c.team_id, leads.c.merged_into_id).where(leads.c.id == lead_id)
            )
        ).first()
        if row is None:
            raise _lead_not_found(asked)
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


async def _stop_clock(uow: UnitOfWork, lead_id: str, occurred_at: datetime) -> bool:
    """Set the lead's first_response_at if it is still NULL (one conditional UPDATE: of two
    concurrent responses exactly one stops the clock); True when this one did."""
    stopped = (
        await uow.conn.execute(
            update(leads)
            .where(leads.c.id == lead_id, leads.c.first_response_at.is_(None))
            # Never before the capture: a back-dated call cannot answer faster than the lead came in.
            .values(first_response_at=func.greatest(literal(occurred_at), leads.c.created_at))
            .returning(leads.c.created_at, leads.c.source, leads.c.first_response_at)
        )
    ).first()
    if stopped is None:
        return False
    seconds = max(0.0, (stopped.first_response_at - stopped.created_at).total_seconds())
    uow.after_commit(lambda: FIRST_RESPONSE_SECONDS.labels(stopped.source).observe(seconds))
    return True


async def log_activity(uow: UnitOfWork, target: Target, new: NewActivity, *, request_id: str = "") -> Any:
    """Insert the activity, stop the lead's clock if it is the first response, publish
    ActivityLogged and audit it; raises RequestIdRace when the request_id was taken meanwhile."""
    first_response = new.stops_clock and await _stop_clock(uow, target.lead_id, new.occurred_at)
    who = caller.current()
    actor = ((who.actor if who else "") or caller.UNKNOWN_ACTOR)[:_ACTOR_MAX]
    activity_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    row = (
        await uow.conn.execute(
            pg_insert(activities)
            .values(
                id=activity_id,
                request_id=request_id or None,
                kind=new.kind.value,
                lead_id=target.lead_id,
                deal_id=target.deal_id or None,
                rep_id=target.rep_id or None,
                team_id=target.team_id or None,
                subject=new.subject,
                body=new.body,
                outcome=new.outcome.value if new.outcome else "",
                duration_seconds=int(new.duration.total_seconds()) if new.duration is not None else None,
                start_at=new.start_at,
                end_at=new.end_at,
                due_at=new.due_at,
                remind_at=new.remind_at,
                occurred_at=new.occurred_at,
                actor=actor,
                first_response=first_response,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(activities)
        )
    ).first()
    if row is None:
        raise RequestIdRace(request_id)
    # Who did it, as the timeline shows it: a rep's name, else the actor's subject.
    actor_name = (await uow.conn.execute(select(reps.c.name).where(reps.c.id == actor))).scalar() or ""
    await uow.record_event(
        events_pb2.ActivityLogged(
            activity_id=activity_id,
            lead_id=target.lead_id,
            deal_id=target.deal_id,
            kind=new.kind.value,
            summary=activity_rules.summary(new.kind, new.subject, new.body),
            outcome=row.outcome,
            actor=actor,
            occur_time=to_timestamp(new.occurred_at),
            first_response=first_response,
            duration_seconds=row.duration_seconds or 0,
            actor_name=actor_name,
        ),
        time=now,
    )
    # Never the subject or body (they may name people or numbers): what happened, not what was said.
    details: dict[str, Any] = {"kind": new.kind.value, "lead_id": target.lead_id, "first_response": first_response}
    if target.deal_id:
        details["deal_id"] = target.deal_id
    if row.outcome:
        details["outcome"] = row.outcome
    if new.occurred_at < now - activity_rules.FUTURE_SKEW:
        details["occurred_at"] = new.occurred_at.isoformat()
    uow.audit("leads.LogActivity", "activity", activity_id, details)
    uow.after_commit(ACTIVITIES_LOGGED.labels(new.kind.value).inc)
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


async def complete_task(uow: UnitOfWork, activity_id: str) -> Any:
    """Mark an open task done; FAILED_PRECONDITION for a done task or an activity that is no task."""
    done = (
        await uow.conn.execute(
            update(activities)
            .where(
                activities.c.id == activity_id,
                activities.c.kind == ActivityKind.TASK.value,
                activities.c.completed_at.is_(None),
            )
            .values(completed_at=datetime.now(UTC))
            .returning(activities)
        )
    ).first()
    if done is None:
        row = await get_activity(uow, activity_id)
        if row.kind != ActivityKind.TASK.value:
            raise FailedPrecondition(
                f"activity {activity_id} is a {row.kind}, not a task",
                reason="NOT_A_TASK",
                metadata={"activity_id": activity_id},
            )
        raise FailedPrecondition(
            f"task {activity_id} is already completed",
            reason="TASK_ALREADY_COMPLETED",
            metadata={"activity_id": activity_id},
        )
    uow.audit("leads.CompleteTask", "activity", activity_id, {"lead_id": done.lead_id})
    return done


# Whose a task is now: the deal's owner for a deal's task, else the lead's rep; and the lead's team —
# the same owners the gateway's record rules check. Read when listing, so open tasks follow a
# reassigned lead and a merge (which moves activities to the surviving lead).
_OWNER_REP = case((activities.c.deal_id.is_not(None), lead_conversions.c.owner_rep_id), else_=leads.c.rep_id)


def _open_tasks_with_owner() -> Select[Any]:
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
    query = _open_tasks_with_owner()
    if rep_id:
        query = query.where(_OWNER_REP == rep_id)
    if team_id:
        query = query.where(leads.c.team_id == team_id)
    return await keyset_page(uow.conn, query, activities.c.due_at, activities.c.id, limit=limit, after=after)


async def send_due_reminders(db: Database, *, now: datetime | None = None, batch: int = REMINDER_BATCH) -> int:
    """Publish TaskReminderDue for every open task whose reminder time has come, once: each batch
    is claimed FOR UPDATE SKIP LOCKED and marked reminded in the transaction that writes its events,
    so replicas running this at once never remind twice. Returns how many reminders went out."""
    sent = 0
    with caller.acting_as(caller.SYSTEM_ACTOR):
        while True:
            at = now or datetime.now(UTC)
            async with db.unit_of_work() as uow:
                due = (
                    await uow.conn.execute(
                        _open_tasks_with_owner()
                        .where(activities.c.reminded_at.is_(None), activities.c.remind_at <= at)
                        .order_by(activities.c.remind_at)
                        .limit(batch)
                        .with_for_update(skip_locked=True, of=activities)
                    )
                ).all()
                if not due:
                    return sent
                await uow.conn.execute(
                    update(activities).where(activities.c.id.in_([r.id for r in due])).values(reminded_at=at)
                )
                for r in due:
                    await uow.record_event(
                        events_pb2.TaskReminderDue(
                            activity_id=r.id,
                            lead_id=r.lead_id,
                            deal_id=r.deal_id or "",
                            rep_id=r.rep_id or "",
                            subject=r.subject,
                            due_time=to_timestamp(r.due_at),
                            remind_time=to_timestamp(r.remind_at),
                        ),
                        time=at,
                    )
                    uow.audit("leads.SendTaskReminder", "activity", r.id, {"rep_id": r.rep_id or ""})
                uow.after_commit(functools.partial(TASK_REMINDERS.inc, len(due)))
            sent += len(due)
            if len(due) < batch:
                return sent
