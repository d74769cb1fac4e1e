"""initial schema: deals and their items, outbox/inbox, audit log and dead letters

Revision ID: 0001
Revises:
Create Date: 2026-12-05 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_kit.migrations import (
    add_dead_letter_dedup_index,
    create_audit_table,
    create_messaging_tables,
    drop_audit_table,
    drop_dead_letter_dedup_index,
    drop_messaging_tables,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables()
    create_audit_table()
    add_dead_letter_dedup_index()
    op.create_table(
        "deals",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("lead_since", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("owner_rep_id", sa.String(length=64), nullable=True),
        sa.Column("owner_team_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=50), server_default="", nullable=False),
        sa.Column("campaign", sa.String(length=200), server_default="", nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("currency_code", sa.String(length=3), server_default="", nullable=False),
        sa.Column("lost_reason", sa.String(length=500), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lead_id"),
    )
    op.create_index("ix_deals_owner", "deals", ["owner_rep_id"], unique=False)
    op.create_index("ix_deals_team", "deals", ["owner_team_id"], unique=False)
    op.create_table(
        "deal_items",
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"]),
        sa.PrimaryKeyConstraint("deal_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("deal_items")
    op.drop_index("ix_deals_team", table_name="deals")
    op.drop_index("ix_deals_owner", table_name="deals")
    op.drop_table("deals")
    drop_dead_letter_dedup_index()
    drop_audit_table()
    drop_messaging_tables()
