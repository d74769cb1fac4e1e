"""possible duplicates, touches and merges

Name matching keys (compact, skeleton) with their equality indexes, the incomplete-records
index, later captures of a known person (lead_touches) and name-only pairs for review
(possible_duplicates).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("name_compact", sa.String(length=200), server_default="", nullable=False))
    op.add_column("leads", sa.Column("name_skeleton", sa.String(length=200), server_default="", nullable=False))
    # (key, created_at, id): the newest leads of a name are an index range read backwards.
    for column in ("name_key", "name_compact", "name_skeleton"):
        op.create_index(
            f"ix_leads_{column}", "leads", [column, "created_at", "id"], postgresql_where=sa.text(f"{column} <> ''")
        )
    op.create_index(
        "ix_leads_incomplete",
        "leads",
        ["created_at", "id"],
        postgresql_where=sa.text("cardinality(missing_fields) > 0 AND merged_into_id IS NULL"),
    )
    op.create_table(
        "lead_touches",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("lead_id", sa.String(length=64), sa.ForeignKey("leads.id"), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True, unique=True),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("campaign", sa.String(length=200), server_default="", nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("web_form_key_id", sa.String(length=64), nullable=True),
        sa.Column("matched_on", sa.String(length=20), nullable=False),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lead_touches_lead", "lead_touches", ["lead_id", "touched_at"])
    op.create_table(
        "possible_duplicates",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("lead_id", sa.String(length=64), sa.ForeignKey("leads.id"), nullable=False),
        sa.Column("other_lead_id", sa.String(length=64), sa.ForeignKey("leads.id"), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reasons", ARRAY(sa.String(length=30)), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="open", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), server_default="", nullable=False),
        sa.UniqueConstraint("lead_id", "other_lead_id", name="uq_possible_duplicates_pair"),
    )
    op.create_index("ix_possible_duplicates_status", "possible_duplicates", ["status", "created_at", "id"])
    op.create_index("ix_possible_duplicates_other", "possible_duplicates", ["other_lead_id"])


def downgrade() -> None:
    op.drop_index("ix_possible_duplicates_other", table_name="possible_duplicates")
    op.drop_index("ix_possible_duplicates_status", table_name="possible_duplicates")
    op.drop_table("possible_duplicates")
    op.drop_index("ix_lead_touches_lead", table_name="lead_touches")
    op.drop_table("lead_touches")
    for index in ("ix_leads_incomplete", "ix_leads_name_skeleton", "ix_leads_name_compact", "ix_leads_name_key"):
        op.drop_index(index, table_name="leads")
    op.drop_column("leads", "name_skeleton")
    op.drop_column("leads", "name_compact")
