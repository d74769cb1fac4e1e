"""audit log: who changed what, written in the same transaction as the change

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 12:30:00
"""

from collections.abc import Sequence

from crm_kit.migrations import create_audit_table, drop_audit_table

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_table()


def downgrade() -> None:
    drop_audit_table()
