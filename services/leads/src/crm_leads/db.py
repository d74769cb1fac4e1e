"""Tables of the leads database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from crm_kit.tables import MessagingTables

metadata = MetaData()
messaging = MessagingTables(metadata)

teams = Table(
    "teams",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    # Round-robin turn counter; incremented under a row lock so concurrent captures stay fair.
    Column("rr_turn", BigInteger, nullable=False, server_default="0"),
)

reps = Table(
    "reps",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("team_id", String(64), ForeignKey("teams.id"), nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
)

routing_rules = Table(
    "routing_rules",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("sources", ARRAY(String(50)), nullable=False),
    Column("team_id", String(64), ForeignKey("teams.id"), nullable=False),
    Column("priority", Integer, nullable=False, unique=True),
)

# Web-to-lead keys of public lead-capture forms. Only the SHA-256 of a secret is stored; a revoked
# key stays (leads keep pointing at the key that captured them).
web_form_keys = Table(
    "web_form_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("display_name", String(100), nullable=False),
    Column("source", String(50), nullable=False),
    Column("campaign", String(100), nullable=False, server_default=""),
    Column("secret_hash", String(64), nullable=False),
    Column("secret_prefix", String(12), nullable=False),
    Column("create_actor", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_web_form_keys_created", "created_at", "id"),
)

leads = Table(
    "leads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("request_id", String(200), nullable=True, unique=True),
    Column("full_name", String(200), nullable=False),
    Column("phone_number", String(20), nullable=False),
    Column("email", String(320), nullable=False),
    Column("source", String(50), nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("locale", String(20), nullable=False),
    Column("product_line", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("rep_id", String(64), ForeignKey("reps.id"), nullable=True),
    Column("team_id", String(64), nullable=True),
    Column("rule_id", String(64), nullable=True),
    Column("assign_reason", String(500), nullable=False, server_default=""),
    Column("assigned_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("web_form_key_id", String(64), ForeignKey("web_form_keys.id"), nullable=True),
    Column("campaign_id", String(64), nullable=True),
    Column("city", String(100), nullable=False, server_default=""),
    Column("region", String(100), nullable=False, server_default=""),
    # The speed-to-lead clock: due when assigned by a rule with an SLA; stopped by the first
    # response (a logged call, e-mail, SMS or meeting); breached when the deadline passed first.
    Column("first_response_due_at", DateTime(timezone=True), nullable=True),
    Column("first_response_at", DateTime(timezone=True), nullable=True),
    Column("sla_breached_at", DateTime(timezone=True), nullable=True),
    Column("merged_into_id", String(64), nullable=True),
    Column("missing_fields", ARRAY(String(30)), nullable=False, server_default="{}"),
    Column("touch_count", Integer, nullable=False, server_default="1"),
    # The full name normalized for matching (Hebrew/Persian folding): see crm_leads.duplicates.
    Column("name_key", String(200), nullable=False, server_default=""),
    Index("ix_leads_created", "created_at", "id"),
    Index("ix_leads_phone_number", "phone_number", postgresql_where=text("phone_number <> ''")),
    Index("ix_leads_email", "email", postgresql_where=text("email <> ''")),
    Index("ix_leads_campaign", "campaign_id", "created_at", "id"),
    Index("ix_leads_rep", "rep_id"),
    Index("ix_leads_source", "source"),
    Index("ix_leads_team", "team_id", "created_at", "id"),
)

deals = Table(
    "deals",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("lead_id", String(64), ForeignKey("leads.id"), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("owner_rep_id", String(64), nullable=True),
    Column("status", String(20), nullable=False),
    Column("total_minor", BigInteger, nullable=False, server_default="0"),
    Column("currency_code", String(3), nullable=False, server_default=""),
    Column("lost_reason", String(500), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True), nullable=True),
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


# ---------------------------------------------------------------- campaigns and import (0006)

# ---------------------------------------------------------------- routing and SLA (0007)

# ---------------------------------------------------------------- activities (0008)

# ---------------------------------------------------------------- duplicates and merge (0009)
