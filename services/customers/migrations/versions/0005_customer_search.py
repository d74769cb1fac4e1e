"""customer search: the folded words of every customer's name, with their consonant skeletons

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_customers.domain import name_words

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5_000


def upgrade() -> None:
    op.create_table(
        "customer_name_words",
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), primary_key=True),
        sa.Column("position", sa.SmallInteger, primary_key=True),
        sa.Column("word", sa.String(100, collation="C"), nullable=False),
        sa.Column("skeleton", sa.String(100, collation="C"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    _backfill()
    # Built after the backfill: one sort instead of an index update per row.
    op.create_index(
        "ix_customer_name_words_word", "customer_name_words", ["word", sa.text("created_at DESC"), "customer_id"]
    )
    op.create_index(
        "ix_customer_name_words_skeleton",
        "customer_name_words",
        ["skeleton"],
        postgresql_where=sa.text("skeleton <> ''"),
    )


def _backfill() -> None:
    """Every live customer's words, in batches by id (the folding is Python's, not SQL's: this
    uses the folding of the release that runs it; a later change to the folding re-keys in a
    migration of its own)."""
    conn = op.get_bind()
    words = sa.table(
        "customer_name_words",
        sa.column("customer_id"),
        sa.column("position"),
        sa.column("word"),
        sa.column("skeleton"),
        sa.column("created_at"),
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, full_name, created_at FROM customers"
                " WHERE id > :after AND merged_into_id IS NULL ORDER BY id LIMIT :n"
            ),
            {"after": after, "n": _BATCH},
        ).all()
        if not rows:
            return
        values = [
            {"customer_id": row.id, "position": i, "word": w.word, "skeleton": w.skeleton, "created_at": row.created_at}
            for row in rows
            for i, w in enumerate(name_words(row.full_name), start=1)
        ]
        if values:
            conn.execute(words.insert(), values)
        after = rows[-1].id


def downgrade() -> None:
    op.drop_table("customer_name_words")
