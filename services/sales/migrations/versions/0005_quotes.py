"""quotes: quote versions on deals and their lines, and the sequence their numbers come from

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-15 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create_quotes() -> None:
    op.create_table(
        "quotes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("price_list_id", sa.String(length=64), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("quote_date", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("bill_to_name", sa.String(length=200), nullable=False),
        sa.Column("bill_to_tax_id", sa.String(length=50), server_default="", nullable=False),
        sa.Column("bill_to_address", sa.String(length=500), server_default="", nullable=False),
        sa.Column("bill_to_phone", sa.String(length=50), server_default="", nullable=False),
        sa.Column("discount_bp", sa.Integer(), server_default="0", nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("net_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("notes", sa.String(length=2000), server_default="", nullable=False),
        sa.Column("revised_from_id", sa.String(length=64), nullable=True),
        sa.Column("reject_reason", sa.String(length=500), server_default="", nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("row_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("discount_bp >= 0 AND discount_bp <= 10000", name="ck_quotes_discount"),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"]),
        sa.ForeignKeyConstraint(["price_list_id"], ["price_lists.id"]),
        sa.ForeignKeyConstraint(["revised_from_id"], ["quotes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number", "version", name="uq_quotes_number_version"),
        sa.UniqueConstraint("deal_id", "request_id", name="uq_quotes_deal_request"),
    )
    op.create_index("ix_quotes_deal", "quotes", ["deal_id", "created_at"], unique=False)
    op.create_index(
        "ix_quotes_sent_valid_until",
        "quotes",
        ["valid_until"],
        unique=False,
        postgresql_where=sa.text("status = 'sent'"),
    )


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("quote_numbers")))
    _create_quotes()
    op.create_table(
        "quote_lines",
        sa.Column("quote_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("names", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("tax_class", sa.String(length=20), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_bp", sa.Integer(), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("document_discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate_bp", sa.Integer(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("discount_bp >= 0 AND discount_bp <= 10000", name="ck_quote_lines_discount"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"]),
        sa.ForeignKeyConstraint(["quote_id"], ["quotes.id"]),
        sa.PrimaryKeyConstraint("quote_id", "position"),
        sa.UniqueConstraint("quote_id", "line_id", name="uq_quote_lines_line"),
    )


def downgrade() -> None:
    op.drop_table("quote_lines")
    op.drop_index("ix_quotes_sent_valid_until", table_name="quotes", postgresql_where=sa.text("status = 'sent'"))
    op.drop_index("ix_quotes_deal", table_name="quotes")
    op.drop_table("quotes")
    op.execute(sa.schema.DropSequence(sa.Sequence("quote_numbers")))
