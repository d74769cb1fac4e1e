"""Tables of the orders database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
)

from crm_kit.tables import MessagingTables

metadata = MetaData()
messaging = MessagingTables(metadata)

orders = Table(
    "orders",
    metadata,
    Column("id", String(64), primary_key=True),
    # One order per deal: the unique key makes a repeated DealClosed (any event id) a no-op.
    Column("deal_id", String(64), nullable=False, unique=True),
    Column("lead_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("carrier", String(100), nullable=False, server_default=""),
    Column("tracking_number", String(100), nullable=False, server_default=""),
    Column("estimated_delivery_date", Date, nullable=True),
    Column("shipped_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_orders_created", "created_at", "id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("sku", String(100), nullable=False),
    Column("description", String(500), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
)
