"""report_schedules: saved reports e-mailed weekly or monthly, each run in the reach of whoever
scheduled it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_schedules",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "saved_report_id",
            sa.String(64),
            sa.ForeignKey("saved_reports.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("owner_id", sa.String(200), nullable=False),
        sa.Column("reach_rep_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("reach_team_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("cadence", sa.String(10), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("day_of_month", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("recipients", postgresql.ARRAY(sa.String(254)), nullable=False),
        sa.Column("locale", sa.String(5), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=True, unique=True),
    )
    op.create_index("ix_report_schedules_due", "report_schedules", ["next_run_at"])
    op.create_index("ix_report_schedules_owner", "report_schedules", ["owner_id", "created_at"])
    op.create_index("ix_report_schedules_report", "report_schedules", ["saved_report_id"])


def downgrade() -> None:
    op.drop_table("report_schedules")
