"""deal lists: indexes for keyset-paged deal lists and the pipeline board; stage forecast categories

Deal lists and the board page by (expected close, id), deals without a date last. A stored
generated column `expected_close_sort` (the date, or 'infinity') makes that a plain row comparison
an index range scan serves; the indexes lead with each filter a list is held to (stage, pipeline,
owner rep, owner team, none), so a page costs the same on page 1 and page 1,000. The single-column
stage, owner and team indexes become prefixes of the new ones and are dropped. Adding the stored
column rewrites `deals` once (under an exclusive lock: seconds at 100k deals).

The open deals' count and amount per stage, owner and currency are kept in `deal_stage_totals` by
a trigger on `deals` (every writer: commands, the copy job, a bulk load), so a board's sums read a
few rows per stage instead of aggregating every open deal of the pipeline; it is filled here from
the deals already there.

Each stage gets a forecast category (pipeline, best_case, commit, omitted; closed for the won
stage, omitted for the lost one), defaulted from its probability: 80 and above commit, 50 and
above best case, below that pipeline.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-14 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, columns); with ix_deals_stage_closed below, the same as crm_sales.db.deals' indexes.
INDEXES = [
    ("ix_deals_close", ["expected_close_sort", "id"]),
    ("ix_deals_stage_close", ["stage_id", "expected_close_sort", "id"]),
    ("ix_deals_pipeline_close", ["pipeline_id", "expected_close_sort", "id"]),
    ("ix_deals_owner_close", ["owner_rep_id", "expected_close_sort", "id"]),
    ("ix_deals_team_close", ["owner_team_id", "expected_close_sort", "id"]),
    ("ix_deals_created", ["created_at", "id"]),
]
# A won or lost stage's recent closes, covering what a board sums of them (an index-only scan).
CLOSED_INCLUDE = [
    "status",
    "currency_code",
    "total_minor",
    "amount_currency",
    "amount_minor",
    "owner_rep_id",
    "owner_team_id",
]
# Applies a deal row's change to the totals: its old contribution out, its new one in (open deals
# only), both in key order in one statement so concurrent changes lock totals rows in one order.
APPLY_TOTALS = """
CREATE FUNCTION deal_stage_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deal_stage_totals AS t
        (stage_id, owner_rep_id, owner_team_id, currency_code, pipeline_id, deals, amount_minor)
    SELECT stage_id, rep, team, currency, pipeline_id, sum(n), sum(amount)
    FROM (
        SELECT OLD.stage_id, coalesce(OLD.owner_rep_id, ''), coalesce(OLD.owner_team_id, ''),
               coalesce(OLD.amount_currency, ''), OLD.pipeline_id, -1, -coalesce(OLD.amount_minor, 0)::numeric
        WHERE TG_OP <> 'INSERT' AND OLD.status = 'open'
        UNION ALL
        SELECT NEW.stage_id, coalesce(NEW.owner_rep_id, ''), coalesce(NEW.owner_team_id, ''),
               coalesce(NEW.amount_currency, ''), NEW.pipeline_id, 1, coalesce(NEW.amount_minor, 0)::numeric
        WHERE TG_OP <> 'DELETE' AND NEW.status = 'open'
    ) AS change (stage_id, rep, team, currency, pipeline_id, n, amount)
    GROUP BY stage_id, rep, team, currency, pipeline_id
    HAVING sum(n) <> 0 OR sum(amount) <> 0
    ORDER BY stage_id, rep, team, currency
    ON CONFLICT (stage_id, owner_rep_id, owner_team_id, currency_code) DO UPDATE
        SET deals = t.deals + EXCLUDED.deals, amount_minor = t.amount_minor + EXCLUDED.amount_minor;
    RETURN NULL;
END
$$
"""
TOTALS_TRIGGER = """
CREATE TRIGGER deals_stage_totals
AFTER INSERT OR DELETE OR UPDATE OF status, stage_id, pipeline_id, owner_rep_id, owner_team_id, amount_minor,
    amount_currency ON deals
FOR EACH ROW EXECUTE FUNCTION deal_stage_totals_apply()
"""
FILL_TOTALS = """
INSERT INTO deal_stage_totals (stage_id, owner_rep_id, owner_team_id, currency_code, pipeline_id, deals, amount_minor)
SELECT stage_id, coalesce(owner_rep_id, ''), coalesce(owner_team_id, ''), coalesce(amount_currency, ''), pipeline_id,
       count(*), coalesce(sum(amount_minor), 0)
FROM deals WHERE status = 'open'
GROUP BY 1, 2, 3, 4, 5
"""
REPLACED = [
    ("ix_deals_owner", ["owner_rep_id"]),
    ("ix_deals_team", ["owner_team_id"]),
    ("ix_deals_stage", ["stage_id"]),
]


def upgrade() -> None:
    op.add_column("pipeline_stages", sa.Column("forecast_category", sa.String(length=20), nullable=True))
    op.execute(
        """
        UPDATE pipeline_stages SET forecast_category = CASE
            WHEN outcome = 'won' THEN 'closed'
            WHEN outcome = 'lost' THEN 'omitted'
            WHEN probability >= 80 THEN 'commit'
            WHEN probability >= 50 THEN 'best_case'
            ELSE 'pipeline' END
        """
    )
    op.alter_column("pipeline_stages", "forecast_category", nullable=False)
    op.add_column(
        "deals",
        sa.Column(
            "expected_close_sort",
            sa.Date(),
            sa.Computed("COALESCE(expected_close_date, DATE 'infinity')", persisted=True),
            nullable=False,
        ),
    )
    for name, columns in INDEXES:
        op.create_index(name, "deals", columns, unique=False)
    op.create_index(
        "ix_deals_stage_closed",
        "deals",
        ["stage_id", "closed_at", "id"],
        unique=False,
        postgresql_include=CLOSED_INCLUDE,
        postgresql_where=sa.text("closed_at IS NOT NULL"),
    )
    for name, _ in REPLACED:
        op.drop_index(name, table_name="deals")
    op.create_table(
        "deal_stage_totals",
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("owner_rep_id", sa.String(length=64), nullable=False),
        sa.Column("owner_team_id", sa.String(length=64), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("pipeline_id", sa.String(length=64), nullable=False),
        sa.Column("deals", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.Numeric(), nullable=False),
        sa.PrimaryKeyConstraint("stage_id", "owner_rep_id", "owner_team_id", "currency_code"),
    )
    op.execute(APPLY_TOTALS)
    op.execute(TOTALS_TRIGGER)
    op.execute(FILL_TOTALS)


def downgrade() -> None:
    op.execute("DROP TRIGGER deals_stage_totals ON deals")
    op.execute("DROP FUNCTION deal_stage_totals_apply()")
    op.drop_table("deal_stage_totals")
    for name, columns in REPLACED:
        op.create_index(name, "deals", columns, unique=False)
    for name in [name for name, _ in INDEXES] + ["ix_deals_stage_closed"]:
        op.drop_index(name, table_name="deals")
    op.drop_column("deals", "expected_close_sort")
    op.drop_column("pipeline_stages", "forecast_category")
