"""catalog: products, price lists and their items, VAT rates by country and tax class

Seeds the VAT rates in force: Israel 17 % from 2015-10-01 and 18 % from 2025-01-01 (VAT Law, the
2025 budget raise), Iran 10 % from 2024-03-20 (the 1403 budget law; a setting admins keep current
through the API, see docs/selling.md), zero and exempt 0 in both.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 10:00:00
"""

import datetime
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TAX_RATES = [
    ("IL", "standard", 1700, datetime.date(2015, 10, 1)),
    ("IL", "standard", 1800, datetime.date(2025, 1, 1)),
    ("IL", "zero", 0, datetime.date(2015, 10, 1)),
    ("IL", "exempt", 0, datetime.date(2015, 10, 1)),
    ("IR", "standard", 1000, datetime.date(2024, 3, 20)),
    ("IR", "zero", 0, datetime.date(2024, 3, 20)),
    ("IR", "exempt", 0, datetime.date(2024, 3, 20)),
]


def _record_columns() -> list[sa.Column[object]]:
    """The columns every catalog record has: state, etag source, idempotency key, times."""
    return [
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("names", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("tax_class", sa.String(length=20), nullable=False),
        sa.Column("product_line", sa.String(length=100), server_default="", nullable=False),
        *_record_columns(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sku"),
    )
    op.create_table(
        "price_lists",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        *_record_columns(),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="ck_price_lists_validity"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "price_list_items",
        sa.Column("price_list_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("unit_price_minor >= 0", name="ck_price_list_items_price"),
        sa.ForeignKeyConstraint(["price_list_id"], ["price_lists.id"]),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"]),
        sa.PrimaryKeyConstraint("price_list_id", "product_id"),
    )
    op.create_index("ix_price_list_items_product", "price_list_items", ["product_id"], unique=False)
    op.create_table(
        "tax_rates",
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("tax_class", sa.String(length=20), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("rate_bp >= 0 AND rate_bp <= 10000", name="ck_tax_rates_rate"),
        sa.PrimaryKeyConstraint("country", "tax_class", "valid_from"),
    )
    rates = sa.table(
        "tax_rates", sa.column("country"), sa.column("tax_class"), sa.column("rate_bp"), sa.column("valid_from")
    )
    op.bulk_insert(rates, [{"country": c, "tax_class": t, "rate_bp": r, "valid_from": f} for c, t, r, f in TAX_RATES])


def downgrade() -> None:
    op.drop_table("tax_rates")
    op.drop_index("ix_price_list_items_product", table_name="price_list_items")
    op.drop_table("price_list_items")
    op.drop_table("price_lists")
    op.drop_table("products")
