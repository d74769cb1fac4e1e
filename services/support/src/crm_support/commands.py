"""Write side of support: each command runs in the caller's unit of work, locks the ticket it
changes, writes its history, recomputes when the SLA scan must look at it, and records its event
and audit record in the same transaction."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.support.v1 import events_pb2
from crm_kit import caller
from crm_kit.db import UnitOfWork
from crm_kit.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from crm_kit.etags import check_etag
from crm_kit.protoconv import to_timestamp
from crm_support import clocks, domain, queries
from crm_support.db import (
    calendars,
    categories,
    queues,
    sla_policies,
    surveys,
    ticket_attachments,
    ticket_history,
    ticket_messages,
    tickets,
)
from crm_support.metrics import SURVEY_ANSWERS, TICKETS_OPENED, TICKETS_RESOLVED
from crm_support.proto_maps import ENUM_OF
from crm_support.sla.calendar import Calendar, calendar_to_dict

Reach = queries.Reach


def _actor() -> str:
    who = caller.current()
    return who.actor if who else caller.UNKNOWN_ACTOR


def request_key(*parts: str) -> str:
    """A caller's request id as stored: bound to who sent it (and what it was about), so a request
    id another caller happens to know answers nothing of theirs, and of a fixed length whatever
    the id's."""
    return hashlib.sha256("\n".join((_actor(), *parts)).encode()).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _refresh_sla(uow: UnitOfWork, row: Any, now: datetime) -> dict[str, Any]:
    """The SLA columns the ticket's clocks give now (when to scan it next, whether it is at risk)."""
    history = (await queries.histories(uow, [row.id]))[row.id]
    cal = await clocks.calendar(uow, row.calendar_code)
    policy = await clocks.policy_version(uow, row.sla_policy_version)
    found = clocks.ticket_clocks(row, history, cal, policy, now)
    return {"sla_check_at": clocks.check_at(found), "at_risk": clocks.at_risk(found)}


async def _save(uow: UnitOfWork, ticket_id: str, values: dict[str, Any], now: datetime) -> Any:
    """Write values, bump the row version, then recompute the SLA columns from the new row."""
    row = (
        await uow.conn.execute(
            update(tickets)
            .where(tickets.c.id == ticket_id)
            .values(**values, updated_at=now, row_version=tickets.c.row_version + 1)
            .returning(tickets)
        )
    ).one()
    sla = await _refresh_sla(uow, row, now)
    return (
        await uow.conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**sla).returning(tickets))
    ).one()


async def _history(uow: UnitOfWork, ticket_id: str, status: str, at: datetime, note: str = "") -> None:
    seq = select(func.coalesce(func.max(ticket_history.c.seq), 0) + 1).where(ticket_history.c.ticket_id == ticket_id)
    await uow.conn.execute(
        insert(ticket_history).values(
            ticket_id=ticket_id, seq=seq.scalar_subquery(), status=status, at=at, note=note, actor=_actor()
        )
    )


async def _pick_assignee(uow: UnitOfWork, queue: Any, wanted: str, *, exclude: str = "") -> str:
    """The agent a ticket goes to in this queue: the one asked for (who must be a member), else
    the queue's strategy over its members. The queue row is locked by the caller."""
    members = [m for m in queue.member_ids if m != exclude]
    if wanted:
        if wanted not in queue.member_ids:
            raise InvalidArgument(
                f"{wanted!r} is not a member of queue {queue.id!r}",
                field_violations=[("assignee_id", f"not a member of queue {queue.id!r}")],
            )
        return wanted
    load = await queries.open_by_member(uow, queue.id) if queue.strategy == domain.Strategy.LEAST_LOADED else {}
    chosen = domain.choose_assignee(domain.Strategy(queue.strategy), members, queue.last_assignee_id, load)
    if chosen:
        await uow.conn.execute(update(queues).where(queues.c.id == queue.id).values(last_assignee_id=chosen))
    return chosen


async def _locked_queue(uow: UnitOfWork, queue_id: str, field: str) -> Any:
    row = (await uow.conn.execute(select(queues).where(queues.c.id == queue_id).with_for_update())).first()
    if row is None:
        raise InvalidArgument(f"no queue {queue_id!r}", field_violations=[(field, f"no queue {queue_id!r}")])
    return row


# ---------------------------------------------------------------- tickets


async def open_ticket(uow: UnitOfWork, new: domain.NewTicket, reach: Reach, request_id: str) -> Any:
    """Open a ticket (or return the one this caller's request_id opened before)."""
    key = request_key(request_id) if request_id else None
    if key:
        existing = (await uow.conn.execute(select(tickets.c.id).where(tickets.c.request_id == key))).first()
        if existing:
            return await queries.ticket(uow, Reach(all_tickets=True), ticket_id=existing.id)
    path = await queries.category_path(uow, new.category_id)
    if new.parent_ticket_id:
        parent = await queries.ticket(uow, reach, ticket_id=new.parent_ticket_id)
        if parent.status == domain.Status.CLOSED:
            raise FailedPrecondition(
                "a closed ticket takes no child tasks",
                field_violations=[("parent_ticket_id", "the ticket is closed")],
            )
    category_queue = (
        await uow.conn.execute(select(categories.c.queue_id).where(categories.c.id == new.category_id))
    ).scalar_one()
    queue = await _locked_queue(uow, category_queue, "category_id")
    assignee = await _pick_assignee(uow, queue, new.assignee_id)
    policy = await queries.policy(uow)
    targets = queries.targets_of(policy)
    sla_targets = {
        m.value: minutes * 60
        for m in domain.Metric
        if (minutes := domain.target_for(targets, m, new.priority, path, new.customer_tier)) is not None
    }
    now = datetime.now(UTC)
    ticket_id = str(uuid.uuid4())
    inserted = await uow.conn.execute(
        pg_insert(tickets)
        .values(
            id=ticket_id,
            customer_id=new.customer_id,
            order_id=new.order_id,
            product_sku=new.product_sku,
            kind=new.kind.value,
            channel=new.channel.value,
            priority=new.priority.value,
            category_id=new.category_id,
            subject=new.subject,
            description=new.description,
            status=domain.Status.NEW.value,
            queue_id=queue.id,
            assignee_id=assignee,
            parent_ticket_id=new.parent_ticket_id or None,
            customer_tier=new.customer_tier,
            sla_policy_version=policy.version,
            calendar_code=queue.calendar_code,
            sla_targets=sla_targets,
            created_by=_actor(),
            request_id=key,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["request_id"])
        .returning(tickets.c.id, tickets.c.number)
    )
    first = inserted.first()
    if first is None:  # the same request_id won a race: its ticket is the answer
        existing_id = (await uow.conn.execute(select(tickets.c.id).where(tickets.c.request_id == key))).scalar()
        return await queries.ticket(uow, Reach(all_tickets=True), ticket_id=str(existing_id))
    await _history(uow, ticket_id, domain.Status.NEW.value, now)
    row = await _save(uow, ticket_id, {}, now)
    await uow.record_event(
        events_pb2.TicketOpened(
            ticket_id=ticket_id,
            number=first.number,
            customer_id=new.customer_id,
            order_id=new.order_id,
            kind=ENUM_OF["kind"][new.kind.value],
            channel=ENUM_OF["channel"][new.channel.value],
            priority=ENUM_OF["priority"][new.priority.value],
            category_id=new.category_id,
            subject=new.subject,
            queue_id=queue.id,
            assignee_id=assignee,
            occur_time=to_timestamp(now),
        ),
        time=now,
    )
    uow.audit(
        "support.OpenTicket",
        "ticket",
        ticket_id,
        {"number": first.number, "kind": new.kind.value, "queue_id": queue.id, "assignee_id": assignee},
    )
    uow.after_commit(TICKETS_OPENED.labels(new.kind.value, new.priority.value).inc)
    return await queries.ticket(uow, Reach(all_tickets=True), ticket_id=row.id)


def _check_version(row: Any, given: str) -> None:
    check_etag(given, row.row_version, f"ticket {row.number}")


async def add_message(
    uow: UnitOfWork,
    ticket_id: str,
    reach: Reach,
    visibility: domain.Visibility,
    body: str,
    author_name: str,
    request_id: str,
) -> tuple[Any, Any]:
    """Add a reply, note or customer message; a public reply meets the first and next response
    targets and opens a new ticket; a customer's message starts the next-response clock and
    brings a ticket waiting for the customer back to open."""
    # Locked first, then looked up: a retry running beside the original waits for it, then finds it.
    row = await queries.ticket(uow, reach, ticket_id=ticket_id, lock=True)
    key = request_key(ticket_id, request_id) if request_id else None
    if key:
        found = (await uow.conn.execute(select(ticket_messages).where(ticket_messages.c.request_id == key))).first()
        if found is not None:
            return found, await queries.ticket(uow, reach, ticket_id=ticket_id)
    if row.status == domain.Status.CLOSED:
        raise FailedPrecondition("a closed ticket takes no messages", field_violations=[("ticket_id", "is closed")])
    now = datetime.now(UTC)
    message = (
        await uow.conn.execute(
            insert(ticket_messages)
            .values(
                ticket_id=ticket_id,
                visibility=visibility.value,
                body=body,
                author_id=_actor(),
                author_name=author_name[:200],
                request_id=key,
                created_at=now,
            )
            .returning(ticket_messages)
        )
    ).one()
    values = await _message_effects(uow, row, visibility, now)
    saved = await _save(uow, ticket_id, values, now)
    uow.audit(
        "support.AddTicketMessage",
        "ticket",
        ticket_id,
        {"message_id": message.id, "visibility": visibility.value, "status": saved.status},
    )
    return message, await queries.ticket(uow, Reach(all_tickets=True), ticket_id=ticket_id)


def refuse_closed(row: Any, what: str) -> None:
    if row.status == domain.Status.CLOSED:
        raise FailedPrecondition(f"a closed ticket takes no {what}", field_violations=[("ticket_id", "is closed")])


async def add_attachment(
    uow: UnitOfWork, ticket_id: str, reach: Reach, new: domain.NewAttachment, sha256: str, object_key: str
) -> Any:
    """Record an attachment whose bytes are already in the object store under object_key, with
    its audit record; the ticket is locked so a concurrent close is seen."""
    row = await queries.ticket(uow, reach, ticket_id=ticket_id, lock=True)
    refuse_closed(row, "attachments")
    attachment = (
        await uow.conn.execute(
            insert(ticket_attachments)
            .values(
                ticket_id=ticket_id,
                filename=new.filename,
                content_type=new.content_type,
                size_bytes=new.size_bytes,
                sha256=sha256,
                object_key=object_key,
                uploaded_by=_actor(),
                created_at=datetime.now(UTC),
            )
            .returning(ticket_attachments)
        )
    ).one()
    uow.audit(
        "support.AddTicketAttachment",
        "ticket",
        ticket_id,
        {
            "attachment_id": attachment.id,
            "filename": new.filename,
            "content_type": new.content_type,
            "size_bytes": new.size_bytes,
            "sha256": sha256,
        },
    )
    return attachment


async def _message_effects(uow: UnitOfWork, row: Any, visibility: domain.Visibility, now: datetime) -> dict[str, Any]:
    """What a message changes on its ticket: a public reply meets the first and next response and
    opens a new ticket; a customer's message starts the next-response clock and brings a ticket
    waiting for the customer back to open; a note changes nothing."""
    ticket_id = row.id
    values: dict[str, Any] = {}
    if visibility is domain.Visibility.PUBLIC_REPLY:
        if row.first_response_at is None:
            values["first_response_at"] = now
        if row.awaiting_reply_since is not None:
            rounds = [*row.next_responses, {"since": row.awaiting_reply_since.isoformat(), "met": now.isoformat()}]
            values.update(awaiting_reply_since=None, next_responses=rounds)
        if row.status == domain.Status.NEW:
            values["status"] = domain.Status.OPEN.value
            await _history(uow, ticket_id, domain.Status.OPEN.value, now, "replied")
    elif visibility is domain.Visibility.CUSTOMER_MESSAGE:
        if row.awaiting_reply_since is None and row.first_response_at is not None:
            values["awaiting_reply_since"] = now
        if row.status == domain.Status.PENDING_CUSTOMER:
            values["status"] = domain.Status.OPEN.value
            await _history(uow, ticket_id, domain.Status.OPEN.value, now, "the customer answered")
        elif row.status == domain.Status.RESOLVED:  # the customer writes again: the ticket reopens
            values.update(status=domain.Status.OPEN.value, resolved_at=None)
            await _history(uow, ticket_id, domain.Status.OPEN.value, now, "the customer wrote again")
            await _expire_survey(uow, ticket_id)
    return values


async def change_status(
    uow: UnitOfWork, ticket_id: str, reach: Reach, wanted: domain.Status, note: str, given_etag: str
) -> Any:
    row = await queries.ticket(uow, reach, ticket_id=ticket_id, lock=True)
    _check_version(row, given_etag)
    children = (await queries.open_children(uow, [ticket_id])).get(ticket_id, 0)
    domain.ensure_transition(domain.Status(row.status), wanted, open_children=children)
    now = datetime.now(UTC)
    values: dict[str, Any] = {"status": wanted.value}
    if wanted is domain.Status.RESOLVED:
        values["resolved_at"] = now
        if row.first_response_at is None:  # resolved without a reply: the resolution answered
            values["first_response_at"] = now
    elif wanted is domain.Status.CLOSED:
        values["closed_at"] = now
    elif row.status == domain.Status.RESOLVED:  # a reopen: the resolution clock runs again
        values["resolved_at"] = None
        await _expire_survey(uow, ticket_id)
    await _history(uow, ticket_id, wanted.value, now, note)
    saved = await _save(uow, ticket_id, values, now)
    if wanted is domain.Status.RESOLVED:
        await _resolved(uow, saved, now)
    uow.audit("support.ChangeTicketStatus", "ticket", ticket_id, {"from": row.status, "to": wanted.value})
    return await queries.ticket(uow, Reach(all_tickets=True), ticket_id=ticket_id)


async def _expire_survey(uow: UnitOfWork, ticket_id: str) -> None:
    """A reopened ticket's survey link stops working (a new one comes with the next resolution)."""
    await uow.conn.execute(delete(surveys).where(surveys.c.ticket_id == ticket_id))


async def _resolved(uow: UnitOfWork, row: Any, now: datetime) -> None:
    """A fresh survey link for the resolution (a reopened and re-resolved ticket asks again), and
    TicketResolved with the resolution clock's result."""
    token = secrets.token_urlsafe(24)
    await uow.conn.execute(
        pg_insert(surveys)
        .values(ticket_id=row.id, token_hash=token_hash(token), sent_at=now)
        .on_conflict_do_update(
            index_elements=["ticket_id"],
            set_={"token_hash": token_hash(token), "sent_at": now, "score": None, "answered_at": None, "comment": ""},
        )
    )
    history = (await queries.histories(uow, [row.id]))[row.id]
    cal = await clocks.calendar(uow, row.calendar_code)
    policy = await clocks.policy_version(uow, row.sla_policy_version)
    resolution = [
        c for c in clocks.ticket_clocks(row, history, cal, policy, now) if c.metric is domain.Metric.RESOLUTION
    ]
    await uow.record_event(
        events_pb2.TicketResolved(
            ticket_id=row.id,
            number=row.number,
            customer_id=row.customer_id,
            kind=ENUM_OF["kind"][row.kind],
            category_id=row.category_id,
            queue_id=row.queue_id,
            assignee_id=row.assignee_id,
            resolution_seconds=resolution[0].elapsed_seconds if resolution else 0,
            resolution_sla_met=not resolution or resolution[0].state == "met",
            survey_token=token,
            occur_time=to_timestamp(now),
        ),
        time=now,
    )
    uow.after_commit(TICKETS_RESOLVED.labels(row.kind).inc)


async def assign(
    uow: UnitOfWork, ticket_id: str, reach: Reach, queue_id: str, assignee_id: str, given_etag: str
) -> Any:
    row = await queries.ticket(uow, reach, ticket_id=ticket_id, lock=True)
    _check_version(row, given_etag)
    if row.status == domain.Status.CLOSED:
        raise FailedPrecondition("a closed ticket is not reassigned", field_violations=[("ticket_id", "is closed")])
    queue = await _locked_queue(uow, queue_id or row.queue_id, "queue_id")
    assignee = await _pick_assignee(uow, queue, assignee_id)
    now = datetime.now(UTC)
    values: dict[str, Any] = {"queue_id": queue.id, "assignee_id": assignee}
    if queue.calendar_code != row.calendar_code:
        values["calendar_code"] = queue.calendar_code
    await _save(uow, ticket_id, values, now)
    uow.audit(
        "support.AssignTicket",
        "ticket",
        ticket_id,
        {"queue_id": queue.id, "assignee_id": assignee, "from_assignee_id": row.assignee_id},
    )
    return await queries.ticket(uow, Reach(all_tickets=True), ticket_id=ticket_id)


# ---------------------------------------------------------------- configuration


async def update_queue(
    uow: UnitOfWork, queue_id: str, strategy: str, member_ids: list[str], team_id: str, calendar_code: str
) -> Any:
    queue = (await uow.conn.execute(select(queues).where(queues.c.id == queue_id).with_for_update())).first()
    if queue is None:
        raise NotFound(f"no queue {queue_id!r}", reason="QUEUE_NOT_FOUND")
    problems: list[tuple[str, str]] = []
    if strategy not in {s.value for s in domain.Strategy}:
        problems.append(("strategy", "must be round_robin or least_loaded"))
    members = list(dict.fromkeys(m.strip() for m in member_ids))
    if any(not m or len(m) > domain.MAX_ID for m in members) or len(members) > 500:
        problems.append(("member_ids", f"up to 500 ids of 1 to {domain.MAX_ID} characters"))
    code = calendar_code or queue.calendar_code
    if not (await uow.conn.execute(select(calendars.c.code).where(calendars.c.code == code))).first():
        problems.append(("calendar_code", f"no calendar {code!r}"))
    if problems:
        raise InvalidArgument("the queue is not valid: " + problems[0][1], field_violations=problems)
    saved = (
        await uow.conn.execute(
            update(queues)
            .where(queues.c.id == queue_id)
            .values(strategy=strategy, member_ids=members, team_id=team_id, calendar_code=code)
            .returning(queues)
        )
    ).one()
    uow.audit(
        "support.UpdateQueue",
        "queue",
        queue_id,
        {"strategy": strategy, "member_ids": members, "team_id": team_id, "calendar_code": code},
    )
    return saved


async def update_policy(
    uow: UnitOfWork, raw_targets: list[dict[str, Any]], warn: int, escalate: int, reassign: bool, based_on: int
) -> Any:
    current = (
        await uow.conn.execute(select(sla_policies).order_by(sla_policies.c.version.desc()).limit(1).with_for_update())
    ).one()
    if based_on != current.version:
        raise Aborted(
            f"the policy is at version {current.version}: read it again",
            reason="SLA_POLICY_CHANGED",
            field_violations=[("based_on_version", f"the version in force is {current.version}")],
        )
    known = frozenset(r.id for r in await queries.category_rows(uow))
    targets = domain.parse_targets(raw_targets, known)
    problems = [
        (name, "must be 0 to 10080 minutes")
        for name, value in (("warn_before_minutes", warn), ("escalate_after_minutes", escalate))
        if not 0 <= value <= 10080
    ]
    if problems:
        raise InvalidArgument("the SLA policy is not valid: " + problems[0][1], field_violations=problems)
    body = [
        {
            "metric": t.metric.value,
            "priority": t.priority.value,
            "category_id": t.category_id,
            "customer_tier": t.customer_tier,
            "target_minutes": t.minutes,
        }
        for t in targets
    ]
    saved = (
        await uow.conn.execute(
            insert(sla_policies)
            .values(
                version=current.version + 1,
                targets=body,
                warn_before_minutes=warn,
                escalate_after_minutes=escalate,
                reassign_on_breach=reassign,
                created_by=_actor(),
            )
            .returning(sla_policies)
        )
    ).one()
    uow.audit("support.UpdateSlaPolicy", "sla_policy", str(saved.version), {"targets": len(body)})
    return saved


async def put_calendar(uow: UnitOfWork, cal: Calendar) -> Calendar:
    body = calendar_to_dict(cal)
    await uow.conn.execute(
        pg_insert(calendars)
        .values(code=cal.code, body=body, updated_at=datetime.now(UTC))
        .on_conflict_do_update(index_elements=["code"], set_={"body": body, "updated_at": datetime.now(UTC)})
    )
    uow.audit("support.PutCalendar", "calendar", cal.code, {"holidays": len(cal.holidays)})
    uow.after_commit(lambda: clocks.forget_calendar(cal.code))
    return cal


# ---------------------------------------------------------------- surveys


async def submit_survey(uow: UnitOfWork, token: str, score: int, comment: str) -> Any:
    """Record the customer's score; the latest answer counts (a mistaken tap can be corrected)."""
    cleaned = domain.validate_survey(score, comment)
    found = (
        await uow.conn.execute(select(surveys.c.ticket_id).where(surveys.c.token_hash == token_hash(token)))
    ).first()
    if found is None:
        raise NotFound("no survey with this link", reason="SURVEY_NOT_FOUND")
    # The ticket, then its survey: the order a resolution takes them in, so the two never deadlock.
    await uow.conn.execute(select(tickets.c.id).where(tickets.c.id == found.ticket_id).with_for_update())
    survey = (
        await uow.conn.execute(select(surveys).where(surveys.c.token_hash == token_hash(token)).with_for_update())
    ).first()
    if survey is None:  # the ticket was reopened meanwhile: the link expired with it
        raise NotFound("no survey with this link", reason="SURVEY_NOT_FOUND")
    now = datetime.now(UTC)
    await uow.conn.execute(
        update(surveys)
        .where(surveys.c.ticket_id == survey.ticket_id)
        .values(score=score, comment=cleaned, answered_at=now)
    )
    row = (
        await uow.conn.execute(
            update(tickets)
            .where(tickets.c.id == survey.ticket_id)
            .values(satisfaction_score=score, row_version=tickets.c.row_version + 1)
            .returning(tickets)
        )
    ).one()
    await uow.record_event(
        events_pb2.SurveyAnswered(
            ticket_id=row.id,
            number=row.number,
            customer_id=row.customer_id,
            score=score,
            queue_id=row.queue_id,
            assignee_id=row.assignee_id,
            category_id=row.category_id,
            occur_time=to_timestamp(now),
        ),
        time=now,
    )
    uow.audit("support.SubmitSurvey", "ticket", row.id, {"score": score})
    uow.after_commit(SURVEY_ANSWERS.labels(str(score)).inc)
    return row
