"""conversion pipeline: the pipeline a lead's deal opens in, chosen when converting ('' = the
sales service's default pipeline)

Both ways a deal is opened (the gateway's OpenDeal call and sales' LeadConverted consumer) must
name the same pipeline, and a second convert call reads it back, so it is kept with the conversion.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-19 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("lead_conversions", sa.Column("pipeline_id", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("lead_conversions", "pipeline_id")
