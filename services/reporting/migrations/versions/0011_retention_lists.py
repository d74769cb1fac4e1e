"""retention_lists and retention_entries: at-risk customers handed to reps, with a random control
group held out, and the reps' answers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_lists",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("control_share", sa.Float(), nullable=False),
        sa.Column("called", sa.Integer(), nullable=False),
        sa.Column("control", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=True, unique=True),
        sa.Column("model", sa.String(30), nullable=False, server_default="rules"),
    )
    op.create_index("ix_retention_lists_team", "retention_lists", ["team_id", "created_at"])
    op.create_table(
        "retention_entries",
        sa.Column("list_id", sa.String(64), sa.ForeignKey("retention_lists.id"), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("control", sa.Boolean(), nullable=False),
        sa.Column("rep_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("reasons", postgresql.JSONB(), nullable=False),
        sa.Column("offer", sa.String(120), nullable=False),
        sa.Column("response", sa.String(20), nullable=False, server_default=""),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_by", sa.String(64), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("list_id", "customer_id"),
    )
    op.create_index("ix_retention_entries_rep", "retention_entries", ["rep_id", "list_id"])
    op.create_index("ix_retention_entries_customer", "retention_entries", ["customer_id"])


def downgrade() -> None:
    op.drop_table("retention_entries")
    op.drop_table("retention_lists")
