"""customer versions: a counter bumped by every profile edit, the customer's ETag

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("row_version", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    op.drop_column("customers", "row_version")
