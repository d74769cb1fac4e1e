"""audiences: what customers bought (customer_purchases), their service desk tickets
(customer_tickets), and on the customer row the facts a segment filters on (the acquiring source,
the latest survey score), with the indexes ResolveAudience's keyset pages walk

Backfilled from the timeline, where the past is kept:
- a won deal is one purchase line (sku '', no description or product line) with the deal's total,
  keyed 'timeline-<entry id>': DealClosed's items were never kept. The total comes from the entry's
  facts, or for entries older than 0008 from its summary ("Deal won: 4,699.00 ILS");
- tickets from their ticket_opened / ticket_resolved entries (open: no resolution on the timeline);
- the latest survey score from the latest survey_answered entry;
- the acquiring source from the customer's earliest capture (not a "came in again" touch): its
  facts, or for entries older than 0008 its summary ("Lead captured from radio, campaign …").
Not backfilled: the items (SKU, description, product line) of deals won before this migration, so
a product criterion sees purchases from now on; a reopened ticket (support publishes no event for a
reopen, before or after this migration).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUDIENCE_INDEXES = (("sms", "phone_number"), ("email", "email"))

# The deal's total from its entry: the facts, else the summary format_money wrote (digits without
# the grouping commas and the decimal point are the minor units).
_BACKFILL_PURCHASES = r"""
INSERT INTO customer_purchases (deal_id, line, customer_id, amount_minor, currency_code, closed_at)
SELECT 'timeline-' || id, 1, customer_id, amount, currency, occurred_at
FROM (
    SELECT id, customer_id, occurred_at,
        CASE WHEN facts->>'amount_minor' ~ '^-?[0-9]{1,18}$' THEN (facts->>'amount_minor')::bigint
             WHEN summary ~ '^Deal won: [0-9,]{1,24}\.[0-9]{2} [A-Z]{3}$'
             THEN translate(substring(summary FROM '^Deal won: ([0-9,.]+) '), ',.', '')::bigint
        END AS amount,
        CASE WHEN facts->>'currency_code' ~ '^[A-Z]{3}$' THEN facts->>'currency_code'
             ELSE substring(summary FROM '^Deal won: [0-9,.]+ ([A-Z]{3})$')
        END AS currency
    FROM timeline WHERE kind = 'deal_won'
) won
WHERE amount IS NOT NULL AND currency IS NOT NULL
ON CONFLICT DO NOTHING
"""

_BACKFILL_TICKETS = """
INSERT INTO customer_tickets (ticket_id, customer_id, kind, opened_at, resolved_at)
SELECT facts->>'ticket_id',
    (array_agg(customer_id ORDER BY occurred_at DESC, id DESC))[1],
    left(coalesce((array_agg(facts->>'ticket_kind' ORDER BY occurred_at DESC, id DESC))[1], ''), 30),
    min(occurred_at) FILTER (WHERE kind = 'ticket_opened'),
    max(occurred_at) FILTER (WHERE kind = 'ticket_resolved')
FROM timeline
WHERE kind IN ('ticket_opened', 'ticket_resolved') AND length(coalesce(facts->>'ticket_id', '')) BETWEEN 1 AND 64
GROUP BY facts->>'ticket_id'
"""

_BACKFILL_SURVEYS = """
UPDATE customers c SET latest_survey_score = s.score, latest_survey_at = s.occurred_at
FROM (
    SELECT DISTINCT ON (customer_id) customer_id, (facts->>'score')::smallint AS score, occurred_at
    FROM timeline WHERE kind = 'survey_answered' AND facts->>'score' ~ '^[1-5]$'
    ORDER BY customer_id, occurred_at DESC, id DESC
) s
WHERE c.id = s.customer_id
"""

_BACKFILL_SOURCES = """
UPDATE customers c
SET acquiring_source = left(coalesce(f.facts->>'source', nullif(
        regexp_replace(regexp_replace(f.summary, '^Lead captured from ', ''), ', campaign .*$', ''),
        'an unknown source'), ''), 50),
    acquired_at = f.occurred_at
FROM (
    SELECT DISTINCT ON (customer_id) customer_id, facts, summary, occurred_at
    FROM timeline
    WHERE kind = 'lead_captured' AND NOT facts ? 'again' AND summary NOT LIKE 'Came in again%'
    ORDER BY customer_id, occurred_at, id
) f
WHERE c.id = f.customer_id
"""


def upgrade() -> None:
    op.add_column("customers", sa.Column("acquiring_source", sa.String(50), server_default="", nullable=False))
    op.add_column("customers", sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("customers", sa.Column("latest_survey_score", sa.SmallInteger(), nullable=True))
    op.add_column("customers", sa.Column("latest_survey_at", sa.DateTime(timezone=True), nullable=True))
    for channel, address in _AUDIENCE_INDEXES:
        op.create_index(
            f"ix_customers_audience_{channel}",
            "customers",
            ["id"],
            postgresql_where=sa.text(f"merged_into_id IS NULL AND marketing_{channel}_consent AND {address} <> ''"),
        )
    op.create_table(
        "customer_purchases",
        sa.Column("deal_id", sa.String(64), primary_key=True),
        sa.Column("line", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("sku", sa.String(100), server_default="", nullable=False),
        sa.Column("description", sa.String(500), server_default="", nullable=False),
        sa.Column("product_line", sa.String(100), server_default="", nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_customer_purchases_customer", "customer_purchases", ["customer_id", "closed_at"])
    op.create_table(
        "customer_tickets",
        sa.Column("ticket_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_customer_tickets_customer", "customer_tickets", ["customer_id"])
    op.create_index(
        "ix_customer_tickets_open_complaints",
        "customer_tickets",
        ["customer_id"],
        postgresql_where=sa.text("kind = 'complaint' AND resolved_at IS NULL"),
    )
    for statement in (_BACKFILL_PURCHASES, _BACKFILL_TICKETS, _BACKFILL_SURVEYS, _BACKFILL_SOURCES):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("customer_tickets")
    op.drop_table("customer_purchases")
    for channel, _ in _AUDIENCE_INDEXES:
        op.drop_index(f"ix_customers_audience_{channel}", table_name="customers")
    for column in ("latest_survey_at", "latest_survey_score", "acquired_at", "acquiring_source"):
        op.drop_column("customers", column)
