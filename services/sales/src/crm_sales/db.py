"""Tables of the sales database."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, func

from crm_kit.tables import MessagingTables

metadata = MetaData()
messaging = MessagingTables(metadata)

deals = Table(
    "deals",
    metadata,
    # Chosen by leads when it recorded the conversion (crm.leads.v1.LeadConverted).
    Column("id", String(64), primary_key=True),
    # One deal per lead: a second conversion of the same lead can never open a second deal.
    Column("lead_id", String(64), nullable=False, unique=True),
    # Since when lead_id is the deal's lead (its conversion, or the merge that moved it): a
    # LeadsMerged older than this is already in lead_id (crm_sales.commands.move_deal_to_lead).
    Column("lead_since", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("title", String(200), nullable=False),
    Column("owner_rep_id", String(64), nullable=True),
    Column("owner_team_id", String(64), nullable=True),
    # The lead's attribution, carried on DealClosed for reporting.
    Column("source", String(50), nullable=False, server_default=""),
    Column("campaign", String(200), nullable=False, server_default=""),
    Column("status", String(20), nullable=False),
    Column("total_minor", BigInteger, nullable=False, server_default="0"),
    Column("currency_code", String(3), nullable=False, server_default=""),
    Column("lost_reason", String(500), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Index("ix_deals_owner", "owner_rep_id"),
    Index("ix_deals_team", "owner_team_id"),
)

deal_items = Table(
    "deal_items",
    metadata,
    Column("deal_id", String(64), ForeignKey("deals.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("sku", String(100), nullable=False),
    Column("description", String(500), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
)
