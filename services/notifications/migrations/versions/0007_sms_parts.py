"""messages.sms_parts: the SMS parts each message's body costs (GSM-7 160/153, UCS-2 70/67), filled
in for the SMS already recorded, in batches so a large table is not one long transaction's lock.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_notifications.sms_segments import count_parts

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    op.add_column("messages", sa.Column("sms_parts", sa.SmallInteger(), nullable=True))
    bind = op.get_bind()
    after = ""
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, body FROM messages WHERE channel = 'sms' AND sms_parts IS NULL AND id > :after "
                "ORDER BY id LIMIT :n"
            ),
            {"after": after, "n": BATCH},
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text(
                "UPDATE messages SET sms_parts = x.parts FROM unnest(CAST(:ids AS varchar[]), CAST(:parts AS int[])) "
                "AS x(id, parts) WHERE messages.id = x.id"
            ),
            {"ids": [r.id for r in rows], "parts": [count_parts(r.body).parts for r in rows]},
        )
        after = rows[-1].id


def downgrade() -> None:
    op.drop_column("messages", "sms_parts")
