"""campaigns: their cost (campaign_facts, from CampaignChanged) and each lead's campaign id

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("lead_facts", sa.Column("campaign_id", sa.String(length=64), nullable=True))
    op.create_index("ix_lead_facts_campaign", "lead_facts", ["campaign_id"], unique=False)
    op.create_table(
        "campaign_facts",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("budget_minor", sa.BigInteger(), nullable=False),
        sa.Column("actual_cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id"),
    )


def downgrade() -> None:
    op.drop_table("campaign_facts")
    op.drop_index("ix_lead_facts_campaign", table_name="lead_facts")
    op.drop_column("lead_facts", "campaign_id")
