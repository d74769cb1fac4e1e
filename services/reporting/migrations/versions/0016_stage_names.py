"""deal_stage_facts.stage_name: the stage's name as DealStageChanged gave it, the report builder's
"stage" dimension (rows kept before it show their stage id)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deal_stage_facts", sa.Column("stage_name", sa.String(200), nullable=False, server_default=""))
    op.execute("UPDATE deal_stage_facts SET stage_name = stage_id WHERE stage_id <> ''")


def downgrade() -> None:
    op.drop_column("deal_stage_facts", "stage_name")
