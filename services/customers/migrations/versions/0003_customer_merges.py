"""customer merges: a merged customer stays as a tombstone pointing at the survivor

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("merged_into_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("customers", "merged_into_id")
