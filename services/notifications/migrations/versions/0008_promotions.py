"""promotions: advertising to an audience in batches that survive restarts; the suppression list,
marketing opt-outs from customers, inbound replies, delivery receipts on messages (and those that come before their send is recorded), and the
confirmation sent to whoever refuses by reply

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

templates = sa.table(
    "templates",
    sa.column("code", sa.String),
    sa.column("locale", sa.String),
    sa.column("subject", sa.String),
    sa.column("body", sa.Text),
)

# Sent once to whoever refuses advertising by reply: the refusal is confirmed in the same channel.
OPT_OUT_CONFIRMATION = {
    "he-IL": "הוסרת מרשימת הדיוור של {advertiser}. לא תקבל/י מאיתנו עוד הודעות פרסומת.",
    "fa-IR": "شما از فهرست پیام‌های تبلیغاتی {advertiser} حذف شدید و دیگر پیام تبلیغاتی دریافت نمی‌کنید.",
    "en-US": "You have been removed from {advertiser}'s promotional list. You will get no more promotions from us.",
}


def upgrade() -> None:
    op.add_column("messages", sa.Column("promotion_id", sa.String(64), nullable=True))
    op.add_column("messages", sa.Column("customer_id", sa.String(64), server_default="", nullable=False))
    op.add_column("messages", sa.Column("delivery_status", sa.String(20), nullable=True))
    op.add_column("messages", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("messages", sa.Column("link_code", sa.String(16), nullable=True))
    op.add_column("messages", sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_messages_link_code",
        "messages",
        ["link_code"],
        unique=True,
        postgresql_where=sa.text("link_code IS NOT NULL"),
    )
    op.create_index(
        "ix_messages_promotion", "messages", ["promotion_id"], postgresql_where=sa.text("promotion_id IS NOT NULL")
    )
    op.create_index(
        "ix_messages_provider_id",
        "messages",
        ["provider_message_id"],
        postgresql_where=sa.text("provider_message_id IS NOT NULL"),
    )
    op.create_index(
        "ix_messages_promotion_customer",
        "messages",
        ["customer_id", "created_at"],
        postgresql_where=sa.text("promotion_id IS NOT NULL"),
    )
    op.create_index(
        "ix_messages_promotion_recipient",
        "messages",
        ["recipient", "created_at"],
        postgresql_where=sa.text("promotion_id IS NOT NULL"),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("audience", postgresql.JSONB(), nullable=False),
        sa.Column("texts", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("link_url", sa.String(500), nullable=True),
        sa.Column("sms_part_price_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("currency_code", sa.String(3), server_default="", nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("scheduled_by", sa.String(200), server_default="", nullable=False),
        sa.Column("approved_by", sa.String(200), server_default="", nullable=False),
        sa.Column("request_key", sa.String(64), nullable=True, unique=True),
        sa.Column("row_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("resolve_cursor", sa.String(64), server_default="", nullable=False),
        sa.Column("audience_resolved", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("recipients", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_promotions_created", "promotions", ["created_at", "id"])
    op.create_index(
        "ix_promotions_due", "promotions", ["send_at"], postgresql_where=sa.text("status IN ('scheduled', 'sending')")
    )
    op.create_table(
        "promotion_recipients",
        sa.Column("promotion_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("locale", sa.String(20), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=True),
    )
    op.create_index(
        "ix_promotion_recipients_todo",
        "promotion_recipients",
        ["promotion_id", "customer_id"],
        postgresql_where=sa.text("message_id IS NULL"),
    )
    op.create_table(
        "suppressions",
        sa.Column("channel", sa.String(10), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("evidence", sa.String(500), server_default="", nullable=False),
        sa.Column("promotion_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index(
        "ix_suppressions_promotion",
        "suppressions",
        ["promotion_id"],
        postgresql_where=sa.text("promotion_id IS NOT NULL"),
    )
    op.create_table(
        "marketing_opt_outs",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(10), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("provider_message_id", sa.String(200), primary_key=True),
        sa.Column("from_number", sa.String(20), nullable=False),
        sa.Column("to_number", sa.String(20), server_default="", nullable=False),
        sa.Column("text", sa.String(1600), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "early_receipts",
        sa.Column("provider_message_id", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.bulk_insert(
        templates,
        [
            {"code": "opt_out_confirmation", "locale": locale, "subject": "", "body": body}
            for locale, body in OPT_OUT_CONFIRMATION.items()
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM templates WHERE code = 'opt_out_confirmation'")
    for table in (
        "early_receipts",
        "inbound_messages",
        "marketing_opt_outs",
        "suppressions",
        "promotion_recipients",
        "promotions",
    ):
        op.drop_table(table)
    for index in (
        "ix_messages_promotion_customer",
        "ix_messages_promotion_recipient",
        "ix_messages_provider_id",
        "ix_messages_promotion",
    ):
        op.drop_index(index, table_name="messages")
    for column in ("clicked_at", "link_code", "delivered_at", "delivery_status", "customer_id", "promotion_id"):
        op.drop_column("messages", column)
