"""web-to-lead keys: web_form_keys, and the key that captured a lead; leads by team

ix_leads_team serves ListLeads' team filter in (created_at, id) order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_form_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("campaign", sa.String(length=100), server_default="", nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("secret_prefix", sa.String(length=12), nullable=False),
        sa.Column("create_actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_form_keys_created", "web_form_keys", ["created_at", "id"], unique=False)
    op.add_column("leads", sa.Column("web_form_key_id", sa.String(length=64), nullable=True))
    op.create_foreign_key("leads_web_form_key_id_fkey", "leads", "web_form_keys", ["web_form_key_id"], ["id"])
    op.create_index("ix_leads_team", "leads", ["team_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_leads_team", table_name="leads")
    op.drop_constraint("leads_web_form_key_id_fkey", "leads", type_="foreignkey")
    op.drop_column("leads", "web_form_key_id")
    op.drop_index("ix_web_form_keys_created", table_name="web_form_keys")
    op.drop_table("web_form_keys")
