"""changed_xid on the report builder's fact tables: the id of the transaction that last wrote each
row, stamped by a trigger, so the builder's DuckDB copy (crm_reporting.replica) reads only what
changed since its last sync. Rows kept before stay null: only a full load reads them.

Expand-only: a nullable column without a default (no table rewrite), a trigger, and an index that
starts empty (partial: null is never looked up).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("lead_facts", "deal_facts", "ticket_facts", "deal_stage_facts", "notification_facts", "campaign_facts")


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION fact_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.changed_xid := pg_current_xact_id()::text::bigint;
            RETURN NEW;
        END
        $$
        """
    )
    for table in TABLES:
        op.add_column(table, sa.Column("changed_xid", sa.BigInteger(), nullable=True))
        op.create_index(
            f"ix_{table}_changed", table, ["changed_xid"], postgresql_where=sa.text("changed_xid IS NOT NULL")
        )
        op.execute(
            f"CREATE TRIGGER {table}_changed BEFORE INSERT OR UPDATE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION fact_changed()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_changed ON {table}")
        op.drop_index(f"ix_{table}_changed", table_name=table)
        op.drop_column(table, "changed_xid")
    op.execute("DROP FUNCTION fact_changed()")
