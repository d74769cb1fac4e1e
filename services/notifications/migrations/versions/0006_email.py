"""e-mail: a subject on templates and messages, a send claim on messages, and the satisfaction
survey's e-mail templates

Placeholders as the SMS's: {name}, {number} (the ticket's number), {link} (the one-tap survey
page), in the subject and in the text; the HTML is made from the text (domain.email_html).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

templates = sa.table(
    "templates",
    sa.column("code", sa.String),
    sa.column("locale", sa.String),
    sa.column("subject", sa.String),
    sa.column("body", sa.Text),
)


def upgrade() -> None:
    op.add_column("templates", sa.Column("subject", sa.String(300), server_default="", nullable=False))
    op.add_column("messages", sa.Column("subject", sa.String(300), server_default="", nullable=False))
    # SMTP has no idempotency key: one delivery at a time may hand a pending e-mail to the relay.
    op.add_column("messages", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.bulk_insert(
        templates,
        [
            {
                "code": "ticket_survey_email",
                "locale": "he-IL",
                "subject": "פנייה {number} טופלה: איך היה?",
                "body": (
                    "שלום {name},\n\n"
                    "פנייה מספר {number} טופלה. נשמח לדעת איך היה: לחיצה אחת על ציון מ-1 עד 5 בעמוד הזה.\n\n"
                    "{link}\n\n"
                    "תודה שבחרתם בנו."
                ),
            },
            {
                "code": "ticket_survey_email",
                "locale": "fa-IR",
                "subject": "درخواست {number} رسیدگی شد: نظرتان چیست؟",
                "body": (
                    "سلام {name}،\n\n"
                    "درخواست شماره {number} رسیدگی شد. خوشحال می‌شویم نظرتان را بدانیم: در این صفحه با یک لمس از ۱ تا ۵ نمره دهید.\n\n"
                    "{link}\n\n"
                    "از انتخاب شما سپاسگزاریم."
                ),
            },
            {
                "code": "ticket_survey_email",
                "locale": "en-US",
                "subject": "Request {number} is resolved: how did we do?",
                "body": (
                    "Hello {name},\n\n"
                    "Request {number} is resolved. We would like to know how we did: one tap, from 1 to 5, on this page.\n\n"
                    "{link}\n\n"
                    "Thank you for choosing us."
                ),
            },
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM templates WHERE code = 'ticket_survey_email'")
    op.drop_column("messages", "claimed_until")
    op.drop_column("messages", "subject")
    op.drop_column("templates", "subject")
