"""notification_facts: the promotion and recipient customer of a promotion's message, for the
revenue a promotion's results attribute to it (messages recorded before have neither)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notification_facts", sa.Column("promotion_id", sa.String(length=64), nullable=True))
    op.add_column("notification_facts", sa.Column("customer_id", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_notification_facts_promotion",
        "notification_facts",
        ["promotion_id"],
        postgresql_where=sa.text("promotion_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notification_facts_promotion", table_name="notification_facts")
    op.drop_column("notification_facts", "customer_id")
    op.drop_column("notification_facts", "promotion_id")
