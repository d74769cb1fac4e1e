"""deal_stage_facts and lead_facts.first_response_at: the funnel (deals opened and the stages they
entered) and the speed-to-lead curve (time to a rep's first response against wins)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("lead_facts", sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "deal_stage_facts",
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("stage_id", sa.String(64), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("pipeline_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("owner_rep_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("owner_team_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("deal_id", "stage_id"),
    )
    op.create_index(
        "ix_deal_stage_facts_opened",
        "deal_stage_facts",
        ["pipeline_id", "entered_at"],
        postgresql_where=sa.text("stage_id = ''"),
    )


def downgrade() -> None:
    op.drop_table("deal_stage_facts")
    op.drop_column("lead_facts", "first_response_at")
