"""deal_stage_facts and lead_facts.first_response_at: the funnel (deals opened and the stages they
entered) and the speed-to-lead curve (time to a rep's first response against wins); lead_facts'
current owner (the latest assignment), which reports are held to

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
    op.add_column("lead_facts", sa.Column("owner_rep_id", sa.String(64), nullable=True))
    op.add_column("lead_facts", sa.Column("owner_team_id", sa.String(64), nullable=True))
    op.add_column("lead_facts", sa.Column("owner_at", sa.DateTime(timezone=True), nullable=True))
    # Until now only the first assignment was kept: it is the owner as far as reporting knows.
    op.execute("UPDATE lead_facts SET owner_rep_id = rep_id, owner_team_id = team_id, owner_at = assigned_at")
    op.create_index("ix_lead_facts_owner_rep_captured", "lead_facts", ["owner_rep_id", "captured_at"])
    op.create_index("ix_lead_facts_owner_team_captured", "lead_facts", ["owner_team_id", "captured_at"])
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
    op.drop_index("ix_lead_facts_owner_team_captured", "lead_facts")
    op.drop_index("ix_lead_facts_owner_rep_captured", "lead_facts")
    for column in ("owner_at", "owner_team_id", "owner_rep_id", "first_response_at"):
        op.drop_column("lead_facts", column)
