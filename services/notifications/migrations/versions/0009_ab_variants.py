"""A/B variants of a promotion: the share tested first, the winner rule and wait, the winner; each
recipient's and each message's variant; and what one e-mail costs

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("promotions", sa.Column("test_percent", sa.SmallInteger(), nullable=False, server_default="0"))
    op.add_column("promotions", sa.Column("winner_rule", sa.String(10), nullable=False, server_default=""))
    op.add_column("promotions", sa.Column("winner_wait_minutes", sa.Integer(), nullable=False, server_default="240"))
    op.add_column("promotions", sa.Column("winner_variant", sa.String(3), nullable=False, server_default=""))
    op.add_column("promotions", sa.Column("winner_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("promotions", sa.Column("wait_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("promotions", sa.Column("email_price_minor", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("promotion_recipients", sa.Column("variant", sa.String(3), nullable=True))
    op.add_column("messages", sa.Column("variant", sa.String(3), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "variant")
    op.drop_column("promotion_recipients", "variant")
    for column in (
        "email_price_minor",
        "wait_until",
        "winner_at",
        "winner_variant",
        "winner_wait_minutes",
        "winner_rule",
        "test_percent",
    ):
        op.drop_column("promotions", column)
