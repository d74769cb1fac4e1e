"""Tables of the sales database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    Sequence,
    String,
    Table,
    UniqueConstraint,
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
    # crm_sales.pipelines.ForecastCategory: where the forecast counts a deal in this stage.
    Column("forecast_category", String(20), nullable=False),
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
    # The deal lists' order (expected close, deals without a date last) as a plain column, so a
    # keyset page is one row comparison an index range scan serves (migration 0003).
    Column(
        "expected_close_sort",
        Date,
        Computed("COALESCE(expected_close_date, DATE 'infinity')", persisted=True),
        nullable=False,
    ),
    # Each leads with a filter a list or the board is held to, then the list's order.
    Index("ix_deals_close", "expected_close_sort", "id"),
    Index("ix_deals_stage_close", "stage_id", "expected_close_sort", "id"),
    Index("ix_deals_pipeline_close", "pipeline_id", "expected_close_sort", "id"),
    Index("ix_deals_owner_close", "owner_rep_id", "expected_close_sort", "id"),
    Index("ix_deals_team_close", "owner_team_id", "expected_close_sort", "id"),
    Index("ix_deals_created", "created_at", "id"),
    # A won or lost stage's recent closes, covering what a board sums of them (index-only).
    Index(
        "ix_deals_stage_closed",
        "stage_id",
        "closed_at",
        "id",
        postgresql_where=text("closed_at IS NOT NULL"),
        postgresql_include=[
            "status",
            "currency_code",
            "total_minor",
            "amount_currency",
            "amount_minor",
            "owner_rep_id",
            "owner_team_id",
        ],
    ),
)

# The open deals' count and amount per stage, owner rep, owner team and amount currency ("" for none
# of them): kept by the trigger `deals_stage_totals` (migration 0003) on every change of `deals`, so
# a board's sums and the metrics read a few rows per stage, not every open deal.
deal_stage_totals = Table(
    "deal_stage_totals",
    metadata,
    Column("stage_id", String(64), primary_key=True),
    Column("owner_rep_id", String(64), primary_key=True),
    Column("owner_team_id", String(64), primary_key=True),
    Column("currency_code", String(3), primary_key=True),
    Column("pipeline_id", String(64), nullable=False),
    Column("deals", BigInteger, nullable=False),
    Column("amount_minor", Numeric, nullable=False),
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


# The catalog (crm_sales.catalog): what a company sells, at which price, with which VAT.
products = Table(
    "products",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("sku", String(100), nullable=False, unique=True),
    # Display names by BCP 47 language tag ({"he": …, "en": …, "fa": …}), at least one.
    Column("names", JSONB, nullable=False),
    Column("unit", String(20), nullable=False),
    # crm_sales.catalog.domain.TaxClass: standard, zero, exempt.
    Column("tax_class", String(20), nullable=False),
    Column("product_line", String(100), nullable=False, server_default=""),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    # Bumped by every change: the source of the product's etag (crm_sales.domain.etag).
    Column("version", Integer, nullable=False, server_default="1"),
    # CreateProduct's AIP-155 key.
    Column("request_id", String(200), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

price_lists = Table(
    "price_lists",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    # ISO 4217: every item of the list is priced in it.
    Column("currency", String(3), nullable=False),
    # ISO 3166-1 alpha-2: whose VAT (tax_rates) applies to what is sold from this list.
    Column("country", String(2), nullable=False),
    Column("valid_from", Date, nullable=False),
    # Inclusive; None: open-ended.
    Column("valid_to", Date, nullable=True),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("request_id", String(200), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="ck_price_lists_validity"),
)

price_list_items = Table(
    "price_list_items",
    metadata,
    Column("price_list_id", String(64), ForeignKey("price_lists.id"), primary_key=True),
    Column("product_id", String(64), ForeignKey("products.id"), primary_key=True),
    # In the list's currency, per one unit of the product (crm_sales.catalog.money).
    Column("unit_price_minor", BigInteger, nullable=False),
    CheckConstraint("unit_price_minor >= 0", name="ck_price_list_items_price"),
    Index("ix_price_list_items_product", "product_id"),
)

# VAT rate history: the rate of (country, tax_class) on a day is the row with the latest
# valid_from on or before it; a new rate is a new row, so past documents keep their rate.
tax_rates = Table(
    "tax_rates",
    metadata,
    Column("country", String(2), primary_key=True),
    Column("tax_class", String(20), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    # Basis points: 1800 is 18 %.
    Column("rate_bp", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("rate_bp >= 0 AND rate_bp <= 10000", name="ck_tax_rates_rate"),
)


# Quotes (crm_sales.quotes): one row per version; the versions of a quote share its number.
quote_numbers = Sequence("quote_numbers", metadata=metadata)

quotes = Table(
    "quotes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("deal_id", String(64), ForeignKey("deals.id"), nullable=False),
    # From quote_numbers (Q-000042); gaps are harmless, a quote number is no tax document's.
    Column("number", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    # crm_sales.quotes.domain.QuoteStatus as stored (a sent one past valid_until reads as expired
    # until the sweep stores it).
    Column("status", String(20), nullable=False),
    Column("price_list_id", String(64), ForeignKey("price_lists.id"), nullable=False),
    # The price list's currency and VAT country, copied when the quote was created.
    Column("currency_code", String(3), nullable=False),
    Column("country", String(2), nullable=False),
    Column("quote_date", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("locale", String(5), nullable=False),
    Column("bill_to_name", String(200), nullable=False),
    Column("bill_to_tax_id", String(50), nullable=False, server_default=""),
    Column("bill_to_address", String(500), nullable=False, server_default=""),
    Column("bill_to_phone", String(50), nullable=False, server_default=""),
    Column("discount_bp", Integer, nullable=False, server_default="0"),
    # The totals as computed when the lines last changed (crm_sales.catalog.money), stored so a
    # sent quote reads the same forever.
    Column("subtotal_minor", BigInteger, nullable=False, server_default="0"),
    Column("discount_minor", BigInteger, nullable=False, server_default="0"),
    Column("net_minor", BigInteger, nullable=False, server_default="0"),
    Column("tax_minor", BigInteger, nullable=False, server_default="0"),
    Column("total_minor", BigInteger, nullable=False, server_default="0"),
    Column("notes", String(2000), nullable=False, server_default=""),
    Column("revised_from_id", String(64), ForeignKey("quotes.id"), nullable=True),
    Column("reject_reason", String(500), nullable=False, server_default=""),
    # CreateQuote's and ReviseQuote's AIP-155 key, per deal: a repeated request finds its version,
    # and a key reused on another deal never answers with that deal's quote.
    Column("request_id", String(200), nullable=True),
    # Bumped by every change of this version: the source of its etag (crm_sales.domain.etag).
    Column("row_version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("number", "version", name="uq_quotes_number_version"),
    UniqueConstraint("deal_id", "request_id", name="uq_quotes_deal_request"),
    CheckConstraint("discount_bp >= 0 AND discount_bp <= 10000", name="ck_quotes_discount"),
    Index("ix_quotes_deal", "deal_id", "created_at"),
    # The expiry sweep's scan: sent versions by their last day.
    Index("ix_quotes_sent_valid_until", "valid_until", postgresql_where=text("status = 'sent'")),
)

# A quote version's lines, copied from the catalog when added: later price or name changes never
# rewrite a quote.
quote_lines = Table(
    "quote_lines",
    metadata,
    Column("quote_id", String(64), ForeignKey("quotes.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    # Kept by the versions of one quote: an update sending it back keeps the stored price.
    Column("line_id", String(64), nullable=False),
    Column("product_id", String(64), ForeignKey("products.id"), nullable=False),
    Column("sku", String(100), nullable=False),
    # The product's names by language when the line was added ({"he": …, "en": …, "fa": …}).
    Column("names", JSONB, nullable=False),
    Column("unit", String(20), nullable=False),
    Column("tax_class", String(20), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("discount_bp", Integer, nullable=False),
    # After the line's discount; the line's share of the quote's discount is apart, so the line
    # shows what its own discount made of it.
    Column("net_minor", BigInteger, nullable=False),
    Column("document_discount_minor", BigInteger, nullable=False),
    Column("tax_rate_bp", Integer, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    UniqueConstraint("quote_id", "line_id", name="uq_quote_lines_line"),
    CheckConstraint("discount_bp >= 0 AND discount_bp <= 10000", name="ck_quote_lines_discount"),
)
