"""Tables of the support database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from crm_kit.tables import MessagingTables

metadata = MetaData()
messaging = MessagingTables(metadata)

calendars = Table(
    "calendars",
    metadata,
    Column("code", String(20), primary_key=True),
    # crm_support.sla.calendar.calendar_to_dict: hours per weekday, time zone, holidays as data.
    Column("body", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

queues = Table(
    "queues",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("names", JSONB, nullable=False),
    # The service team working the queue: its managers see the queue's tickets.
    Column("team_id", String(64), nullable=False, server_default=""),
    Column("strategy", String(20), nullable=False),
    Column("member_ids", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("calendar_code", String(20), ForeignKey("calendars.code"), nullable=False),
    # Round robin's position: the member last given a ticket.
    Column("last_assignee_id", String(64), nullable=False, server_default=""),
)

categories = Table(
    "categories",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("parent_id", String(64), ForeignKey("categories.id"), nullable=True),
    Column("names", JSONB, nullable=False),
    Column("queue_id", String(64), ForeignKey("queues.id"), nullable=False),
    Column("position", Integer, nullable=False, server_default="0"),
)

sla_policies = Table(
    "sla_policies",
    metadata,
    Column("version", Integer, primary_key=True),
    # [{metric, priority, category_id, customer_tier, target_minutes}]
    Column("targets", JSONB, nullable=False),
    Column("warn_before_minutes", Integer, nullable=False),
    Column("escalate_after_minutes", Integer, nullable=False),
    Column("reassign_on_breach", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(200), nullable=False, server_default=""),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("number", BigInteger, Identity(start=1001), nullable=False, unique=True),
    Column("customer_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False, server_default=""),
    Column("product_sku", String(100), nullable=False, server_default=""),
    Column("kind", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("priority", String(20), nullable=False),
    Column("category_id", String(64), ForeignKey("categories.id"), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status", String(20), nullable=False),
    Column("queue_id", String(64), ForeignKey("queues.id"), nullable=False),
    Column("assignee_id", String(64), nullable=False, server_default=""),
    Column("parent_ticket_id", String(64), ForeignKey("tickets.id"), nullable=True),
    Column("customer_tier", String(20), nullable=False, server_default="standard"),
    # The policy version and calendar in force when the ticket was opened: a later policy never
    # rewrites a past ticket's targets.
    Column("sla_policy_version", Integer, ForeignKey("sla_policies.version"), nullable=False),
    Column("calendar_code", String(20), nullable=False),
    # {metric: target seconds}
    Column("sla_targets", JSONB, nullable=False),
    Column("first_response_at", DateTime(timezone=True), nullable=True),
    # A customer's message no public reply has answered yet starts the next-response clock.
    Column("awaiting_reply_since", DateTime(timezone=True), nullable=True),
    # {metric: [{"since": iso, "met": iso}]}: every next-response round, kept for attainment.
    Column("next_responses", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    # {metric: highest escalation level already announced}
    Column("escalations", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # When the SLA scan must look at this ticket again (the next warning, breach or escalation);
    # null when no clock runs. The scan reads only due rows, never the whole backlog.
    Column("sla_check_at", DateTime(timezone=True), nullable=True),
    # Whether the resolution clock is at warning or breached (the list's at-risk filter).
    Column("at_risk", Boolean, nullable=False, server_default="false"),
    Column("satisfaction_score", SmallInteger, nullable=False, server_default="0"),
    Column("created_by", String(200), nullable=False, server_default=""),
    Column("request_id", String(128), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("row_version", BigInteger, nullable=False, server_default="1"),
    Index("ix_tickets_created", "created_at", "id"),
    Index(
        "ix_tickets_queue_open",
        "queue_id",
        "created_at",
        postgresql_where=text("status IN ('new','open','pending_customer')"),
    ),
    Index(
        "ix_tickets_assignee_open", "assignee_id", postgresql_where=text("status IN ('new','open','pending_customer')")
    ),
    Index("ix_tickets_customer", "customer_id", "created_at"),
    Index("ix_tickets_parent", "parent_ticket_id", postgresql_where=text("parent_ticket_id IS NOT NULL")),
    Index("ix_tickets_sla_check", "sla_check_at", postgresql_where=text("sla_check_at IS NOT NULL")),
    Index("ix_tickets_at_risk", "created_at", "id", postgresql_where=text("at_risk")),
)

ticket_history = Table(
    "ticket_history",
    metadata,
    Column("ticket_id", String(64), ForeignKey("tickets.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("status", String(20), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("actor", String(200), nullable=False, server_default=""),
)

ticket_messages = Table(
    "ticket_messages",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("ticket_id", String(64), ForeignKey("tickets.id"), nullable=False),
    Column("visibility", String(20), nullable=False),
    Column("body", Text, nullable=False),
    Column("author_id", String(200), nullable=False),
    Column("author_name", String(200), nullable=False, server_default=""),
    Column("request_id", String(128), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_ticket_messages_ticket", "ticket_id", "id"),
)

ticket_attachments = Table(
    "ticket_attachments",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("ticket_id", String(64), ForeignKey("tickets.id"), nullable=False),
    Column("filename", String(200), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    # Where the bytes are in the object store (tickets/<ticket_id>/<uuid>); never shown to callers.
    Column("object_key", String(200), nullable=False, unique=True),
    Column("uploaded_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_ticket_attachments_ticket", "ticket_id", "id"),
)

surveys = Table(
    "surveys",
    metadata,
    Column("ticket_id", String(64), ForeignKey("tickets.id"), primary_key=True),
    # sha256 of the link's token: the token itself travels only in TicketResolved to notifications.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("score", SmallInteger, nullable=True),
    Column("comment", Text, nullable=False, server_default=""),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=True),
)
