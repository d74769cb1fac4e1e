"""Activity commands, each in the caller's unit of work: log an activity, complete a task, and the
periodic job that sends due task reminders.

Logging a call, e-mail, SMS or meeting on a lead whose first response is still NULL stops the
speed-to-lead clock in the same transaction; the histogram is observed after the commit.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, literal, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.leads.v1 import events_pb2
from crm_kit import caller
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import FailedPrecondition
from crm_kit.protoconv import to_timestamp
from crm_leads.activities import domain, queries
from crm_leads.activities.domain import ActivityKind, NewActivity
from crm_leads.activities.queries import Target
from crm_leads.db import activities, leads
from crm_leads.metrics import ACTIVITIES_LOGGED, FIRST_RESPONSE_SECONDS, TASK_REMINDERS

_ACTOR_MAX = 200
REMINDER_BATCH = 100


class RequestIdRace(Exception):
    """Two LogActivity calls with one request_id ran at once; read the winner's activity."""


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
    actor_name = await queries.rep_name(uow, actor)
    await uow.record_event(
        events_pb2.ActivityLogged(
            activity_id=activity_id,
            lead_id=target.lead_id,
            deal_id=target.deal_id,
            kind=new.kind.value,
            summary=domain.summary(new.kind, new.subject, new.body),
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
    if new.occurred_at < now - domain.FUTURE_SKEW:
        details["occurred_at"] = new.occurred_at.isoformat()
    uow.audit("leads.LogActivity", "activity", activity_id, details)
    uow.after_commit(ACTIVITIES_LOGGED.labels(new.kind.value).inc)
    return row


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
        row = await queries.get_activity(uow, activity_id)
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
                        queries.open_tasks_with_owner()
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
