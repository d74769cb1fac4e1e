"""dead letters: one open letter per consumer and event (a consumer killed between recording a
letter and terminating the message recorded it twice)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 15:00:00
"""

from collections.abc import Sequence

from crm_kit.migrations import add_dead_letter_dedup_index, drop_dead_letter_dedup_index

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_dead_letter_dedup_index()


def downgrade() -> None:
    drop_dead_letter_dedup_index()
