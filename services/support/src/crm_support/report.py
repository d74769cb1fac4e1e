"""The service desk's report: per queue, agent or category — tickets opened and resolved in a
period, the backlog now, SLA attainment per metric and satisfaction (CSAT) from the surveys.

Attainment counts every clock that has an outcome: met, or breached (a running clock already past
its target is breached; one still within it is not counted yet)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select

from crm_kit.db import UnitOfWork
from crm_kit.errors import InvalidArgument
from crm_support import clocks, domain, queries
from crm_support.db import surveys, tickets

GROUP_COLUMN = {"queue": "queue_id", "agent": "assignee_id", "category": "category_id"}
# A report reads at most this many tickets of the period (a wider period asks for a narrower one).
MAX_TICKETS = 200_000


@dataclass
class Row:
    key: str
    opened: int = 0
    resolved: int = 0
    backlog: int = 0
    met: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    breached: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scores: list[int] = field(default_factory=list)

    def add_clocks(self, found: list[clocks.Clock]) -> None:
        for c in found:
            if c.state == "met":
                self.met[c.metric.value] += 1
            elif c.state == "breached":
                self.breached[c.metric.value] += 1


async def support_report(
    uow: UnitOfWork, reach: queries.Reach, group_by: str, since: datetime, until: datetime, now: datetime
) -> tuple[list[Row], Row]:
    column = tickets.c[GROUP_COLUMN[group_by]]
    within = queries.reach_clause(reach)
    period = and_(tickets.c.created_at >= since, tickets.c.created_at < until, within)
    rows = list(
        (
            await uow.conn.execute(
                select(tickets, column.label("group_key"), surveys.c.score.label("survey_score"))
                .outerjoin(surveys, surveys.c.ticket_id == tickets.c.id)
                .where(period)
                .limit(MAX_TICKETS + 1)
            )
        ).all()
    )
    if len(rows) > MAX_TICKETS:  # never a silently partial report
        raise InvalidArgument(
            f"the period holds more than {MAX_TICKETS} tickets: ask for a shorter one",
            field_violations=[("from_time", f"a period of at most {MAX_TICKETS} tickets")],
        )
    found = await queries.histories(uow, [r.id for r in rows])
    groups: dict[str, Row] = {}
    total = Row(key="")
    for r in rows:
        cal = await clocks.calendar(uow, r.calendar_code)
        policy = await clocks.policy_version(uow, r.sla_policy_version)
        ticket_clocks = clocks.ticket_clocks(r, found[r.id], cal, policy, now)
        for target in (groups.setdefault(r.group_key, Row(key=r.group_key)), total):
            target.opened += 1
            target.resolved += r.resolved_at is not None
            target.add_clocks(ticket_clocks)
            if r.survey_score:
                target.scores.append(int(r.survey_score))
    backlog = await uow.conn.execute(
        select(column, func.count())
        .where(within, tickets.c.status.in_([s.value for s in domain.OPEN_STATUSES]))
        .group_by(column)
    )
    for key, count in backlog:
        groups.setdefault(key, Row(key=key)).backlog += int(count)
        total.backlog += int(count)
    return sorted(groups.values(), key=lambda g: g.key), total


def csat(row: Row) -> tuple[float, float]:
    """(mean score, share of 4s and 5s); zeros without answers."""
    if not row.scores:
        return 0.0, 0.0
    return sum(row.scores) / len(row.scores), sum(1 for s in row.scores if s >= 4) / len(row.scores)


def attainment(row: Row, metric: str) -> float:
    done = row.met[metric] + row.breached[metric]
    return row.met[metric] / done if done else 0.0
