"""e-mail's consent in force on the customer row, as SMS's is: GetContactInfo reads it per message
(a survey or, later, a campaign by e-mail), so it must not replay the history each time

Backfilled from the consent history: the latest e-mail record per purpose (by when it happened,
then by id) decides; without one the defaults hold (service allowed, marketing not).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "customers", sa.Column("transactional_email_opt_out", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column(
        "customers", sa.Column("marketing_email_consent", sa.Boolean(), server_default="false", nullable=False)
    )
    op.execute(
        """
        UPDATE customers c SET
          transactional_email_opt_out = coalesce((
            SELECT NOT granted FROM consents k
            WHERE k.customer_id = c.id AND k.channel = 'email' AND k.purpose = 'service'
            ORDER BY k.occurred_at DESC, k.id DESC LIMIT 1), false),
          marketing_email_consent = coalesce((
            SELECT granted FROM consents k
            WHERE k.customer_id = c.id AND k.channel = 'email' AND k.purpose = 'marketing'
            ORDER BY k.occurred_at DESC, k.id DESC LIMIT 1), false)
        WHERE EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.id AND k.channel = 'email')
        """
    )


def downgrade() -> None:
    op.drop_column("customers", "marketing_email_consent")
    op.drop_column("customers", "transactional_email_opt_out")
