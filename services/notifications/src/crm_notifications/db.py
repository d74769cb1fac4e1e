"""Tables of the notifications database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from crm_kit.tables import MessagingTables

metadata = MetaData()
messaging = MessagingTables(metadata)

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),
    # The intent's unique key; also sent to the provider as its Idempotency-Key.
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("channel", String(20), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("body", Text, nullable=False),
    # An e-mail's subject; "" for an SMS.
    Column("subject", String(300), nullable=False, server_default=""),
    # Until when one delivery holds the right to hand this e-mail to the relay (SMTP has no
    # idempotency key, so two overlapping deliveries must not both send): `commands.claim_send`.
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("locale", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("provider_message_id", String(200), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # The SMS parts the body costs (crm_notifications.sms_segments); NULL for e-mail.
    Column("sms_parts", SmallInteger, nullable=True),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The promotion the message belongs to (NULL: a service message) and its recipient customer.
    Column("promotion_id", String(64), nullable=True),
    Column("customer_id", String(64), nullable=False, server_default=""),
    # What the provider's delivery receipt said (delivered, undelivered), and when; NULL until one came.
    Column("delivery_status", String(20), nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    # A promotion message's short tracked link (`/r/<code>`), and when it was first followed.
    Column("link_code", String(16), nullable=True),
    # A promotion message's A/B variant (NULL: none).
    Column("variant", String(3), nullable=True),
    Column("clicked_at", DateTime(timezone=True), nullable=True),
    # A tracked e-mail's first open (its image fetched under the link code; promotions.track_opens).
    Column("opened_at", DateTime(timezone=True), nullable=True),
    Index("ix_messages_order", "order_id"),
    Index("ix_messages_lead", "lead_id"),
    Index("ix_messages_created", "created_at", "id"),
    Index("ix_messages_promotion", "promotion_id", postgresql_where=text("promotion_id IS NOT NULL")),
    Index("ix_messages_link_code", "link_code", unique=True, postgresql_where=text("link_code IS NOT NULL")),
    # A delivery receipt names the provider's id; a reply names the number a promotion reached.
    Index("ix_messages_provider_id", "provider_message_id", postgresql_where=text("provider_message_id IS NOT NULL")),
    # A promotion's frequency cap counts each recipient's recent promotion messages.
    Index(
        "ix_messages_promotion_customer",
        "customer_id",
        "created_at",
        postgresql_where=text("promotion_id IS NOT NULL"),
    ),
    Index(
        "ix_messages_promotion_recipient",
        "recipient",
        "created_at",
        postgresql_where=text("promotion_id IS NOT NULL"),
    ),
)

# A scheduled report's e-mail to one recipient (ScheduledReportReady): sent once per event and
# address, claimed while one delivery hands it to the relay (`report_mail_store`).
report_mails = Table(
    "report_mails",
    metadata,
    Column("idempotency_key", String(400), primary_key=True),
    Column("schedule_id", String(64), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("status", String(20), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("provider_message_id", String(200), nullable=True),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("ix_report_mails_schedule", "schedule_id", "created_at"),
)

templates = Table(
    "templates",
    metadata,
    Column("code", String(100), primary_key=True),
    Column("locale", String(20), primary_key=True),
    Column("body", Text, nullable=False),
    # An e-mail's subject (placeholders as the body's); "" for SMS.
    Column("subject", String(300), nullable=False, server_default=""),
)

# A promotion: advertising to an audience (customers' AudienceFilter, resolved when sending starts),
# one text per locale, sent in batches by `promotion_runner`. The runner that holds the lease
# (lease_owner, lease_until) is the only one sending it; every step is saved, so a restart resumes.
promotions = Table(
    "promotions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("channel", String(10), nullable=False),
    # customers.v1.AudienceFilter as its proto JSON.
    Column("audience", JSONB, nullable=False),
    # [{"locale", "subject", "body"}, ...]: the first is for recipients of a locale with no text.
    Column("texts", JSONB, nullable=False),
    Column("status", String(20), nullable=False),
    Column("send_at", DateTime(timezone=True), nullable=True),
    # The landing page {link} leads to (each recipient's own short link); NULL: none.
    Column("link_url", String(500), nullable=True),
    Column("sms_part_price_minor", BigInteger, nullable=False, server_default="0"),
    Column("email_price_minor", BigInteger, nullable=False, server_default="0"),
    Column("currency_code", String(3), nullable=False, server_default=""),
    Column("created_by", String(200), nullable=False),
    Column("scheduled_by", String(200), nullable=False, server_default=""),
    Column("approved_by", String(200), nullable=False, server_default=""),
    # sha256 of the creator and the request id: a retry returns the first promotion, for its caller only.
    Column("request_key", String(64), nullable=True, unique=True),
    Column("row_version", Integer, nullable=False, server_default="1"),
    # The last customer id the audience was resolved to (keyset), and whether it is done.
    Column("resolve_cursor", String(64), nullable=False, server_default=""),
    Column("audience_resolved", Boolean, nullable=False, server_default="false"),
    Column("recipients", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    # A/B test (texts of two or three variants; see promotions.py): the share tested first, the
    # rule and wait that choose the winner, the winner and when; wait_until holds the promotion
    # back from every runner until the winner may be chosen.
    Column("test_percent", SmallInteger, nullable=False, server_default="0"),
    Column("winner_rule", String(10), nullable=False, server_default=""),
    Column("winner_wait_minutes", Integer, nullable=False, server_default="240"),
    Column("winner_variant", String(3), nullable=False, server_default=""),
    Column("winner_at", DateTime(timezone=True), nullable=True),
    Column("wait_until", DateTime(timezone=True), nullable=True),
    # E-mail only, opted into: each message's HTML carries an open image (see promotions.py).
    Column("track_opens", Boolean, nullable=False, server_default=text("false")),
    Index("ix_promotions_created", "created_at", "id"),
    Index("ix_promotions_due", "send_at", postgresql_where=text("status IN ('scheduled', 'sending')")),
)

# Who a promotion goes to: one row per customer (the primary key is the exactly-once guard), with
# the address and locale as resolved; message_id is set in the transaction that records the
# message's intent, so a recipient without one has not been processed yet.
promotion_recipients = Table(
    "promotion_recipients",
    metadata,
    Column("promotion_id", String(64), primary_key=True),
    Column("customer_id", String(64), primary_key=True),
    Column("address", String(320), nullable=False),
    Column("locale", String(20), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("message_id", String(64), nullable=True),
    # The A/B variant the recipient gets; NULL: waiting for the winner (or no variants at all).
    Column("variant", String(3), nullable=True),
    Index(
        "ix_promotion_recipients_todo",
        "promotion_id",
        "customer_id",
        postgresql_where=text("message_id IS NULL"),
    ),
)

# Addresses no advertising goes to, per channel: a refusal by reply or by an unsubscribe click
# takes effect here at once (customers records the consent withdrawal from ConsentWithdrawn).
suppressions = Table(
    "suppressions",
    metadata,
    Column("channel", String(10), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("source", String(30), nullable=False),
    Column("evidence", String(500), nullable=False, server_default=""),
    # The promotion whose message the person answered, when known (the report's opted out).
    Column("promotion_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_suppressions_promotion", "promotion_id", postgresql_where=text("promotion_id IS NOT NULL")),
)

# Customers whose advertising consent on a channel is withdrawn, from customers' ConsentChanged
# (a withdrawal recorded by an agent or a form after the audience was resolved).
marketing_opt_outs = Table(
    "marketing_opt_outs",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("channel", String(10), primary_key=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)

# Replies received by SMS, once each (the provider's id is the key).
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("provider_message_id", String(200), primary_key=True),
    Column("from_number", String(20), nullable=False),
    Column("to_number", String(20), nullable=False, server_default=""),
    Column("text", String(1600), nullable=False),
    Column("action", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Delivery receipts that came before their message's send was recorded (a provider answers the
# send, then reports delivery within milliseconds, while the batch's outcomes are still being
# saved): kept, and applied once the message has the provider's id (`promotion_store.apply_early_receipts`,
# every few seconds); those that never match anything are dropped after a day.
early_receipts = Table(
    "early_receipts",
    metadata,
    Column("provider_message_id", String(200), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
