"""Opt-in open tracking for a promotion's e-mails: whether it tracks opens, and each message's first
open

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("promotions", sa.Column("track_opens", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("messages", sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "opened_at")
    op.drop_column("promotions", "track_opens")
