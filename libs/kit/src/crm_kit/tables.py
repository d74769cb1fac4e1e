"""The chassis tables every service owns in its own database: outbox, inbox, dead letters, audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

DEAD_LETTER_DEDUP_INDEX = "uq_dead_letters_open_event"


class MessagingTables:
    """Defines the outbox, inbox and dead-letter tables on a service's MetaData."""

    def __init__(self, metadata: MetaData) -> None:
        self.outbox = Table(
            "outbox",
            metadata,
            Column("id", BigInteger, Identity(), primary_key=True),
            Column("event_id", String(64), nullable=False, unique=True),
            Column("subject", String(200), nullable=False),
            Column("event_type", String(200), nullable=False),
            Column("payload", LargeBinary, nullable=False),
            Column("headers", JSONB, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        )
        self.inbox = Table(
            "inbox",
            metadata,
            Column("consumer", String(100), primary_key=True),
            Column("event_id", String(64), primary_key=True),
            Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        )
        self.dead_letters = Table(
            "dead_letters",
            metadata,
            Column("id", BigInteger, Identity(), primary_key=True),
            Column("consumer", String(100), nullable=False),
            Column("subject", String(200), nullable=False),
            Column("event_id", String(64), nullable=True),
            Column("headers", JSONB, nullable=False),
            Column("payload", LargeBinary, nullable=False),
            Column("error", Text, nullable=False),
            Column("deliveries", Integer, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Column("replayed_at", DateTime(timezone=True), nullable=True),
            Index("ix_dead_letters_consumer", "consumer"),
            # One open dead letter per consumer and event: a consumer killed after recording it and
            # before terminating the message gets it again, and must not record it twice.
            Index(
                DEAD_LETTER_DEDUP_INDEX,
                "consumer",
                "event_id",
                unique=True,
                postgresql_where=text("replayed_at IS NULL"),
            ),
        )
        # Who changed what: written by UnitOfWork.audit in the same transaction as the change.
        self.audit_log = Table(
            "audit_log",
            metadata,
            Column("id", BigInteger, Identity(), primary_key=True),
            Column("actor", String(200), nullable=False),
            Column("action", String(200), nullable=False),
            Column("record_type", String(64), nullable=False),
            Column("record_id", String(64), nullable=False),
            Column("request_id", String(200), nullable=False, server_default=""),
            Column("details", JSONB, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Index("ix_audit_log_record", "record_type", "record_id"),
            Index("ix_audit_log_actor", "actor"),
        )
        # The statements of every unit of work, built once: given parameter sets at execution,
        # each is one SQL text and one cache entry however many rows it writes (crm_kit.db).
        self.outbox_insert = insert(self.outbox)
        self.audit_insert = insert(self.audit_log)
        # A transaction with events and audit records writes both in one round trip: the rows as
        # arrays (one SQL text whatever their number), the outbox's in the order recorded (the
        # relay publishes by id), the outbox insert a data-modifying CTE (run though unreferenced).
        self.outbox_and_audit_insert = text(
            "WITH events AS ("
            "INSERT INTO outbox (event_id, subject, event_type, payload, headers) "
            "SELECT e, s, t, p, CAST(h AS jsonb) FROM unnest(CAST(:event_ids AS varchar[]), "
            "CAST(:subjects AS varchar[]), CAST(:event_types AS varchar[]), CAST(:payloads AS bytea[]), "
            "CAST(:headers AS text[])) WITH ORDINALITY AS x(e, s, t, p, h, n) ORDER BY n) "
            "INSERT INTO audit_log (actor, request_id, action, record_type, record_id, details) "
            "SELECT a, r, c, k, i, CAST(d AS jsonb) FROM unnest(CAST(:actors AS varchar[]), "
            "CAST(:request_ids AS varchar[]), CAST(:actions AS varchar[]), CAST(:record_types AS varchar[]), "
            "CAST(:record_ids AS varchar[]), CAST(:details AS text[])) WITH ORDINALITY AS y(a, r, c, k, i, d, n) "
            "ORDER BY n"
        )
        self.inbox_claim = (
            pg_insert(self.inbox)
            .values(consumer=bindparam("consumer"), event_id=bindparam("event_id"))
            .on_conflict_do_nothing()
            .returning(self.inbox.c.event_id)
        )
        # A batch's events in one statement whatever its size, as array parameters: (consumer,
        # event id) pairs, since a batch of one durable mixes event types, each its own inbox key.
        self.inbox_claim_each = text(
            "INSERT INTO inbox (consumer, event_id) "
            "SELECT * FROM unnest(CAST(:consumers AS varchar[]), CAST(:event_ids AS varchar[])) "
            "ON CONFLICT DO NOTHING RETURNING consumer, event_id"
        )
