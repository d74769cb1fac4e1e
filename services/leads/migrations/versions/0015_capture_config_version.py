"""capture configuration version: one counter every write to sources, campaigns, routing rules,
teams or reps bumps, in the writing transaction

A capture reads this row in a statement it sends anyway and keeps what it read of those tables in
process for as long as the version stays the same (crm_leads.config_cache). The triggers bump it
for every write, whatever sends it (the API, a migration, an operator's SQL), and the bump commits
or rolls back with the change: a replica never sees the new version before the new rows, so no
replica routes with rules, reps or capacities older than the version it read.

A version is the clock in microseconds (or the last one + 1 if that is later), not a count: a
bump that rolled back gave its number back, and a count would hand the same number to the next
change, which a replica that cached the rolled-back rows under it would take for what it holds; a
clock is past that number by then. The same holds for a table created again (a downgrade and
upgrade) or a database restored to an earlier point.

Revision ID: 0015
Revises: 0014
Create Date: 2027-01-10 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("sources", "campaigns", "routing_rules", "teams", "reps")


def upgrade() -> None:
    op.create_table(
        "capture_config_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(
        "INSERT INTO capture_config_version (id, version) "
        "VALUES (1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)"
    )
    op.execute(
        """
        CREATE FUNCTION bump_capture_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE capture_config_version
            SET version = greatest(version + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
            WHERE id = 1;
            RETURN NULL;
        END $$
        """
    )
    for table in _TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_capture_config_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_capture_config_version()"
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER {table}_capture_config_version ON {table}")
    op.execute("DROP FUNCTION bump_capture_config_version()")
    op.drop_table("capture_config_version")
