"""Read side of support, in the caller's unit of work. Every ticket read goes through the reach:
a ticket outside it is NOT_FOUND, the same answer as one that does not exist."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, any_, false, func, literal, or_, select, true

from crm_kit.db import UnitOfWork
from crm_kit.errors import InvalidArgument, NotFound
from crm_kit.pagination import keyset_page
from crm_support import domain
from crm_support.db import (
    calendars,
    categories,
    queues,
    sla_policies,
    ticket_attachments,
    ticket_history,
    ticket_messages,
    tickets,
)


@dataclass(frozen=True)
class Reach:
    """Which tickets a caller reaches (crm.support.v1.TicketReach); empty reaches nothing."""

    all_tickets: bool = False
    agent_id: str = ""
    team_id: str = ""
    customer_id: str = ""


def reach_clause(reach: Reach) -> ColumnElement[bool]:
    """The tickets within the reach: an agent's queues and their own, a team's queues, a customer's."""
    if reach.all_tickets:
        return true()
    parts: list[ColumnElement[bool]] = []
    if reach.agent_id:
        member_queues = select(queues.c.id).where(literal(reach.agent_id) == any_(queues.c.member_ids))
        parts += [tickets.c.assignee_id == reach.agent_id, tickets.c.queue_id.in_(member_queues)]
    if reach.team_id:
        parts.append(tickets.c.queue_id.in_(select(queues.c.id).where(queues.c.team_id == reach.team_id)))
    if reach.customer_id:
        parts.append(tickets.c.customer_id == reach.customer_id)
    return or_(*parts) if parts else false()


def _not_found(what: str) -> NotFound:
    return NotFound(f"ticket {what} not found", reason="TICKET_NOT_FOUND", metadata={"ticket": what})


async def ticket(uow: UnitOfWork, reach: Reach, *, ticket_id: str = "", number: int = 0, lock: bool = False) -> Any:
    """The ticket row (by id or number) within the reach; with lock, FOR UPDATE to the end of the
    transaction."""
    key = tickets.c.id == ticket_id if ticket_id else tickets.c.number == number
    query = select(tickets, queues.c.team_id.label("queue_team_id")).join(queues, queues.c.id == tickets.c.queue_id)
    query = query.where(key, reach_clause(reach))
    if lock:
        query = query.with_for_update(of=tickets)
    row = (await uow.conn.execute(query)).first()
    if row is None:
        raise _not_found(ticket_id or str(number))
    return row


async def histories(uow: UnitOfWork, ticket_ids: list[str]) -> dict[str, list[tuple[datetime, str]]]:
    """Each ticket's status changes, oldest first: what its SLA clock is computed from."""
    grouped: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    if not ticket_ids:
        return grouped
    rows = await uow.conn.execute(
        select(ticket_history.c.ticket_id, ticket_history.c.at, ticket_history.c.status)
        .where(ticket_history.c.ticket_id.in_(ticket_ids))
        .order_by(ticket_history.c.ticket_id, ticket_history.c.seq)
    )
    for r in rows:
        grouped[r.ticket_id].append((r.at, r.status))
    return grouped


async def open_children(uow: UnitOfWork, ticket_ids: list[str]) -> dict[str, int]:
    if not ticket_ids:
        return {}
    rows = await uow.conn.execute(
        select(tickets.c.parent_ticket_id, func.count())
        .where(
            tickets.c.parent_ticket_id.in_(ticket_ids), tickets.c.status.in_([s.value for s in domain.OPEN_STATUSES])
        )
        .group_by(tickets.c.parent_ticket_id)
    )
    return {r[0]: int(r[1]) for r in rows}


async def list_tickets(
    uow: UnitOfWork,
    reach: Reach,
    *,
    limit: int,
    after: tuple[Any, ...] | None,
    statuses: list[str],
    queue_id: str,
    assignee_id: str,
    customer_id: str,
    priority: str,
    at_risk: bool,
) -> tuple[list[Any], list[Any] | None]:
    """A page of tickets within the reach, newest first."""
    query = select(tickets, queues.c.team_id.label("queue_team_id")).join(queues, queues.c.id == tickets.c.queue_id)
    conditions: list[ColumnElement[bool]] = [reach_clause(reach)]
    if statuses:
        conditions.append(tickets.c.status.in_(statuses))
    if queue_id:
        conditions.append(tickets.c.queue_id == queue_id)
    if assignee_id:
        conditions.append(tickets.c.assignee_id == assignee_id)
    if customer_id:
        conditions.append(tickets.c.customer_id == customer_id)
    if priority:
        conditions.append(tickets.c.priority == priority)
    if at_risk:
        conditions.append(tickets.c.at_risk)
    return await keyset_page(
        uow.conn,
        query.where(and_(*conditions)),
        tickets.c.created_at,
        tickets.c.id,
        limit=limit,
        after=after,
        descending=True,
    )


async def messages(uow: UnitOfWork, ticket_id: str, *, public_only: bool) -> list[Any]:
    query = select(ticket_messages).where(ticket_messages.c.ticket_id == ticket_id)
    if public_only:
        query = query.where(ticket_messages.c.visibility != domain.Visibility.INTERNAL_NOTE.value)
    return list((await uow.conn.execute(query.order_by(ticket_messages.c.id))).all())


async def category_rows(uow: UnitOfWork) -> list[Any]:
    """Parents before their children, siblings by position."""
    rows = list((await uow.conn.execute(select(categories).order_by(categories.c.position, categories.c.id))).all())
    by_parent: dict[str | None, list[Any]] = defaultdict(list)
    for r in rows:
        by_parent[r.parent_id].append(r)
    ordered: list[Any] = []
    stack = list(reversed(by_parent[None]))
    while stack:
        row = stack.pop()
        ordered.append(row)
        stack.extend(reversed(by_parent[row.id]))
    return ordered


async def category_path(uow: UnitOfWork, category_id: str) -> list[str]:
    """The category and its ancestors, the category first; InvalidArgument for an unknown one."""
    rows = {r.id: r.parent_id for r in await uow.conn.execute(select(categories.c.id, categories.c.parent_id))}
    if category_id not in rows:
        raise InvalidArgument(
            f"no category {category_id!r}", field_violations=[("category_id", f"no category {category_id!r}")]
        )
    path = [category_id]
    while (parent := rows[path[-1]]) is not None and parent not in path:
        path.append(parent)
    return path


async def queue_rows(uow: UnitOfWork) -> list[Any]:
    return list((await uow.conn.execute(select(queues).order_by(queues.c.id))).all())


async def open_by_member(uow: UnitOfWork, queue_id: str | None = None) -> dict[str, int]:
    """Open tickets per assignee (of one queue, or of all): what least-loaded assignment reads."""
    query = select(tickets.c.assignee_id, func.count()).where(
        tickets.c.status.in_([s.value for s in domain.OPEN_STATUSES]), tickets.c.assignee_id != ""
    )
    if queue_id:
        query = query.where(tickets.c.queue_id == queue_id)
    rows = await uow.conn.execute(query.group_by(tickets.c.assignee_id))
    return {r[0]: int(r[1]) for r in rows}


async def policy(uow: UnitOfWork, version: int = 0) -> Any:
    """A policy version, or the one in force (the newest) for 0."""
    query = select(sla_policies)
    query = (
        query.where(sla_policies.c.version == version)
        if version
        else query.order_by(sla_policies.c.version.desc()).limit(1)
    )
    row = (await uow.conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no SLA policy version {version}", reason="SLA_POLICY_NOT_FOUND")
    return row


def targets_of(row: Any) -> list[domain.Target]:
    return [
        domain.Target(
            metric=domain.Metric(t["metric"]),
            priority=domain.Priority(t["priority"]),
            category_id=t.get("category_id", ""),
            customer_tier=t.get("customer_tier", ""),
            minutes=int(t["target_minutes"]),
        )
        for t in row.targets
    ]


async def calendar_rows(uow: UnitOfWork) -> list[Any]:
    return list((await uow.conn.execute(select(calendars).order_by(calendars.c.code))).all())


async def attachments(uow: UnitOfWork, ticket_id: str) -> list[Any]:
    """The ticket's attachments, oldest first (the caller has checked the ticket's reach)."""
    rows = await uow.conn.execute(
        select(ticket_attachments).where(ticket_attachments.c.ticket_id == ticket_id).order_by(ticket_attachments.c.id)
    )
    return list(rows)


async def attachment(uow: UnitOfWork, ticket_id: str, attachment_id: int) -> Any:
    """One attachment of the ticket, or NOT_FOUND (also when it belongs to another ticket)."""
    row = (
        await uow.conn.execute(
            select(ticket_attachments).where(
                ticket_attachments.c.ticket_id == ticket_id, ticket_attachments.c.id == attachment_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(
            f"attachment {attachment_id} not found",
            reason="ATTACHMENT_NOT_FOUND",
            metadata={"attachment": str(attachment_id)},
        )
    return row
