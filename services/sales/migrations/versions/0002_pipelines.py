"""pipelines: pipelines and their stages, lost reasons, deal stage history; every deal in a stage

Seeds the default pipeline (new 10, qualified 30, proposal 60, negotiation 80, won 100, lost 0)
and the lost reasons, then puts each existing deal in it by status (open → its first stage, won →
won, lost → lost) with one history row, entered when it was closed or else created.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-12 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Stage names stay plain (one name per stage, as the company types it); lost reasons are a fixed
# list shown in the caller's language, so they carry names in each.
DEFAULT_STAGES = [
    ("default-new", "New", 10, "open"),
    ("default-qualified", "Qualified", 30, "open"),
    ("default-proposal", "Proposal", 60, "open"),
    ("default-negotiation", "Negotiation", 80, "open"),
    ("default-won", "Won", 100, "won"),
    ("default-lost", "Lost", 0, "lost"),
]
LOST_REASONS = [
    ("price", {"he": "מחיר", "en": "Price", "fa": "قیمت"}),
    ("competitor", {"he": "מתחרה", "en": "Competitor", "fa": "رقیب"}),
    ("no_budget", {"he": "אין תקציב", "en": "No budget", "fa": "بودجه ندارد"}),
    ("no_response", {"he": "אין מענה", "en": "No response", "fa": "پاسخی نداد"}),
    ("timing", {"he": "תזמון", "en": "Timing", "fa": "زمان‌بندی"}),
    ("other", {"he": "אחר", "en": "Other", "fa": "سایر"}),
]


def _create_tables() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("product_line", sa.String(length=100), server_default="", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_table(
        "pipeline_stages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("pipeline_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("required_fields", postgresql.ARRAY(sa.String(length=50)), server_default="{}", nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pipeline_stages_pipeline", "pipeline_stages", ["pipeline_id", "position"], unique=False)
    op.create_table(
        "lost_reasons",
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("names", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "deal_stage_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("from_stage_id", sa.String(length=64), nullable=True),
        sa.Column("to_stage_id", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds_in_previous", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_deal_stage_history_deal", "deal_stage_history", ["deal_id", "id"], unique=False)


def _seed() -> None:
    op.execute(sa.text("INSERT INTO pipelines (id, name) VALUES ('default', 'Default')"))
    stages = sa.table(
        "pipeline_stages",
        sa.column("id"),
        sa.column("pipeline_id"),
        sa.column("position"),
        sa.column("name"),
        sa.column("probability"),
        sa.column("outcome"),
    )
    op.bulk_insert(
        stages,
        [
            {"id": i, "pipeline_id": "default", "position": n, "name": name, "probability": p, "outcome": o}
            for n, (i, name, p, o) in enumerate(DEFAULT_STAGES)
        ],
    )
    reasons = sa.table("lost_reasons", sa.column("code"), sa.column("position"), sa.column("names", postgresql.JSONB))
    op.bulk_insert(reasons, [{"code": c, "position": n, "names": names} for n, (c, names) in enumerate(LOST_REASONS)])


def _backfill() -> None:
    op.execute(
        """
        UPDATE deals SET
            pipeline_id = 'default',
            stage_id = CASE status WHEN 'won' THEN 'default-won' WHEN 'lost' THEN 'default-lost'
                       ELSE 'default-new' END,
            stage_entered_at = COALESCE(closed_at, created_at)
        """
    )
    op.execute(
        """
        INSERT INTO deal_stage_history (deal_id, from_stage_id, to_stage_id, actor, moved_at, seconds_in_previous)
        SELECT id, NULL, stage_id, 'migration', stage_entered_at, 0 FROM deals ORDER BY created_at, id
        """
    )


def upgrade() -> None:
    _create_tables()
    _seed()
    op.add_column("deals", sa.Column("pipeline_id", sa.String(length=64), nullable=True))
    op.add_column("deals", sa.Column("stage_id", sa.String(length=64), nullable=True))
    op.add_column(
        "deals",
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.add_column("deals", sa.Column("expected_close_date", sa.Date(), nullable=True))
    op.add_column("deals", sa.Column("amount_minor", sa.BigInteger(), nullable=True))
    op.add_column("deals", sa.Column("amount_currency", sa.String(length=3), nullable=True))
    op.add_column("deals", sa.Column("lost_reason_code", sa.String(length=50), nullable=True))
    op.add_column("deals", sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    _backfill()
    op.alter_column("deals", "pipeline_id", nullable=False)
    op.alter_column("deals", "stage_id", nullable=False)
    op.create_foreign_key("deals_pipeline_id_fkey", "deals", "pipelines", ["pipeline_id"], ["id"])
    op.create_foreign_key("deals_stage_id_fkey", "deals", "pipeline_stages", ["stage_id"], ["id"])
    op.create_foreign_key("deals_lost_reason_code_fkey", "deals", "lost_reasons", ["lost_reason_code"], ["code"])
    op.create_index("ix_deals_stage", "deals", ["stage_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deals_stage", table_name="deals")
    for column in (
        "version",
        "lost_reason_code",
        "amount_currency",
        "amount_minor",
        "expected_close_date",
        "stage_entered_at",
        "stage_id",
        "pipeline_id",
    ):
        op.drop_column("deals", column)  # drops the column's foreign key with it
    op.drop_index("ix_deal_stage_history_deal", table_name="deal_stage_history")
    op.drop_table("deal_stage_history")
    op.drop_table("lost_reasons")
    op.drop_index("ix_pipeline_stages_pipeline", table_name="pipeline_stages")
    op.drop_table("pipeline_stages")
    op.drop_table("pipelines")
