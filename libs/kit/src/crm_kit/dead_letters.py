"""DeadLetterService: every service's dead letters, listable, inspectable and replayable over gRPC.

The bus records an event as a dead letter after `consumer_max_deliver` failed deliveries, or at
once for a poison message (see `crm_kit.bus`). The chassis registers this servicer on every
backend service's gRPC port (`crm_kit.service.Service`), so an operator reaches any service's
letters with `crm-admin dlq ... --service <name>`.

Replay republishes the stored payload with the stored headers through JetStream, to the
service's own replay subject for the consumer (`crm.<service>.replays.<consumer>`): a service's
NATS user may publish only its own subjects, so it cannot put another service's event back on
that service's subject (docs/security.md, "The event bus"). The replay goes:

- with a NEW `Nats-Msg-Id` (`<event id>:replay:<dead letter id>`), so JetStream's duplicate
  window does not drop it as the original event's duplicate; retrying the same letter's replay
  (say the publish went through but the commit failed) reuses that id and is de-duplicated;
- with the SAME `ce-id`, so an inbox that already handled the event has no second effect.

The service's replay consumer hands it to the consumer that dead-lettered it, and to no other
(its inbox, consumer and `ce-id`, turns a replay of an event it did handle into a no-op ack).
The letter is marked replayed (`replayed_at`) in the transaction that publishes it, before the
publish, hidden from the default list, and a second replay is FAILED_PRECONDITION. A replay that
fails again is dead-lettered again as a new letter: its insert waits for the replaying
transaction, so it never meets the old letter still open.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from sqlalchemy import func, select, update

from crm.admin.v1 import admin_pb2, admin_pb2_grpc
from crm_kit import protoconv
from crm_kit.bus import EventBus
from crm_kit.db import Database
from crm_kit.errors import FailedPrecondition, NotFound, Unavailable, require

log = logging.getLogger(__name__)

SERVICE_NAME: str = admin_pb2.DESCRIPTOR.services_by_name["DeadLetterService"].full_name

# Headers NATS interprets on publish (Nats-Msg-Id, Nats-Expected-*): never copied from the letter.
_NATS_HEADER_PREFIX = "nats-"


def replay_msg_id(event_id: str | None, dead_letter_id: int) -> str:
    """The `Nats-Msg-Id` of a letter's replay: new to JetStream, stable across retries of it."""
    return f"{event_id or 'dead-letter'}:replay:{dead_letter_id}"


def replay_headers(stored: dict[str, Any], event_id: str | None, dead_letter_id: int) -> dict[str, str]:
    """The stored headers (same `ce-id`, trace context) with a new `Nats-Msg-Id`."""
    headers = {str(k): str(v) for k, v in stored.items() if not str(k).lower().startswith(_NATS_HEADER_PREFIX)}
    headers["Nats-Msg-Id"] = replay_msg_id(event_id, dead_letter_id)
    headers["crm-replay-of"] = str(dead_letter_id)
    return headers


def dead_letter_to_proto(row: Any) -> admin_pb2.DeadLetter:
    return admin_pb2.DeadLetter(
        id=row.id,
        consumer=row.consumer,
        subject=row.subject,
        event_id=row.event_id or "",
        headers={str(k): str(v) for k, v in (row.headers or {}).items()},
        payload=row.payload,
        error=row.error,
        deliveries=row.deliveries,
        create_time=protoconv.to_timestamp(row.created_at),
        replay_time=protoconv.to_timestamp(row.replayed_at),
    )


class DeadLetterServicer(admin_pb2_grpc.DeadLetterServiceServicer):
    """Lists, shows and replays the dead letters in this service's own database."""

    def __init__(self, db: Database, bus: EventBus) -> None:
        self.db = db
        self.bus = bus

    async def ListDeadLetters(
        self, request: admin_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListDeadLettersResponse:
        """Newest first (by id, which grows with insertion); the page token is the last id."""
        limit = protoconv.page_size(request.page_size)
        after = protoconv.page_position(request.page_token, int)
        table = self.db.tables.dead_letters
        query = select(table).order_by(table.c.id.desc()).limit(limit + 1)
        if request.consumer:
            query = query.where(table.c.consumer == request.consumer)
        if not request.include_replayed:
            query = query.where(table.c.replayed_at.is_(None))
        if after:
            query = query.where(table.c.id < int(after[0]))
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        page = rows[:limit]
        return admin_pb2.ListDeadLettersResponse(
            dead_letters=[dead_letter_to_proto(r) for r in page],
            next_page_token=protoconv.encode_page_token(page[-1].id) if len(rows) > limit else "",
        )

    async def GetDeadLetter(
        self, request: admin_pb2.GetDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetDeadLetterResponse:
        require({"dead_letter_id": request.dead_letter_id})
        table = self.db.tables.dead_letters
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(table).where(table.c.id == request.dead_letter_id))).first()
        if row is None:
            raise NotFound(f"dead letter {request.dead_letter_id} not found")
        return admin_pb2.GetDeadLetterResponse(dead_letter=dead_letter_to_proto(row))

    async def ReplayDeadLetter(
        self, request: admin_pb2.ReplayDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ReplayDeadLetterResponse:
        """Mark the letter replayed and republish it in one transaction under its row lock:
        concurrent replays of one letter publish once, the second one is FAILED_PRECONDITION."""
        require({"dead_letter_id": request.dead_letter_id})
        if not self.bus.connected:
            raise Unavailable("the event bus is not connected; retry shortly")
        table = self.db.tables.dead_letters
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.conn.execute(select(table).where(table.c.id == request.dead_letter_id).with_for_update())
            ).first()
            if row is None:
                raise NotFound(f"dead letter {request.dead_letter_id} not found")
            if row.replayed_at is not None:
                raise FailedPrecondition(
                    f"dead letter {row.id} was already replayed at {row.replayed_at.isoformat()}",
                    metadata={"replay_time": row.replayed_at.isoformat()},
                )
            # Marked before the publish: a replay that fails again is recorded as a new letter,
            # and the consumer's insert of it waits for this transaction rather than meeting this
            # letter still open (ON CONFLICT DO NOTHING would drop it: the replay lost). A failed
            # publish rolls the mark back.
            replayed = (
                await uow.conn.execute(
                    update(table).where(table.c.id == row.id).values(replayed_at=func.now()).returning(table)
                )
            ).one()
            try:
                await self.bus.publish_raw(
                    self.bus.replay_subject(row.consumer),
                    row.payload,
                    replay_headers(row.headers or {}, row.event_id, row.id),
                )
            except Exception as exc:
                log.warning("dead letter replay publish failed", exc_info=True, extra={"dead_letter_id": row.id})
                raise Unavailable(f"publishing the replay failed: {exc!r}") from exc
            uow.audit(
                "admin.ReplayDeadLetter",
                "dead_letter",
                str(row.id),
                {"consumer": row.consumer, "subject": row.subject, "event_id": row.event_id},
            )
        log.info(
            "dead letter replayed",
            extra={"dead_letter_id": row.id, "consumer": row.consumer, "event_id": row.event_id},
        )
        return admin_pb2.ReplayDeadLetterResponse(dead_letter=dead_letter_to_proto(replayed))
