"""notification_facts: the A/B variant of a promotion's message, for the results per variant

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 21:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notification_facts", sa.Column("variant", sa.String(length=3), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("notification_facts", "variant")
