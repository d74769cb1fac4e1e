"""lead conversions: which lead became which deal, now that the sales service owns deals

Backfilled from the deals this database already has (their copy into the sales database is sales'
one-off `copy-deals-from-leads` job, docs/operations.md). The old deals tables stay, read only,
until a later release drops them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_conversions",
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("owner_rep_id", sa.String(length=64), nullable=True),
        sa.Column("owner_team_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("legacy", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("lead_since", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("deal_id"),
        sa.UniqueConstraint("lead_id"),
    )
    # Every existing deal is a conversion of its lead; the team is the lead's team, as the deal's
    # owner team was computed before.
    op.execute(
        """
        INSERT INTO lead_conversions
            (deal_id, lead_id, title, owner_rep_id, owner_team_id, source, campaign, converted_at, legacy, lead_since)
        SELECT d.id, d.lead_id, d.title, d.owner_rep_id, l.team_id, l.source, l.campaign, d.created_at, true, now()
        FROM deals d JOIN leads l ON l.id = d.lead_id
        ON CONFLICT DO NOTHING
        """
    )


def downgrade() -> None:
    op.drop_table("lead_conversions")
