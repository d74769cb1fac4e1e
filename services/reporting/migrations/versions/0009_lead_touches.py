"""lead_touch_facts: a known person coming in again (LeadTouched), for the leads a promotion's
results count (touches before this migration were not kept)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_touch_facts",
        sa.Column("touch_id", sa.String(64), primary_key=True),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(50), nullable=False, server_default=""),
        sa.Column("campaign_id", sa.String(64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lead_touch_facts_lead", "lead_touch_facts", ["lead_id", "at"])


def downgrade() -> None:
    op.drop_table("lead_touch_facts")
