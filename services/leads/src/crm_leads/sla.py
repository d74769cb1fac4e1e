"""The speed-to-lead SLA: the periodic breach scan, and handing a lead to a rep by hand.

A lead's clock runs from its assignment (first_response_due_at = assignment + the rule's SLA) until
its first logged activity (first_response_at, set by crm_leads.activities). The scan runs on every
replica every few seconds (CRM_SLA_SCAN_INTERVAL_SECONDS); `FOR UPDATE SKIP LOCKED` gives each due
lead to one replica. A breach is recorded (lead_sla_breaches, audit, LeadSlaBreached) and acted on:
reassign hands the lead to the next eligible rep of the team by the rule's strategy (never one who
already had it) with a new deadline; escalate — or a reassign that finds nobody — gives it to the
team's manager and stops the clock.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from crm.leads.v1 import events_pb2
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from crm_kit.protoconv import to_timestamp
from crm_leads import domain
from crm_leads import routing_rules as rr
from crm_leads.db import lead_sla_breaches, leads, reps, routing_rules, teams
from crm_leads.metrics import SLA_BREACHES
from crm_leads.routing import try_team

log = logging.getLogger(__name__)


async def scan_breaches(db: Database, *, batch_size: int = 100, now: datetime | None = None) -> int:
    """Handle up to batch_size leads past their deadline, one transaction per lead; returns how many.

    One lead per transaction: a lead that fails (logged, skipped this round) never rolls back the
    others, and rep locks are held for one breach at a time. The lead row is locked FOR NO KEY
    UPDATE: a capture that only references the lead (a possible-duplicate pair's foreign key) is
    not blocked by the scan.
    """
    handled = 0
    failed: list[str] = []
    while handled + len(failed) < batch_size:
        lead: Any = None
        try:
            async with db.unit_of_work() as uow:
                at = now or datetime.now(UTC)
                query = (
                    select(leads)
                    .where(
                        leads.c.sla_clock_running,
                        leads.c.first_response_at.is_(None),
                        leads.c.first_response_due_at <= at,
                        # A lead converted to a deal or merged into another is no longer waiting.
                        leads.c.status == domain.LeadStatus.NEW.value,
                        leads.c.merged_into_id.is_(None),
                    )
                    .order_by(leads.c.first_response_due_at)
                    .limit(1)
                    .with_for_update(skip_locked=True, key_share=True)
                )
                if failed:
                    query = query.where(leads.c.id.not_in(failed))
                lead = (await uow.conn.execute(query)).first()
                if lead is None:
                    break
                await handle_breach(uow, lead, at)
            handled += 1
        except Exception:
            if lead is None:
                raise
            log.exception("SLA breach handling failed; the lead is retried next scan", extra={"lead_id": lead.id})
            failed.append(lead.id)
    if handled:
        log.info("SLA breaches handled", extra={"count": handled})
    return handled


async def _strategy_of(uow: UnitOfWork, rule_id: str | None) -> domain.Strategy:
    """The strategy of the lead's rule as it is now; round-robin when it was removed or named a rep
    (the "next rep" of a named-rep rule is the next in its team's rotation)."""
    if rule_id:
        found = (await uow.conn.execute(select(routing_rules.c.strategy).where(routing_rules.c.id == rule_id))).scalar()
        if found == domain.Strategy.LEAST_LOADED.value:
            return domain.Strategy.LEAST_LOADED
    return domain.Strategy.ROUND_ROBIN


async def handle_breach(uow: UnitOfWork, lead: Any, now: datetime) -> None:
    """Record one breach and act on it, in the scan's transaction."""
    action = domain.BreachAction.REASSIGN if lead.breach_action == "reassign" else domain.BreachAction.ESCALATE
    tried = tuple(dict.fromkeys([*lead.tried_rep_ids, *([lead.rep_id] if lead.rep_id else [])]))
    new_rep = ""
    new_due = None
    manager = ""
    explanation = dict(lead.routing_explanation or {})
    if action is domain.BreachAction.REASSIGN and lead.team_id:
        outcome = await try_team(
            uow,
            rule_id=lead.rule_id or "",
            strategy=await _strategy_of(uow, lead.rule_id),
            team_id=lead.team_id,
            rep_id="",
            now=now,
            tried=tried,
        )
        explanation.setdefault("reassignments", []).append(outcome.as_dict())
        if outcome.picked is not None:
            new_rep = outcome.picked.rep_id
            new_due = rr.due_at(now, lead.sla_seconds)
    if not new_rep:
        action = domain.BreachAction.ESCALATE
        if lead.team_id:
            manager = (
                await uow.conn.execute(select(teams.c.manager_id).where(teams.c.id == lead.team_id))
            ).scalar() or ""
    values: dict[str, Any] = {
        "sla_breached_at": lead.sla_breached_at or now,
        "tried_rep_ids": list(tried),
        "routing_explanation": explanation,
    }
    if new_rep:
        values.update(
            rep_id=new_rep,
            assigned_at=now,
            first_response_due_at=new_due,
            sla_clock_running=new_due is not None,
            reassign_count=lead.reassign_count + 1,
            assign_reason=f"SLA breached by {lead.rep_id or 'the queue'}: reassigned in team {lead.team_id}"[:500],
        )
    else:
        values.update(sla_clock_running=False, escalated_to=manager or None)
    await uow.conn.execute(update(leads).where(leads.c.id == lead.id).values(**values))
    breach_id = str(uuid.uuid4())
    await uow.conn.execute(
        lead_sla_breaches.insert().values(
            id=breach_id,
            lead_id=lead.id,
            rep_id=lead.rep_id or "",
            team_id=lead.team_id or "",
            rule_id=lead.rule_id or "",
            source=lead.source,
            due_at=lead.first_response_due_at,
            breached_at=now,
            action=action.value,
            new_rep_id=new_rep,
            manager_id=manager,
        )
    )
    uow.audit(
        "leads.SlaBreached",
        "lead",
        lead.id,
        {"rep_id": lead.rep_id or "", "action": action.value, "new_rep_id": new_rep, "manager_id": manager},
    )
    await uow.record_event(
        events_pb2.LeadSlaBreached(
            lead_id=lead.id,
            rep_id=lead.rep_id or "",
            team_id=lead.team_id or "",
            rule_id=lead.rule_id or "",
            source=lead.source,
            due_time=to_timestamp(lead.first_response_due_at),
            breach_time=to_timestamp(now),
            action=action.value,
            new_rep_id=new_rep,
            manager_id=manager,
            new_due_time=to_timestamp(new_due),
        ),
        time=now,
    )
    if new_rep:
        await uow.record_event(
            events_pb2.LeadAssigned(
                lead_id=lead.id,
                rep_id=new_rep,
                team_id=lead.team_id or "",
                rule_id=lead.rule_id or "",
                reason="reassigned after an SLA breach",
                source=lead.source,
                capture_time=to_timestamp(lead.created_at),
                assign_time=to_timestamp(now),
            ),
            time=now,
        )
    uow.after_commit(SLA_BREACHES.labels(lead.source, action.value).inc)


async def assign_by_hand(uow: UnitOfWork, lead_id: str, rep_id: str, now: datetime) -> None:
    """A manager hands a lead to a rep: the rep's team becomes the lead's, the SLA clock restarts
    (with the lead's SLA), LeadAssigned is published. Capacity and hours do not bind a person's
    decision; an inactive rep is refused."""
    lead = (await uow.conn.execute(select(leads).where(leads.c.id == lead_id).with_for_update(key_share=True))).first()
    if lead is None:
        raise NotFound(f"lead {lead_id} not found", reason="LEAD_NOT_FOUND", metadata={"lead_id": lead_id})
    rep = (await uow.conn.execute(select(reps).where(reps.c.id == rep_id))).first()
    if rep is None:
        raise InvalidArgument(f"unknown rep {rep_id!r}", field_violations=[("rep_id", "unknown rep")])
    if not rep.active:
        raise InvalidArgument(f"rep {rep_id} is inactive", field_violations=[("rep_id", "the rep is inactive")])
    if lead.status != domain.LeadStatus.NEW.value or lead.merged_into_id:
        raise FailedPrecondition("only a new lead can be assigned", reason="LEAD_NOT_ASSIGNABLE")
    due = rr.due_at(now, lead.sla_seconds)
    running = due is not None and lead.first_response_at is None
    await uow.conn.execute(
        update(leads)
        .where(leads.c.id == lead_id)
        .values(
            rep_id=rep_id,
            team_id=rep.team_id,
            assigned_at=now,
            first_response_due_at=due if lead.first_response_at is None else lead.first_response_due_at,
            sla_clock_running=running,
            escalated_to=None,
            assign_reason="assigned by hand",
        )
    )
    uow.audit(
        "leads.AssignLead",
        "lead",
        lead_id,
        {"rep_id": rep_id, "team_id": rep.team_id, "previous_rep_id": lead.rep_id or ""},
    )
    await uow.record_event(
        events_pb2.LeadAssigned(
            lead_id=lead_id,
            rep_id=rep_id,
            team_id=rep.team_id,
            rule_id=lead.rule_id or "",
            reason="assigned by hand",
            source=lead.source,
            capture_time=to_timestamp(lead.created_at),
            assign_time=to_timestamp(now),
        ),
        time=now,
    )
