"""seed the order-shipped SMS templates

Templates are data the business edits; these are the starting texts so a fresh install
sends the shipment SMS in Hebrew (the default), English and Persian. Placeholders:
{name}, {carrier}, {tracking}, {date} (the locale's short date).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
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
                "code": "order_shipped",
                "locale": "he-IL",
                "body": "שלום {name}, ההזמנה שלך נשלחה עם {carrier} (מעקב {tracking}). מועד מסירה משוער: {date}.",
            },
            {
                "code": "order_shipped",
                "locale": "en-US",
                "body": "Hello {name}, your order has shipped with {carrier} (tracking {tracking}). "
                "Estimated delivery: {date}.",
            },
            {
                "code": "order_shipped",
                "locale": "fa-IR",
                "body": "سلام {name}، سفارش شما با {carrier} ارسال شد (کد رهگیری {tracking}). تاریخ تقریبی تحویل: {date}.",
            },
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM templates WHERE code = 'order_shipped' AND locale IN ('he-IL', 'en-US', 'fa-IR')")
