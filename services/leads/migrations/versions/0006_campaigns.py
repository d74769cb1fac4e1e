"""sources, campaigns and lead imports

The source catalogue moves from code to the database (seeded with the built-in codes), campaigns
with their cost, and the tables of CSV imports (report, staged rows, first errors).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The built-in codes of crm_leads.leads.domain.SOURCES (then crm_leads.domain) when this revision was written (a migration
# never imports application code: it must build the same schema forever).
BUILT_IN_SOURCES = {
    "radio": "רדיו / Radio",
    "tv": "טלוויזיה / TV",
    "website": "אתר / Website",
    "web_form": "טופס אינטרנט / Web form",
    "referral": "חבר מביא חבר / Referral",
    "exhibition": "תערוכה / Exhibition",
    "press": "עיתונות / Press",
    "telemarketing": "טלמרקטינג / Telemarketing",
    "email": "דואר אלקטרוני / E-mail",
    "import": "ייבוא / Import",
}


def upgrade() -> None:
    sources = op.create_table(
        "sources",
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("built_in", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.bulk_insert(
        sources,
        [{"code": c, "display_name": n, "built_in": True, "active": True} for c, n in BUILT_IN_SOURCES.items()],
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("budget_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("actual_cost_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("currency_code", sa.String(length=3), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["source"], ["sources.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "name", name="uq_campaigns_source_name"),
    )
    op.create_index("ix_campaigns_created", "campaigns", ["created_at", "id"], unique=False)
    op.create_table(
        "lead_imports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("campaign_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("file_name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rows_read", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_valid", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_imported", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reject_reason", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("next_row", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("create_actor", sa.String(length=200), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_lead_imports_created", "lead_imports", ["created_at", "id"], unique=False)
    op.create_index("ix_lead_imports_status", "lead_imports", ["status", "lease_until"], unique=False)
    op.create_table(
        "lead_import_rows",
        sa.Column("import_id", sa.String(length=64), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("locale", sa.String(length=20), nullable=False),
        sa.Column("product_line", sa.String(length=100), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["lead_imports.id"]),
        sa.PrimaryKeyConstraint("import_id", "row_number"),
    )
    op.create_table(
        "lead_import_errors",
        sa.Column("import_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["lead_imports.id"]),
        sa.PrimaryKeyConstraint("import_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("lead_import_errors")
    op.drop_table("lead_import_rows")
    op.drop_index("ix_lead_imports_status", table_name="lead_imports")
    op.drop_index("ix_lead_imports_created", table_name="lead_imports")
    op.drop_table("lead_imports")
    op.drop_index("ix_campaigns_created", table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_table("sources")
