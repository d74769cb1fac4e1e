"""targets vs actual: targets, and the facts' owner, team and product line with their indexes

Deals recorded before this keep null owner, team, pipeline and product line (the events that
carried the owner were not stored per deal, and DealClosed carries team and product line only
from this release), so they count for source targets only.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEAL_SUBJECTS = ("owner_rep_id", "owner_team_id", "source", "product_line")
_LEAD_SUBJECTS = {"rep": "rep_id", "team": "team_id", "source": "source", "product_line": "product_line"}


def upgrade() -> None:
    op.add_column("deal_facts", sa.Column("owner_rep_id", sa.String(length=64), nullable=True))
    op.add_column("deal_facts", sa.Column("owner_team_id", sa.String(length=64), nullable=True))
    op.add_column("deal_facts", sa.Column("pipeline_id", sa.String(length=64), nullable=True))
    op.add_column("deal_facts", sa.Column("product_line", sa.String(length=100), nullable=True))
    for column in _DEAL_SUBJECTS:
        op.create_index(
            f"ix_deal_facts_won_{column}",
            "deal_facts",
            [column, "closed_at"],
            unique=False,
            postgresql_where=sa.text("won"),
            postgresql_include=["total_minor", "currency_code"],
        )
    op.add_column("lead_facts", sa.Column("team_id", sa.String(length=64), nullable=True))
    op.add_column("lead_facts", sa.Column("product_line", sa.String(length=100), nullable=True))
    for name, column in _LEAD_SUBJECTS.items():
        op.create_index(f"ix_lead_facts_{name}_captured", "lead_facts", [column, "captured_at"], unique=False)
    op.create_table(
        "targets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("subject_kind", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.String(length=100), nullable=False),
        sa.Column("period_kind", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("currency_code", sa.String(length=3), server_default="", nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
        sa.UniqueConstraint(
            "subject_kind",
            "subject_id",
            "period_kind",
            "period_start",
            "metric",
            name="uq_targets_subject_period_metric",
        ),
    )
    op.create_index("ix_targets_period", "targets", ["period_kind", "period_start"], unique=False)
    op.create_index("ix_targets_period_start", "targets", ["period_start", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_targets_period_start", table_name="targets")
    op.drop_index("ix_targets_period", table_name="targets")
    op.drop_table("targets")
    for name in _LEAD_SUBJECTS:
        op.drop_index(f"ix_lead_facts_{name}_captured", table_name="lead_facts")
    op.drop_column("lead_facts", "product_line")
    op.drop_column("lead_facts", "team_id")
    for column in _DEAL_SUBJECTS:
        op.drop_index(f"ix_deal_facts_won_{column}", table_name="deal_facts")
    op.drop_column("deal_facts", "product_line")
    op.drop_column("deal_facts", "pipeline_id")
    op.drop_column("deal_facts", "owner_team_id")
    op.drop_column("deal_facts", "owner_rep_id")
