"""purchase_facts: won deals' lines with a SKU (what cross-sell rules learn from); cross_sell_offers:
a suggestion a rep or agent offered and the customer's answer (deals won before this migration
were not kept line by line)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "purchase_facts",
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("deal_id", "line"),
    )
    op.create_index("ix_purchase_facts_lead", "purchase_facts", ["lead_id", "sku", "closed_at"])
    op.create_index("ix_purchase_facts_closed", "purchase_facts", ["closed_at"])
    op.create_table(
        "cross_sell_offers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("lead_ids", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("antecedent_sku", sa.String(100), nullable=False, server_default=""),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("response", sa.String(10), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=True, unique=True),
    )
    op.create_index("ix_cross_sell_offers_customer", "cross_sell_offers", ["customer_id", "offered_at"])
    op.create_index("ix_cross_sell_offers_offered", "cross_sell_offers", ["offered_at"])


def downgrade() -> None:
    op.drop_table("cross_sell_offers")
    op.drop_table("purchase_facts")
