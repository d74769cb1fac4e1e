"""request ids scoped to their caller

A capture's request id was unique company-wide, so one caller could claim or replay another's
(and read that lead). It is now unique per scope (crm_leads.leads.domain): the caller's subject
(`actor:<subject>`), the web form's key (`web-form-key:<key id>`) or the import
(`import:<import id>`, the request id being the row number). An upload's request id is unique
per uploader.

Existing rows keep working: an import row's `import:<id>:<row>` becomes scope `import:<id>` and
request id `<row>` (a resumed import finds the rows it captured), a web form's capture gets its
key's scope, any other capture the scope of the actor its audit record names. A capture without
such a record gets the scope `legacy`, which no caller has: its request id is never replayed (a
retry is captured again, and its duplicate check makes it a touch of the same lead).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IMPORT_ROW_ID = r"^import:[0-9a-f-]{36}:[0-9]+$"


def _backfill(table: str, audit_match: str) -> None:
    op.execute(
        f"""
        UPDATE {table} t
        SET request_scope = 'import:' || split_part(t.request_id, ':', 2),
            request_id = split_part(t.request_id, ':', 3)
        WHERE t.request_id ~ '{_IMPORT_ROW_ID}'
          AND EXISTS (SELECT 1 FROM lead_imports i WHERE i.id = split_part(t.request_id, ':', 2))
        """
    )
    op.execute(
        f"""
        UPDATE {table} SET request_scope = 'web-form-key:' || web_form_key_id
        WHERE request_id IS NOT NULL AND request_scope IS NULL AND web_form_key_id IS NOT NULL
        """
    )
    op.execute(
        f"""
        UPDATE {table} t SET request_scope = 'actor:' || a.actor
        FROM (
            SELECT DISTINCT ON (record) {audit_match} AS record, actor FROM audit_log a
            WHERE a.action = '{"leads.CaptureLead" if table == "leads" else "leads.AttachTouch"}'
            ORDER BY record, a.id
        ) a
        WHERE t.request_id IS NOT NULL AND t.request_scope IS NULL AND a.record = t.id
        """
    )
    op.execute(f"UPDATE {table} SET request_scope = 'legacy' WHERE request_id IS NOT NULL AND request_scope IS NULL")


def upgrade() -> None:
    for table in ("leads", "lead_touches"):
        op.add_column(table, sa.Column("request_scope", sa.String(length=300), nullable=True))
        op.drop_constraint(f"{table}_request_id_key", table, type_="unique")
    _backfill("leads", "a.record_id")
    _backfill("lead_touches", "a.details->>'touch_id'")
    op.create_unique_constraint("uq_leads_request", "leads", ["request_scope", "request_id"])
    op.create_unique_constraint("uq_lead_touches_request", "lead_touches", ["request_scope", "request_id"])
    op.drop_constraint("lead_imports_request_id_key", "lead_imports", type_="unique")
    op.create_unique_constraint("uq_lead_imports_request", "lead_imports", ["create_actor", "request_id"])


def downgrade() -> None:
    op.drop_constraint("uq_lead_imports_request", "lead_imports", type_="unique")
    # Request ids of different uploaders may now be equal: only the first keeps its id.
    op.execute(
        """
        UPDATE lead_imports t SET request_id = NULL WHERE request_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM lead_imports o WHERE o.request_id = t.request_id AND o.id < t.id)
        """
    )
    op.create_unique_constraint("lead_imports_request_id_key", "lead_imports", ["request_id"])
    for table in ("leads", "lead_touches"):
        op.drop_constraint(f"uq_{table}_request", table, type_="unique")
        op.execute(
            f"""
            UPDATE {table} SET request_id = request_scope || ':' || request_id
            WHERE request_scope LIKE 'import:%' AND request_id IS NOT NULL
            """
        )
        op.execute(
            f"""
            UPDATE {table} t SET request_id = NULL WHERE request_id IS NOT NULL
              AND EXISTS (SELECT 1 FROM {table} o WHERE o.request_id = t.request_id AND o.id < t.id)
            """
        )
        op.drop_column(table, "request_scope")
        op.create_unique_constraint(f"{table}_request_id_key", table, ["request_id"])
