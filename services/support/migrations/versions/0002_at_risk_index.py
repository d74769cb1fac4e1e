"""the at-risk list has an index of its own: newest first among the tickets at an SLA warning or
past a target (bench/README.md: without it the planner chose a full scan at 100k tickets)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tickets_at_risk", "tickets", ["created_at", "id"], postgresql_where=sa.text("at_risk"))


def downgrade() -> None:
    op.drop_index("ix_tickets_at_risk", table_name="tickets")
