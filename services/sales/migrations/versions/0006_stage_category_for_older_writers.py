"""pipeline_stages.forecast_category filled in for writers that do not know it

0003 made the column NOT NULL with no default, so during a rolling upgrade from a release before
it, an old pod's new stage (it names no category) failed. A BEFORE INSERT trigger gives such a row
the category 0003's back-fill gives existing stages (from its outcome and probability); the
current code always names one, and the trigger then does nothing. Found by
tests/migrations/test_previous_release.py.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION stage_forecast_category() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.forecast_category IS NULL THEN
                NEW.forecast_category := CASE
                    WHEN NEW.outcome = 'won' THEN 'closed'
                    WHEN NEW.outcome = 'lost' THEN 'omitted'
                    WHEN NEW.probability >= 80 THEN 'commit'
                    WHEN NEW.probability >= 50 THEN 'best_case'
                    ELSE 'pipeline' END;
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER stage_forecast_category BEFORE INSERT ON pipeline_stages "
        "FOR EACH ROW EXECUTE FUNCTION stage_forecast_category()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER stage_forecast_category ON pipeline_stages")
    op.execute("DROP FUNCTION stage_forecast_category()")
