"""the customer 360's details: contact persons (for business customers), addresses, tags

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("tags", postgresql.ARRAY(sa.String(50)), server_default="{}", nullable=False),
    )
    # Segments ("every customer tagged wholesale") read tags by containment.
    op.create_index("ix_customers_tags", "customers", ["tags"], postgresql_using="gin")
    op.create_table(
        "customer_contacts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(100), server_default="", nullable=False),
        sa.Column("phone_number", sa.String(20), server_default="", nullable=False),
        sa.Column("email", sa.String(320), server_default="", nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_customer_contacts_customer", "customer_contacts", ["customer_id", "id"])
    op.create_table(
        "customer_addresses",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("line1", sa.String(200), nullable=False),
        sa.Column("line2", sa.String(200), server_default="", nullable=False),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("postal_code", sa.String(20), server_default="", nullable=False),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_customer_addresses_customer", "customer_addresses", ["customer_id", "id"])


def downgrade() -> None:
    op.drop_table("customer_addresses")
    op.drop_table("customer_contacts")
    op.drop_index("ix_customers_tags", table_name="customers")
    op.drop_column("customers", "tags")
