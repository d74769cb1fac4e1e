"""Tables of the sales database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from crm_kit.tables import MessagingTables

metadata = MetaData()
messaging = MessagingTables(metadata)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("product_line", String(100), nullable=False, server_default=""),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    # Bumped by every change: the source of the pipeline's etag (crm_sales.domain.etag).
    Column("version", Integer, nullable=False, server_default="1"),
    # CreatePipeline's AIP-155 key: a repeated request finds the first pipeline.
    Column("request_id", String(200), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

pipeline_stages = Table(
    "pipeline_stages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("pipeline_id", String(64), ForeignKey("pipelines.id"), nullable=False),
    # Not unique: a replaced stage list renumbers its rows one UPDATE at a time.
    Column("position", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    Column("probability", Integer, nullable=False),
    Column("required_fields", ARRAY(String(50)), nullable=False, server_default="{}"),
    # crm_sales.domain.StageOutcome: open, won, lost.
    Column("outcome", String(10), nullable=False),
    Index("ix_pipeline_stages_pipeline", "pipeline_id", "position"),
)

lost_reasons = Table(
    "lost_reasons",
    metadata,
    Column("code", String(50), primary_key=True),
    Column("position", Integer, nullable=False),
    # Display names by BCP 47 language tag: {"he": …, "en": …, "fa": …}.
    Column("names", JSONB, nullable=False),
)

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
    Column("pipeline_id", String(64), ForeignKey("pipelines.id"), nullable=False),
    # A stage of pipeline_id: an open one while the deal is open, the won or lost one once closed.
    Column("stage_id", String(64), ForeignKey("pipeline_stages.id"), nullable=False),
    Column("stage_entered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expected_close_date", Date, nullable=True),
    # Set together or not at all (UpdateDeal): what the deal is expected to bring.
    Column("amount_minor", BigInteger, nullable=True),
    Column("amount_currency", String(3), nullable=True),
    Column("lost_reason_code", String(50), ForeignKey("lost_reasons.code"), nullable=True),
    # Bumped by every change of the deal: the source of its etag (crm_sales.domain.etag).
    Column("version", Integer, nullable=False, server_default="1"),
    Index("ix_deals_owner", "owner_rep_id"),
    Index("ix_deals_team", "owner_team_id"),
    Index("ix_deals_stage", "stage_id"),
)

# Every entry of a deal into a stage. Stage ids without a foreign key: a stage removed from its
# pipeline (when no deal sits in it) keeps the history of the deals that passed through it.
deal_stage_history = Table(
    "deal_stage_history",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("deal_id", String(64), ForeignKey("deals.id"), nullable=False),
    Column("from_stage_id", String(64), nullable=True),
    Column("to_stage_id", String(64), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("moved_at", DateTime(timezone=True), nullable=False),
    Column("seconds_in_previous", BigInteger, nullable=False, server_default="0"),
    Index("ix_deal_stage_history_deal", "deal_id", "id"),
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
