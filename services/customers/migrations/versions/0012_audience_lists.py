"""audience lists: static lists of customers imported from CSV files (an audience's list_id)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audience_lists",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("errors", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("request_id", sa.String(200), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_audience_lists_created", "audience_lists", ["created_at", "id"])
    op.create_table(
        "audience_list_members",
        sa.Column("list_id", sa.String(64), sa.ForeignKey("audience_lists.id"), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), primary_key=True),
    )
    op.create_index("ix_audience_list_members_customer", "audience_list_members", ["customer_id"])


def downgrade() -> None:
    op.drop_table("audience_list_members")
    op.drop_table("audience_lists")
