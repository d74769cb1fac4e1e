"""customer_risk_bands: each customer's risk band at the last scheduled scoring, what a
CustomerAtRisk event is published against when it changes; scan_marks: when a scheduled job last
ran, so one replica runs it per interval

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_risk_bands",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "scan_marks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scan_marks")
    op.drop_table("customer_risk_bands")
