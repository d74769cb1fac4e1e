"""sales organisation: teams and reps edited through the API

Teams gain active (an inactive team has no active reps and no routing rule) and reps territories
and product lines (whom round-robin and least-loaded rules pick for a lead, crm_leads.routing.
availability); both gain a version (the ETag of their edits) and create/update times. The seeded
teams and reps stay as they are: active, covering everything, at version 1.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-20 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bookkeeping(table: str) -> None:
    op.add_column(table, sa.Column("version", sa.BigInteger(), server_default="1", nullable=False))
    for name in ("created_at", "updated_at"):
        op.add_column(
            table, sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
        )


def upgrade() -> None:
    op.add_column("teams", sa.Column("active", sa.Boolean(), server_default="true", nullable=False))
    _bookkeeping("teams")
    for name in ("territories", "product_lines"):
        op.add_column("reps", sa.Column(name, ARRAY(sa.String(length=100)), server_default="{}", nullable=False))
    _bookkeeping("reps")
    # A team's reps: every capture reads them (crm_leads.routing.queries.candidates), and a team's
    # deactivation counts its active ones.
    op.create_index("ix_reps_team", "reps", ["team_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_reps_team", table_name="reps")
    for name in ("updated_at", "created_at", "version", "product_lines", "territories"):
        op.drop_column("reps", name)
    for name in ("updated_at", "created_at", "version", "active"):
        op.drop_column("teams", name)
