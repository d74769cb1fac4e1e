"""The SLA scan: looks only at tickets whose `sla_check_at` has come (the next warning, breach or
escalation each ticket's clocks announce), raises their escalation level once per clock and
level, hands a breached ticket to another agent when the policy says so, and announces it with
TicketSlaBreached. Several replicas may scan at once: rows are claimed with SKIP LOCKED."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from crm.support.v1 import events_pb2
from crm_kit.db import Database, UnitOfWork
from crm_kit.protoconv import to_timestamp
from crm_support import clocks, domain, queries
from crm_support.db import tickets
from crm_support.metrics import AT_RISK_TICKETS, OPEN_TICKETS, SLA_ESCALATIONS, SLA_SCAN_SECONDS
from crm_support.proto_maps import ENUM_OF

BATCH = 500
MAX_BATCHES_PER_PASS = 1000


def escalation_key(clock: clocks.Clock, row: Any) -> str:
    """Next response is one clock per customer message: each round escalates on its own."""
    if clock.metric is domain.Metric.NEXT_RESPONSE and row.awaiting_reply_since is not None:
        return f"next_response@{row.awaiting_reply_since.isoformat()}"
    return clock.metric.value


class Loads:
    """Each queue's members and their open tickets, read once per batch (not per breached ticket:
    at 500k tickets one count is ~0.1 s) and kept current as the batch hands tickets over. The
    queue rows are not locked: a ticket opened meanwhile may make a count one short, which only
    nudges which agent is least loaded."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.members: dict[str, list[str]] | None = None
        self.load: dict[str, dict[str, int]] = {}

    async def reassign(self, row: Any) -> str:
        """The least loaded other member of the ticket's queue (counted as having it from now), or ""."""
        if self.members is None:
            self.members = {q.id: list(q.member_ids) for q in await queries.queue_rows(self.uow)}
        others = [m for m in self.members.get(row.queue_id, []) if m != row.assignee_id]
        if not others:
            return ""
        if row.queue_id not in self.load:
            self.load[row.queue_id] = await queries.open_by_member(self.uow, row.queue_id)
        load = self.load[row.queue_id]
        chosen = domain.choose_assignee(domain.Strategy.LEAST_LOADED, others, "", load)
        load[chosen] = load.get(chosen, 0) + 1
        load[row.assignee_id] = max(0, load.get(row.assignee_id, 0) - 1)
        return chosen


async def _escalate(uow: UnitOfWork, row: Any, history: list[Any], now: datetime, loads: Loads) -> int:
    """Raise the ticket's escalation levels that its clocks have reached; returns how many."""
    cal = await clocks.calendar(uow, row.calendar_code)
    policy = await clocks.policy_version(uow, row.sla_policy_version)
    found = clocks.ticket_clocks(row, history, cal, policy, now)
    levels: dict[str, int] = dict(row.escalations)
    assignee, raised = row.assignee_id, 0
    for clock in found:
        key = escalation_key(clock, row)
        if clock.met_at is not None or clock.level <= levels.get(key, 0):
            continue
        reassigned = ""
        # Handed over at most once a pass: two clocks breaching together move the ticket once.
        if clock.level >= 2 > levels.get(key, 0) and policy.reassign_on_breach and assignee == row.assignee_id:
            reassigned = await loads.reassign(row)
            assignee = reassigned or assignee
        levels[key] = clock.level
        raised += 1
        await uow.record_event(
            events_pb2.TicketSlaBreached(
                ticket_id=row.id,
                number=row.number,
                customer_id=row.customer_id,
                metric=ENUM_OF["metric"][clock.metric.value],
                level=clock.level,
                due_time=to_timestamp(clock.due_at) if clock.due_at else None,
                queue_id=row.queue_id,
                assignee_id=row.assignee_id,
                reassigned_to=reassigned,
                occur_time=to_timestamp(now),
            ),
            time=now,
        )
        uow.audit(
            "support.SlaEscalation",
            "ticket",
            row.id,
            {"metric": clock.metric.value, "level": clock.level, "reassigned_to": reassigned},
        )
        uow.after_commit(SLA_ESCALATIONS.labels(clock.metric.value, str(clock.level)).inc)
    values: dict[str, Any] = {
        "escalations": levels,
        "sla_check_at": clocks.check_at(found),
        "at_risk": clocks.at_risk(found),
    }
    if assignee != row.assignee_id:
        values.update(assignee_id=assignee, row_version=tickets.c.row_version + 1, updated_at=now)
    await uow.conn.execute(update(tickets).where(tickets.c.id == row.id).values(**values))
    return raised


async def scan_batch(uow: UnitOfWork, now: datetime, limit: int = BATCH) -> tuple[int, int]:
    """One batch of due tickets in this transaction: (tickets looked at, levels raised)."""
    rows = list(
        (
            await uow.conn.execute(
                select(tickets)
                .where(tickets.c.sla_check_at <= now)
                .order_by(tickets.c.sla_check_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    found = await queries.histories(uow, [r.id for r in rows])
    raised, loads = 0, Loads(uow)
    for row in rows:
        raised += await _escalate(uow, row, found[row.id], now, loads)
    return len(rows), raised


async def scan(db: Database, now: datetime | None = None) -> tuple[int, int]:
    """Every due ticket, batch by batch (each its own transaction); then the backlog gauges."""
    started = time.perf_counter()
    moment = now or datetime.now(UTC)
    looked = raised = 0
    # A handled ticket's next check is after `moment` (clocks._next_check), so a pass ends once the
    # due rows are done; the bound keeps one pass finite whatever happens (the next pass goes on).
    for _ in range(MAX_BATCHES_PER_PASS):
        async with db.unit_of_work() as uow:
            count, up = await scan_batch(uow, moment)
        looked, raised = looked + count, raised + up
        if count < BATCH:
            break
    await _gauges(db)
    SLA_SCAN_SECONDS.observe(time.perf_counter() - started)
    return looked, raised


async def _gauges(db: Database) -> None:
    async with db.unit_of_work() as uow:
        rows = await uow.conn.execute(
            select(tickets.c.queue_id, func.count(), func.count().filter(tickets.c.at_risk))
            .where(tickets.c.status.in_([s.value for s in domain.OPEN_STATUSES]))
            .group_by(tickets.c.queue_id)
        )
        counts = {r[0]: (int(r[1]), int(r[2])) for r in rows}
        for q in await queries.queue_rows(uow):
            open_now, risky = counts.get(q.id, (0, 0))
            OPEN_TICKETS.labels(q.id).set(open_now)
            AT_RISK_TICKETS.labels(q.id).set(risky)
