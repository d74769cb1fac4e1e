"""initial schema: tickets, their history and messages, queues, categories, SLA policies and
calendars (Israel and Iran shipped), surveys; the chassis's outbox, inbox, dead letters and audit log

Revision ID: 0001
Revises:
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from crm_kit.migrations import add_dead_letter_dedup_index, create_audit_table, create_messaging_tables
from crm_support.seed import CATEGORIES, QUEUES, SLA_POLICY_V1, shipped_calendars

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('new','open','pending_customer')"


def _tables() -> None:
    op.create_table(
        "calendars",
        sa.Column("code", sa.String(20), primary_key=True),
        sa.Column("body", postgresql.JSONB(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_table(
        "queues",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("names", postgresql.JSONB(), nullable=False),
        sa.Column("team_id", sa.String(64), server_default="", nullable=False),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("member_ids", postgresql.ARRAY(sa.String(64)), server_default="{}", nullable=False),
        sa.Column("calendar_code", sa.String(20), sa.ForeignKey("calendars.code"), nullable=False),
        sa.Column("last_assignee_id", sa.String(64), server_default="", nullable=False),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("parent_id", sa.String(64), sa.ForeignKey("categories.id"), nullable=True),
        sa.Column("names", postgresql.JSONB(), nullable=False),
        sa.Column("queue_id", sa.String(64), sa.ForeignKey("queues.id"), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_table(
        "sla_policies",
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("targets", postgresql.JSONB(), nullable=False),
        sa.Column("warn_before_minutes", sa.Integer(), nullable=False),
        sa.Column("escalate_after_minutes", sa.Integer(), nullable=False),
        sa.Column("reassign_on_breach", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.String(200), server_default="", nullable=False),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("number", sa.BigInteger(), sa.Identity(start=1001), nullable=False, unique=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), server_default="", nullable=False),
        sa.Column("product_sku", sa.String(100), server_default="", nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(20), nullable=False),
        sa.Column("category_id", sa.String(64), sa.ForeignKey("categories.id"), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("queue_id", sa.String(64), sa.ForeignKey("queues.id"), nullable=False),
        sa.Column("assignee_id", sa.String(64), server_default="", nullable=False),
        sa.Column("parent_ticket_id", sa.String(64), sa.ForeignKey("tickets.id"), nullable=True),
        sa.Column("customer_tier", sa.String(20), server_default="standard", nullable=False),
        sa.Column("sla_policy_version", sa.Integer(), sa.ForeignKey("sla_policies.version"), nullable=False),
        sa.Column("calendar_code", sa.String(20), nullable=False),
        sa.Column("sla_targets", postgresql.JSONB(), nullable=False),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("awaiting_reply_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_responses", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalations", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("sla_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("at_risk", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("satisfaction_score", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("created_by", sa.String(200), server_default="", nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_version", sa.BigInteger(), server_default="1", nullable=False),
    )
    op.create_index("ix_tickets_created", "tickets", ["created_at", "id"])
    op.create_index("ix_tickets_queue_open", "tickets", ["queue_id", "created_at"], postgresql_where=sa.text(OPEN))
    op.create_index("ix_tickets_assignee_open", "tickets", ["assignee_id"], postgresql_where=sa.text(OPEN))
    op.create_index("ix_tickets_customer", "tickets", ["customer_id", "created_at"])
    op.create_index(
        "ix_tickets_parent", "tickets", ["parent_ticket_id"], postgresql_where=sa.text("parent_ticket_id IS NOT NULL")
    )
    op.create_index(
        "ix_tickets_sla_check", "tickets", ["sla_check_at"], postgresql_where=sa.text("sla_check_at IS NOT NULL")
    )
    op.create_table(
        "ticket_history",
        sa.Column("ticket_id", sa.String(64), sa.ForeignKey("tickets.id"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("actor", sa.String(200), server_default="", nullable=False),
    )
    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("ticket_id", sa.String(64), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("visibility", sa.String(20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author_id", sa.String(200), nullable=False),
        sa.Column("author_name", sa.String(200), server_default="", nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ticket_messages_ticket", "ticket_messages", ["ticket_id", "id"])
    op.create_table(
        "surveys",
        sa.Column("ticket_id", sa.String(64), sa.ForeignKey("tickets.id"), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )


def _seed() -> None:
    meta = sa.MetaData()
    tables: dict[str, Any] = {
        name: sa.Table(name, meta, autoload_with=op.get_bind())
        for name in ("calendars", "queues", "categories", "sla_policies")
    }
    op.bulk_insert(tables["calendars"], [{"code": c, "body": body} for c, body in shipped_calendars().items()])
    op.bulk_insert(tables["queues"], [dict(q) for q in QUEUES])
    op.bulk_insert(tables["categories"], [dict(c) for c in CATEGORIES])
    op.bulk_insert(tables["sla_policies"], [dict(SLA_POLICY_V1)])


def upgrade() -> None:
    create_messaging_tables()
    create_audit_table()
    add_dead_letter_dedup_index()
    _tables()
    _seed()


def downgrade() -> None:
    for table in ("surveys", "ticket_messages", "ticket_history", "tickets", "sla_policies", "categories", "queues"):
        op.drop_table(table)
    op.drop_table("calendars")
    from crm_kit.migrations import drop_audit_table, drop_messaging_tables

    drop_audit_table()
    drop_messaging_tables()
