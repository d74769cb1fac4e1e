"""Promotions in the notifications database: the promotion row and its lease, its recipients, the
intents of its messages and their outcomes, the suppression list. Each function runs in the
caller's unit of work; the runner (`promotion_runner`) decides the transactions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, literal_column, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.notifications.v1 import events_pb2
from crm_kit import caller
from crm_kit.db import UnitOfWork
from crm_kit.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied
from crm_kit.pagination import keyset_page
from crm_kit.protoconv import to_timestamp
from crm_notifications import domain
from crm_notifications.db import (
    inbound_messages,
    marketing_opt_outs,
    messages,
    promotion_recipients,
    promotions,
    suppressions,
)
from crm_notifications.promotions import PromotionStatus, Recipient, promotion_key, request_key
from crm_notifications.sms_segments import count_parts

SUPPRESSED_REASON = "suppressed"
FREQUENCY_CAP_REASON = "frequency cap"

# Set each recipient's message id from arrays: one fixed statement whatever the batch's size.
_SET_MESSAGE_IDS = text(
    "UPDATE promotion_recipients SET message_id = x.id "
    "FROM unnest(CAST(:customer_ids AS varchar[]), CAST(:ids AS varchar[])) AS x(customer_id, id) "
    "WHERE promotion_recipients.promotion_id = :promotion_id AND promotion_recipients.customer_id = x.customer_id"
)
_MARK_SENT = text(
    "UPDATE messages SET status = 'sent', provider_message_id = x.provider_id, "
    "attempts = messages.attempts + x.attempts, last_error = '', updated_at = :now "
    "FROM unnest(CAST(:ids AS varchar[]), CAST(:provider_ids AS varchar[]), CAST(:attempts AS int[])) "
    "AS x(id, provider_id, attempts) "
    "WHERE messages.id = x.id AND messages.status = 'pending' RETURNING messages.*"
)


@dataclass(frozen=True)
class NewPromotion:
    name: str
    channel: str
    audience: dict[str, Any]
    texts: list[dict[str, str]]
    sms_part_price_minor: int
    currency_code: str
    request_id: str
    link_url: str | None = None
    test_percent: int = 0
    winner_rule: str = ""
    winner_wait_minutes: int = 240
    email_price_minor: int = 0
    track_opens: bool = False


def _not_found(promotion_id: str) -> NotFound:
    return NotFound(
        f"promotion {promotion_id} not found", reason="PROMOTION_NOT_FOUND", metadata={"promotion_id": promotion_id}
    )


async def create(uow: UnitOfWork, new: NewPromotion, now: datetime) -> Any:
    """A draft promotion; a retry of the same request by the same caller returns the first one."""
    who = caller.current()
    created_by = who.actor if who else caller.UNKNOWN_ACTOR
    key = request_key(created_by, new.request_id)
    inserted = (
        await uow.conn.execute(
            pg_insert(promotions)
            .values(
                id=str(uuid.uuid4()),
                name=new.name,
                channel=new.channel,
                audience=new.audience,
                texts=new.texts,
                status=PromotionStatus.DRAFT.value,
                sms_part_price_minor=new.sms_part_price_minor,
                email_price_minor=new.email_price_minor,
                track_opens=new.track_opens,
                currency_code=new.currency_code,
                link_url=new.link_url,
                test_percent=new.test_percent,
                winner_rule=new.winner_rule,
                winner_wait_minutes=new.winner_wait_minutes,
                created_by=created_by,
                request_key=key,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["request_key"])
            .returning(promotions)
        )
    ).first()
    if inserted is None:
        return (await uow.conn.execute(select(promotions).where(promotions.c.request_key == key))).one()
    uow.audit("promotion.created", "promotion", inserted.id, {"channel": new.channel, "texts": len(new.texts)})
    return inserted


async def get(uow: UnitOfWork, promotion_id: str, *, lock: bool = False) -> Any:
    query = select(promotions).where(promotions.c.id == promotion_id)
    row = (await uow.conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise _not_found(promotion_id)
    return row


async def page(uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None) -> tuple[list[Any], list[Any] | None]:
    """Newest first would reorder pages while promotions are created: oldest first, keyset."""
    return await keyset_page(
        uow.conn, select(promotions), promotions.c.created_at, promotions.c.id, limit=limit, after=after
    )


async def processed(uow: UnitOfWork, promotion_ids: Sequence[str]) -> dict[str, int]:
    """How many recipients of each promotion have their message recorded."""
    if not promotion_ids:
        return {}
    rows = await uow.conn.execute(
        select(promotion_recipients.c.promotion_id, func.count())
        .where(promotion_recipients.c.promotion_id.in_(promotion_ids), promotion_recipients.c.message_id.is_not(None))
        .group_by(promotion_recipients.c.promotion_id)
    )
    return {r[0]: int(r[1]) for r in rows}


def _require_status(row: Any, allowed: frozenset[PromotionStatus], action: str) -> None:
    if PromotionStatus(row.status) not in allowed:
        raise FailedPrecondition(
            f"a {row.status} promotion cannot be {action}",
            reason="PROMOTION_STATUS",
            field_violations=[("status", f"is {row.status}; {action} needs {', '.join(sorted(allowed))}")],
        )


async def schedule(
    uow: UnitOfWork, row: Any, send_at: datetime, reachable: int, approval_above: int, now: datetime
) -> Any:
    """Draft (locked) → scheduled at send_at, announced (PromotionScheduled) and audited; an
    audience larger than approval_above waits for a manager's approval first."""
    _require_status(row, frozenset({PromotionStatus.DRAFT}), "scheduled")
    who = caller.current()
    actor = who.actor if who else caller.UNKNOWN_ACTOR
    waits = reachable > approval_above
    status = PromotionStatus.AWAITING_APPROVAL if waits else PromotionStatus.SCHEDULED
    scheduled = (
        await uow.conn.execute(
            update(promotions)
            .where(promotions.c.id == row.id)
            .values(
                status=status.value,
                send_at=send_at,
                scheduled_by=actor,
                updated_at=now,
                row_version=promotions.c.row_version + 1,
            )
            .returning(promotions)
        )
    ).one()
    uow.audit("promotion.scheduled", "promotion", row.id, {"send_at": send_at.isoformat(), "reachable": reachable})
    if not waits:
        await _announce(uow, scheduled, reachable, now)
    return scheduled


async def _announce(uow: UnitOfWork, row: Any, reachable: int, now: datetime) -> None:
    await uow.record_event(
        events_pb2.PromotionScheduled(
            promotion_id=row.id,
            name=row.name,
            channel=row.channel,
            reachable=reachable,
            send_time=to_timestamp(row.send_at),
            actor=row.approved_by or row.scheduled_by,
            schedule_time=to_timestamp(now),
        ),
        time=now,
    )


async def approve(uow: UnitOfWork, promotion_id: str, reachable: int, now: datetime) -> Any:
    """awaiting_approval → scheduled, by someone other than who scheduled it (four eyes); a send
    time that passed while it waited becomes now."""
    row = await get(uow, promotion_id, lock=True)
    _require_status(row, frozenset({PromotionStatus.AWAITING_APPROVAL}), "approved")
    who = caller.current()
    actor = who.actor if who else caller.UNKNOWN_ACTOR
    if actor == row.scheduled_by:
        raise PermissionDenied("a promotion is approved by someone other than who scheduled it", reason="SAME_APPROVER")
    approved = (
        await uow.conn.execute(
            update(promotions)
            .where(promotions.c.id == row.id)
            .values(
                status=PromotionStatus.SCHEDULED.value,
                approved_by=actor,
                send_at=func.greatest(promotions.c.send_at, now),
                updated_at=now,
                row_version=promotions.c.row_version + 1,
            )
            .returning(promotions)
        )
    ).one()
    uow.audit("promotion.approved", "promotion", row.id, {"scheduled_by": row.scheduled_by})
    await _announce(uow, approved, reachable, now)
    return approved


def check_version(row: Any, row_version: int) -> None:
    if row_version and row_version != row.row_version:
        raise Aborted(
            f"promotion {row.id} changed since version {row_version}",
            reason="PROMOTION_CHANGED",
            metadata={"row_version": str(row.row_version)},
        )


async def change_status(
    uow: UnitOfWork,
    promotion_id: str,
    action: str,
    allowed: frozenset[PromotionStatus],
    target: PromotionStatus,
    now: datetime,
) -> Any:
    """Pause, resume or cancel (the row locked, so a runner's batch commit and this one are ordered)."""
    row = await get(uow, promotion_id, lock=True)
    _require_status(row, allowed, action)
    values: dict[str, Any] = {"status": target.value, "updated_at": now, "row_version": promotions.c.row_version + 1}
    if target == PromotionStatus.CANCELLED:
        values["completed_at"] = now
    changed = (
        await uow.conn.execute(
            update(promotions).where(promotions.c.id == row.id).values(**values).returning(promotions)
        )
    ).one()
    uow.audit(f"promotion.{action}", "promotion", row.id, {"from": row.status})
    return changed


async def claim_due(uow: UnitOfWork, owner: str, now: datetime, lease: timedelta) -> Any | None:
    """Take the lease of one promotion due to send (scheduled and its time has come, or sending)
    whose lease is free, expired or already the owner's; a scheduled one becomes sending. None when
    none is due."""
    due = (
        select(promotions.c.id)
        .where(
            promotions.c.status.in_((PromotionStatus.SCHEDULED.value, PromotionStatus.SENDING.value)),
            promotions.c.send_at <= now,
            # An A/B test waiting for its winner is no runner's business until then.
            or_(promotions.c.wait_until.is_(None), promotions.c.wait_until <= now),
            or_(
                promotions.c.lease_until.is_(None),
                promotions.c.lease_until < now,
                # Our own lease, left by this runner before a restart.
                promotions.c.lease_owner == owner,
            ),
        )
        .order_by(promotions.c.send_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        await uow.conn.execute(
            update(promotions)
            .where(promotions.c.id == due)
            .values(
                status=PromotionStatus.SENDING.value,
                lease_owner=owner,
                lease_until=now + lease,
                updated_at=now,
            )
            .returning(promotions)
        )
    ).first()


async def hold(uow: UnitOfWork, promotion_id: str, owner: str, now: datetime, lease: timedelta) -> Any | None:
    """Renew the lease while the promotion is still sending and still ours; None when it was paused,
    cancelled or taken over (the runner stops: what it recorded so far stands)."""
    return (
        await uow.conn.execute(
            update(promotions)
            .where(
                promotions.c.id == promotion_id,
                promotions.c.lease_owner == owner,
                promotions.c.status == PromotionStatus.SENDING.value,
            )
            .values(lease_until=now + lease)
            .returning(promotions)
        )
    ).first()


async def release(uow: UnitOfWork, promotion_id: str, owner: str) -> None:
    await uow.conn.execute(
        update(promotions)
        .where(promotions.c.id == promotion_id, promotions.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


async def add_recipients(
    uow: UnitOfWork,
    promotion_id: str,
    members: Sequence[Recipient],
    cursor: str,
    resolved: bool,
    now: datetime,
    variants: Mapping[str, str | None] | None = None,
) -> None:
    """One page of the resolved audience (each member's A/B variant, by customer, when it has
    variants) and the cursor after it, in one transaction: a restart resumes after the last page
    saved (a page saved twice adds nobody twice: the key is the customer)."""
    chosen = variants or {}
    added = 0
    if members:
        result: Any = await uow.conn.execute(
            pg_insert(promotion_recipients)
            .values(
                [
                    {
                        "promotion_id": promotion_id,
                        "customer_id": m.customer_id,
                        "address": m.address,
                        "locale": m.locale,
                        "full_name": m.full_name,
                        "variant": chosen.get(m.customer_id),
                    }
                    for m in members
                ]
            )
            .on_conflict_do_nothing(index_elements=["promotion_id", "customer_id"])
            .returning(literal_column("1"))
        )
        added = len(result.all())
    await uow.conn.execute(
        update(promotions)
        .where(promotions.c.id == promotion_id)
        .values(
            resolve_cursor=cursor,
            audience_resolved=resolved,
            recipients=promotions.c.recipients + added,
            updated_at=now,
        )
    )


@dataclass(frozen=True)
class FrequencyCap:
    """At most `messages` promotions on a channel per person within `days` (0 messages: no cap)."""

    messages: int = 0
    days: int = 7


async def next_recipients(uow: UnitOfWork, promotion: Any, limit: int, cap: FrequencyCap, now: datetime) -> list[Any]:
    """The next recipients without a message (locked; during an A/B test only those with a
    variant), each with why it may no longer receive this advertising, if it may not (`held`): the
    address is on the suppression list or the customer withdrew since ("suppressed"), or the person
    had their share of promotions on the channel lately ("frequency cap")."""
    r = promotion_recipients
    suppressed = (
        select(literal_column("1"))
        .where(suppressions.c.channel == promotion.channel, suppressions.c.address == r.c.address)
        .exists()
    )
    opted_out = (
        select(literal_column("1"))
        .where(marketing_opt_outs.c.customer_id == r.c.customer_id, marketing_opt_outs.c.channel == promotion.channel)
        .exists()
    )
    reasons = [(or_(suppressed, opted_out), SUPPRESSED_REASON)]
    if cap.messages:
        recent = (
            select(func.count())
            .where(
                messages.c.customer_id == r.c.customer_id,
                messages.c.promotion_id.is_not(None),
                messages.c.channel == promotion.channel,
                messages.c.status == domain.MessageStatus.SENT.value,
                messages.c.created_at > now - timedelta(days=cap.days),
            )
            .scalar_subquery()
        )
        reasons.append((recent >= cap.messages, FREQUENCY_CAP_REASON))
    waiting = [r.c.variant.is_not(None)] if promotion.test_percent and not promotion.winner_variant else []
    query = (
        select(r, case(*reasons, else_=None).label("held"))
        .where(r.c.promotion_id == promotion.id, r.c.message_id.is_(None), *waiting)
        .order_by(r.c.customer_id)
        .limit(limit)
        .with_for_update(of=r, skip_locked=True)
    )
    return list((await uow.conn.execute(query)).all())


@dataclass(frozen=True)
class PromotionMessage:
    customer_id: str
    recipient: str
    locale: str
    subject: str
    body: str
    # Why it is not sent after all (SUPPRESSED_REASON, FREQUENCY_CAP_REASON), or None.
    held: str | None
    # Its short link's code, when the promotion has a link.
    link_code: str | None = None
    variant: str | None = None


async def record_intents(
    uow: UnitOfWork, promotion: Any, batch: Sequence[PromotionMessage], now: datetime
) -> list[Any]:
    """The batch's message intents (pending, or suppressed at the last moment) and each recipient's
    message id, in one transaction; returns the pending rows to send."""
    if not batch:
        return []
    rows = [
        {
            "id": str(uuid.uuid4()),
            "idempotency_key": promotion_key(promotion.id, m.customer_id),
            "channel": promotion.channel,
            "recipient": m.recipient,
            "body": m.body,
            "subject": m.subject,
            "locale": m.locale,
            "status": (domain.MessageStatus.SUPPRESSED if m.held else domain.MessageStatus.PENDING).value,
            "lead_id": "",
            "order_id": "",
            "last_error": m.held or "",
            "sms_parts": count_parts(m.body).parts if promotion.channel == domain.SMS else None,
            "promotion_id": promotion.id,
            "customer_id": m.customer_id,
            "link_code": m.link_code,
            "variant": m.variant,
            "created_at": now,
            "updated_at": now,
        }
        for m in batch
    ]
    inserted = (await uow.conn.execute(pg_insert(messages).values(rows).returning(messages))).all()
    await uow.conn.execute(
        _SET_MESSAGE_IDS,
        {
            "promotion_id": promotion.id,
            "customer_ids": [r.customer_id for r in inserted],
            "ids": [r.id for r in inserted],
        },
    )
    return [r for r in inserted if r.status == domain.MessageStatus.PENDING.value]


async def pending_messages(uow: UnitOfWork, promotion_id: str, limit: int) -> list[Any]:
    """Messages whose intent was recorded but whose send was never confirmed (a runner stopped
    between the two): sent again under the same key, which the provider de-duplicates."""
    return list(
        (
            await uow.conn.execute(
                select(messages)
                .where(messages.c.promotion_id == promotion_id, messages.c.status == domain.MessageStatus.PENDING.value)
                .order_by(messages.c.id)
                .limit(limit)
            )
        ).all()
    )


async def mark_sent_many(uow: UnitOfWork, sent: Sequence[tuple[str, str, int]], now: datetime) -> list[Any]:
    """(message id, provider id, attempts) of a batch, marked sent in one statement (only those
    still pending); each announced by NotificationSent. Returns the rows marked."""
    if not sent:
        return []
    result = await uow.conn.execute(
        _MARK_SENT,
        {
            "ids": [m for m, _, _ in sent],
            "provider_ids": [p for _, p, _ in sent],
            "attempts": [a for _, _, a in sent],
            "now": now,
        },
    )
    return list(result.all())


async def has_work(uow: UnitOfWork, promotion_id: str) -> bool:
    """Whether any recipient still has no message, or any message is still pending."""
    todo: Any = select(literal_column("1")).where(
        promotion_recipients.c.promotion_id == promotion_id, promotion_recipients.c.message_id.is_(None)
    )
    pending: Any = select(literal_column("1")).where(
        messages.c.promotion_id == promotion_id, messages.c.status == domain.MessageStatus.PENDING.value
    )
    return bool((await uow.conn.execute(select(todo.exists() | pending.exists()))).scalar())


async def complete(uow: UnitOfWork, promotion_id: str, owner: str, now: datetime) -> Any | None:
    done = (
        await uow.conn.execute(
            update(promotions)
            .where(
                promotions.c.id == promotion_id,
                promotions.c.lease_owner == owner,
                promotions.c.status == PromotionStatus.SENDING.value,
            )
            .values(
                status=PromotionStatus.COMPLETED.value,
                completed_at=now,
                updated_at=now,
                lease_owner=None,
                lease_until=None,
            )
            .returning(promotions)
        )
    ).first()
    if done is not None:
        uow.audit("promotion.completed", "promotion", promotion_id, {"recipients": done.recipients})
    return done


_REPORT = (
    "SELECT {by} AS key, count(*) AS recipients, "
    "count(*) FILTER (WHERE m.status = 'sent') AS sent, "
    "count(*) FILTER (WHERE m.delivery_status = 'delivered') AS delivered, "
    "count(*) FILTER (WHERE m.delivery_status = 'undelivered') AS undelivered, "
    "count(*) FILTER (WHERE m.status = 'failed') AS failed, "
    "count(*) FILTER (WHERE m.status = 'suppressed') AS suppressed, "
    "count(s.address) AS opted_out, "
    "count(m.clicked_at) AS clicked, "
    "count(m.opened_at) AS opened, "
    "coalesce(sum(m.sms_parts) FILTER (WHERE m.status = 'sent'), 0) AS sms_parts "
    "FROM messages m LEFT JOIN suppressions s "
    "ON s.promotion_id = m.promotion_id AND s.channel = m.channel AND s.address = m.recipient "
    "WHERE m.promotion_id = :promotion_id GROUP BY 1 ORDER BY 1"
)
_REPORT_FIELDS = (
    "recipients",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "suppressed",
    "opted_out",
    "clicked",
    "opened",
    "sms_parts",
)


_REPORTS = {
    "locale": text(_REPORT.format(by="m.locale")),
    # Messages without a variant (a promotion without variants) are not in the split.
    "variant": text(_REPORT.format(by="m.variant").replace("GROUP BY", "AND m.variant IS NOT NULL GROUP BY")),
}


async def report(uow: UnitOfWork, promotion_id: str, *, by: str = "locale") -> list[dict[str, Any]]:
    """Per text locale (or A/B variant): the promotion's messages by outcome, the refusals they
    drew, SMS parts sent."""
    rows = await uow.conn.execute(_REPORTS[by], {"promotion_id": promotion_id})
    return [{by: r.key, **{f: int(getattr(r, f)) for f in _REPORT_FIELDS}} for r in rows]


async def wait_for_winner(uow: UnitOfWork, promotion_id: str, until: datetime) -> None:
    """The test group is all sent: no runner takes the promotion again before `until`."""
    await uow.conn.execute(
        update(promotions)
        .where(promotions.c.id == promotion_id, promotions.c.wait_until.is_(None))
        .values(wait_until=until)
    )


async def postpone_winner(uow: UnitOfWork, promotion_id: str, until: datetime) -> None:
    await uow.conn.execute(update(promotions).where(promotions.c.id == promotion_id).values(wait_until=until))


async def variant_scores(uow: UnitOfWork, promotion_id: str) -> dict[str, tuple[int, int, int]]:
    """Per A/B variant: (messages sent, messages clicked, messages opened)."""
    rows = await uow.conn.execute(
        select(
            messages.c.variant,
            func.count().filter(messages.c.status == domain.MessageStatus.SENT.value),
            func.count(messages.c.clicked_at),
            func.count(messages.c.opened_at),
        )
        .where(messages.c.promotion_id == promotion_id, messages.c.variant.is_not(None))
        .group_by(messages.c.variant)
    )
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}


async def choose_winner(uow: UnitOfWork, promotion_id: str, winner: str, scores: dict[str, Any], now: datetime) -> None:
    """The winner goes to every recipient still waiting, in one transaction with the choice."""
    await uow.conn.execute(
        update(promotions)
        .where(promotions.c.id == promotion_id, promotions.c.winner_variant == "")
        .values(winner_variant=winner, winner_at=now, wait_until=None, updated_at=now)
    )
    await uow.conn.execute(
        update(promotion_recipients)
        .where(promotion_recipients.c.promotion_id == promotion_id, promotion_recipients.c.variant.is_(None))
        .values(variant=winner)
    )
    uow.audit("promotion.winner_chosen", "promotion", promotion_id, {"winner": winner, "scores": scores})


# ---------------------------------------------------------------- what comes back: replies, refusals, receipts


@dataclass(frozen=True)
class Inbound:
    provider_message_id: str
    from_number: str
    to_number: str
    text: str
    action: str
    received_at: datetime


async def record_inbound(uow: UnitOfWork, inbound: Inbound) -> bool:
    """Keep an inbound SMS once; False when its provider id was recorded before (a retry)."""
    inserted = await uow.conn.execute(
        pg_insert(inbound_messages)
        .values(
            provider_message_id=inbound.provider_message_id,
            from_number=inbound.from_number,
            to_number=inbound.to_number,
            text=inbound.text,
            action=inbound.action,
            received_at=inbound.received_at,
        )
        .on_conflict_do_nothing(index_elements=["provider_message_id"])
        .returning(inbound_messages.c.provider_message_id)
    )
    return inserted.first() is not None


async def last_promotion_message(uow: UnitOfWork, recipient: str) -> Any | None:
    """(promotion_id, locale) of the latest promotion message to an address: what a reply answers."""
    return (
        await uow.conn.execute(
            select(messages.c.promotion_id, messages.c.locale)
            .where(messages.c.recipient == recipient, messages.c.promotion_id.is_not(None))
            .order_by(messages.c.created_at.desc())
            .limit(1)
        )
    ).first()


@dataclass(frozen=True)
class Suppression:
    channel: str
    address: str
    source: str
    evidence: str
    promotion_id: str | None
    at: datetime


async def suppress(uow: UnitOfWork, suppression: Suppression) -> bool:
    """Put an address on the suppression list; False when it was there already (the first refusal
    stands)."""
    added = await uow.conn.execute(
        pg_insert(suppressions)
        .values(
            channel=suppression.channel,
            address=suppression.address,
            source=suppression.source,
            evidence=suppression.evidence,
            promotion_id=suppression.promotion_id,
            created_at=suppression.at,
        )
        .on_conflict_do_nothing(index_elements=["channel", "address"])
        .returning(suppressions.c.address)
    )
    return added.first() is not None


async def lift_suppression(uow: UnitOfWork, channel: str, address: str) -> bool:
    """Take an address off the suppression list (the person asked for advertising again); False
    when it was not on it. The refusal stays in the audit log and the inbound messages."""
    lifted = await uow.conn.execute(
        delete(suppressions)
        .where(suppressions.c.channel == channel, suppressions.c.address == address)
        .returning(suppressions.c.address)
    )
    return lifted.first() is not None


async def recipient(uow: UnitOfWork, promotion_id: str, customer_id: str) -> Any | None:
    """(address, channel) a promotion reached a customer at, or None."""
    return (
        await uow.conn.execute(
            select(promotion_recipients.c.address, promotions.c.channel)
            .join(promotions, promotions.c.id == promotion_recipients.c.promotion_id)
            .where(
                promotion_recipients.c.promotion_id == promotion_id, promotion_recipients.c.customer_id == customer_id
            )
        )
    ).first()


async def pending_by_key_prefix(uow: UnitOfWork, prefix: str, before: datetime, limit: int) -> list[Any]:
    """Pending messages of a kind (their key's prefix) last touched before `before`."""
    return list(
        (
            await uow.conn.execute(
                select(messages)
                .where(
                    messages.c.idempotency_key.startswith(prefix, autoescape=True),
                    messages.c.status == domain.MessageStatus.PENDING.value,
                    messages.c.updated_at < before,
                )
                .limit(limit)
            )
        ).all()
    )


_RECORD_RECEIPT = text(
    "UPDATE messages SET delivery_status = :status, delivered_at = :at "
    "WHERE provider_message_id = :provider_id AND channel = 'sms' "
    "AND (delivery_status IS NULL OR (delivery_status = 'undelivered' AND :status = 'delivered')) "
    "RETURNING id, promotion_id, customer_id, delivery_status AS status, delivered_at AS occurred_at"
)


async def awaiting_receipts(uow: UnitOfWork, since: datetime, limit: int) -> list[str]:
    """Provider ids of the SMS sent since `since` whose fate no receipt has settled, oldest first."""
    rows = await uow.conn.execute(
        select(messages.c.provider_message_id)
        .where(
            messages.c.created_at >= since,
            messages.c.channel == domain.SMS,
            messages.c.status == domain.MessageStatus.SENT.value,
            messages.c.delivery_status.is_(None),
            messages.c.provider_message_id.is_not(None),
        )
        .order_by(messages.c.created_at)
        .limit(limit)
    )
    return [str(r[0]) for r in rows]


async def record_receipt(uow: UnitOfWork, provider_message_id: str, status: str, at: datetime) -> list[Any]:
    """A delivery receipt's status on the message(s) with that provider id, unless already final
    (a delivered after an undelivered counts: an operator's later retry got through). A receipt for
    an id no message has yet is kept for `apply_early_receipts` (its send may still be recording)."""
    params = {"status": status, "at": at, "provider_id": provider_message_id}
    rows = list((await uow.conn.execute(_RECORD_RECEIPT, params)).all())
    if not rows:
        await keep_early_receipt(uow, params)
    return rows


async def keep_early_receipt(uow: UnitOfWork, params: dict[str, Any]) -> None:
    """Keep a receipt the update found no message for. Each statement reads its own snapshot, so the
    send may have committed between the update and this insert: the receipt is kept unless a message
    with that id is visible that would refuse it (already final), never merely because one exists."""
    await uow.conn.execute(_KEEP_EARLY_RECEIPT, params)


# Keep a receipt whose message is not known by the provider's id yet (a later delivered wins).
_KEEP_EARLY_RECEIPT = text(
    "INSERT INTO early_receipts (provider_message_id, status, occurred_at) "
    "SELECT CAST(:provider_id AS varchar), CAST(:status AS varchar), CAST(:at AS timestamptz) "
    "WHERE NOT EXISTS (SELECT 1 FROM messages WHERE provider_message_id = CAST(:provider_id AS varchar)"
    " AND channel = 'sms' AND delivery_status IS NOT NULL"
    " AND NOT (delivery_status = 'undelivered' AND CAST(:status AS varchar) = 'delivered')) "
    "ON CONFLICT (provider_message_id) DO UPDATE SET status = excluded.status, occurred_at = excluded.occurred_at "
    "WHERE early_receipts.status <> 'delivered'"
)
# Apply kept receipts whose message now has the provider's id, and forget them; one statement.
_APPLY_EARLY_RECEIPTS = text(
    "WITH applied AS ("
    " UPDATE messages m SET delivery_status = e.status, delivered_at = e.occurred_at"
    " FROM early_receipts e WHERE m.provider_message_id = e.provider_message_id AND m.channel = 'sms'"
    " AND (m.delivery_status IS NULL OR (m.delivery_status = 'undelivered' AND e.status = 'delivered'))"
    " RETURNING m.id, m.promotion_id, m.customer_id, m.provider_message_id, e.status, e.occurred_at),"
    " gone AS (DELETE FROM early_receipts e WHERE e.received_at < :expired"
    " OR EXISTS (SELECT 1 FROM messages m WHERE m.provider_message_id = e.provider_message_id))"
    " SELECT id, promotion_id, customer_id, status, occurred_at FROM applied"
)


async def apply_early_receipts(uow: UnitOfWork, now: datetime) -> list[Any]:
    """Kept receipts applied to their messages (MessageDelivered is the caller's); kept ones a day
    old that never matched a message are dropped."""
    return list((await uow.conn.execute(_APPLY_EARLY_RECEIPTS, {"expired": now - timedelta(days=1)})).all())


async def record_marketing_consent(
    uow: UnitOfWork, customer_id: str, channel: str, granted: bool, at: datetime
) -> None:
    """A customer's advertising consent on a channel as customers last recorded it (in time order:
    an older event changes nothing)."""
    if granted:
        await uow.conn.execute(
            delete(marketing_opt_outs).where(
                marketing_opt_outs.c.customer_id == customer_id,
                marketing_opt_outs.c.channel == channel,
                marketing_opt_outs.c.occurred_at <= at,
            )
        )
        return
    insert = pg_insert(marketing_opt_outs).values(customer_id=customer_id, channel=channel, occurred_at=at)
    await uow.conn.execute(
        insert.on_conflict_do_update(
            index_elements=["customer_id", "channel"],
            set_={"occurred_at": insert.excluded.occurred_at},
            where=marketing_opt_outs.c.occurred_at < insert.excluded.occurred_at,
        )
    )


_FOLLOW = text(
    "WITH m AS (SELECT id, promotion_id, customer_id, channel, clicked_at FROM messages WHERE link_code = :code),"
    " first AS (UPDATE messages SET clicked_at = :now FROM m"
    " WHERE messages.id = m.id AND messages.clicked_at IS NULL RETURNING messages.id)"
    " SELECT m.id, m.promotion_id, m.customer_id, m.channel, p.link_url, p.name,"
    " EXISTS (SELECT 1 FROM first) AS first_click"
    " FROM m JOIN promotions p ON p.id = m.promotion_id"
)


async def follow_link(uow: UnitOfWork, code: str, now: datetime) -> Any | None:
    """The message a short link names, its promotion's landing page, and whether this is its first
    follow (recorded); None for a code no message has."""
    return (await uow.conn.execute(_FOLLOW, {"code": code, "now": now})).first()


# The first open of a tracked e-mail: only a message of a promotion that tracks opens (a code of
# one that does not is unknown here, as a code of no message is).
_OPEN = text(
    "WITH m AS (SELECT m.id, m.opened_at FROM messages m JOIN promotions p ON p.id = m.promotion_id"
    " WHERE m.link_code = :code AND p.track_opens),"
    " first AS (UPDATE messages SET opened_at = :now FROM m"
    " WHERE messages.id = m.id AND messages.opened_at IS NULL RETURNING messages.id)"
    " SELECT m.id, EXISTS (SELECT 1 FROM first) AS first_open FROM m"
)


async def record_open(uow: UnitOfWork, code: str, now: datetime) -> bool | None:
    """Whether this was the tracked message's first open (recorded); None for a code no message of
    a promotion that tracks opens has."""
    row = (await uow.conn.execute(_OPEN, {"code": code, "now": now})).first()
    return None if row is None else bool(row.first_open)
