"""service and consent facts: tickets, surveys and consent changes from support's and customers'
events, and each customer's acquiring lead (CustomerCreated) that ties them to a source

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_facts",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "ticket_facts",
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("priority", sa.String(length=20), nullable=True),
        sa.Column("category_id", sa.String(length=64), nullable=True),
        sa.Column("queue_id", sa.String(length=64), nullable=True),
        sa.Column("assignee_id", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolutions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolution_seconds", sa.BigInteger(), nullable=True),
        sa.Column("resolution_sla_met", sa.Boolean(), nullable=True),
        sa.Column("warnings", sa.Integer(), server_default="0", nullable=False),
        sa.Column("breaches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_breach_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("ticket_id"),
    )
    op.create_index("ix_ticket_facts_opened", "ticket_facts", ["opened_at"], unique=False)
    op.create_index("ix_ticket_facts_customer", "ticket_facts", ["customer_id", "opened_at"], unique=False)
    op.create_table(
        "consent_facts",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=30), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "record_id"),
    )
    op.create_index("ix_consent_facts_changed", "consent_facts", ["changed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_consent_facts_changed", table_name="consent_facts")
    op.drop_table("consent_facts")
    op.drop_index("ix_ticket_facts_customer", table_name="ticket_facts")
    op.drop_index("ix_ticket_facts_opened", table_name="ticket_facts")
    op.drop_table("ticket_facts")
    op.drop_table("customer_facts")
