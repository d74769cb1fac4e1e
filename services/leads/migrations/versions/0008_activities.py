"""activities (calls, meetings, notes, tasks)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=True),
        sa.Column("rep_id", sa.String(length=64), nullable=True),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=200), server_default="", nullable=False),
        sa.Column("body", sa.String(length=10000), server_default="", nullable=False),
        sa.Column("outcome", sa.String(length=30), server_default="", nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("first_response", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_activities_lead", "activities", ["lead_id", "occurred_at", "id"])
    op.create_index(
        "ix_activities_deal",
        "activities",
        ["deal_id", "occurred_at", "id"],
        postgresql_where=sa.text("deal_id IS NOT NULL"),
    )
    op.create_index(
        "ix_activities_open_tasks",
        "activities",
        ["due_at", "id"],
        postgresql_where=sa.text("kind = 'task' AND completed_at IS NULL"),
    )
    op.create_index(
        "ix_activities_reminders",
        "activities",
        ["remind_at"],
        postgresql_where=sa.text("kind = 'task' AND completed_at IS NULL AND reminded_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_activities_reminders", table_name="activities")
    op.drop_index("ix_activities_open_tasks", table_name="activities")
    op.drop_index("ix_activities_deal", table_name="activities")
    op.drop_index("ix_activities_lead", table_name="activities")
    op.drop_table("activities")
