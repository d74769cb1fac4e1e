"""seed the satisfaction-survey SMS templates (sent when a ticket is resolved)

Placeholders: {name}, {number} (the ticket's number), {link} (the one-tap survey page).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

templates = sa.table(
    "templates", sa.column("code", sa.String), sa.column("locale", sa.String), sa.column("body", sa.Text)
)


def upgrade() -> None:
    op.bulk_insert(
        templates,
        [
            {
                "code": "ticket_survey",
                "locale": "he-IL",
                "body": "שלום {name}, פנייה {number} טופלה. איך היה? דרגו בלחיצה אחת: {link}",
            },
            {
                "code": "ticket_survey",
                "locale": "en-US",
                "body": "Hello {name}, request {number} is resolved. How did we do? One tap: {link}",
            },
            {
                "code": "ticket_survey",
                "locale": "fa-IR",
                "body": "سلام {name}، درخواست {number} رسیدگی شد. نظرتان چیست؟ با یک لمس: {link}",
            },
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM templates WHERE code = 'ticket_survey'")
