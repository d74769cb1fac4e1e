"""lead acquisition: the lead columns campaigns, routing, SLA, activities and duplicates share

campaign_id (the campaign catalogue's id), territory (city, region), the speed-to-lead clock
(first_response_due_at, first_response_at, sla_breached_at), merge and completeness
(merged_into_id, missing_fields, touch_count, name_key), and the indexes the duplicate check
uses on capture (phone and e-mail equality, never a scan).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("campaign_id", sa.String(length=64), nullable=True))
    op.add_column("leads", sa.Column("city", sa.String(length=100), server_default="", nullable=False))
    op.add_column("leads", sa.Column("region", sa.String(length=100), server_default="", nullable=False))
    op.add_column("leads", sa.Column("first_response_due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("leads", sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("leads", sa.Column("sla_breached_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("leads", sa.Column("merged_into_id", sa.String(length=64), nullable=True))
    op.add_column(
        "leads", sa.Column("missing_fields", ARRAY(sa.String(length=30)), server_default="{}", nullable=False)
    )
    op.add_column("leads", sa.Column("touch_count", sa.Integer(), server_default="1", nullable=False))
    op.add_column("leads", sa.Column("name_key", sa.String(length=200), server_default="", nullable=False))
    op.create_index("ix_leads_phone_number", "leads", ["phone_number"], postgresql_where=sa.text("phone_number <> ''"))
    op.create_index("ix_leads_email", "leads", ["email"], postgresql_where=sa.text("email <> ''"))
    op.create_index("ix_leads_campaign", "leads", ["campaign_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_leads_campaign", table_name="leads")
    op.drop_index("ix_leads_email", table_name="leads")
    op.drop_index("ix_leads_phone_number", table_name="leads")
    for column in (
        "name_key",
        "touch_count",
        "missing_fields",
        "merged_into_id",
        "sla_breached_at",
        "first_response_at",
        "first_response_due_at",
        "region",
        "city",
        "campaign_id",
    ):
        op.drop_column("leads", column)
