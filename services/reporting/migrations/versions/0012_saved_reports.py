"""saved_reports: the report builder's saved reports, each its owner's, shared with roles (of a
team, or of the company); lead_facts.city, a dimension of the builder

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 08:00:00
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
        "saved_reports",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner_id", sa.String(200), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("shared_roles", postgresql.ARRAY(sa.String(30)), nullable=False, server_default="{}"),
        sa.Column("definition", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=True, unique=True),
    )
    op.create_index("ix_saved_reports_owner", "saved_reports", ["owner_id", "created_at"])
    op.add_column("lead_facts", sa.Column("city", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("lead_facts", "city")
    op.drop_table("saved_reports")
