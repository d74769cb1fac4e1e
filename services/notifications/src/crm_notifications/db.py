"""Tables of the notifications database."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, SmallInteger, String, Table, Text, func

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
    Index("ix_messages_order", "order_id"),
    Index("ix_messages_lead", "lead_id"),
    Index("ix_messages_created", "created_at", "id"),
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
