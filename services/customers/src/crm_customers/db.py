"""Tables of the customers database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from crm_kit.tables import MessagingTables

metadata = MetaData()
messaging = MessagingTables(metadata)

customers = Table(
    "customers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("full_name", String(200), nullable=False),
    # E.164, or empty when the customer left only an e-mail.
    Column("phone_number", String(20), nullable=False, server_default=""),
    # Lower-case, or empty.
    Column("email", String(320), nullable=False, server_default=""),
    Column("locale", String(20), nullable=False),
    Column("transactional_sms_opt_out", Boolean, nullable=False, server_default="false"),
    Column("marketing_sms_consent", Boolean, nullable=False, server_default="false"),
    # E-mail's consent in force, kept like SMS's (migration 0010).
    Column("transactional_email_opt_out", Boolean, nullable=False, server_default="false"),
    Column("marketing_email_consent", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Set when merged into another customer (the survivor); the row stays as a tombstone.
    Column("merged_into_id", String(64), nullable=True),
    # Bumped by every profile edit: the customer's ETag (crm_kit.etags).
    Column("row_version", Integer, nullable=False, server_default="1"),
    # Free labels a department gives the customer (wholesale, vip, architect…): domain.normalize_tags.
    Column("tags", ARRAY(String(50)), nullable=False, server_default="{}"),
    # Facts an audience filters on, kept current by the events that bring them (migration 0011):
    # the source of the customer's first lead (the earliest capture wins, whatever order captures
    # arrive in, and across a merge; '' when unknown) and when that lead was captured…
    Column("acquiring_source", String(50), nullable=False, server_default=""),
    Column("acquired_at", DateTime(timezone=True), nullable=True),
    # …and the latest satisfaction score (1-5) the customer gave, and when (null: never answered).
    Column("latest_survey_score", SmallInteger, nullable=True),
    Column("latest_survey_at", DateTime(timezone=True), nullable=True),
    Index("ix_customers_phone_number", "phone_number"),
    Index("ix_customers_email", "email"),
    Index("ix_customers_created", "created_at", "id"),
    Index("ix_customers_tags", "tags", postgresql_using="gin"),
    # ResolveAudience's keyset page for advertising, in id order over only the live customers who
    # may receive it on the channel (queries.audience: the same predicates, written as constants).
    *(
        Index(
            f"ix_customers_audience_{channel}",
            "id",
            postgresql_where=text(f"merged_into_id IS NULL AND marketing_{channel}_consent AND {address} <> ''"),
        )
        for channel, address in (("sms", "phone_number"), ("email", "email"))
    ),
)

# The people to talk to at a business customer.
customer_contacts = Table(
    "customer_contacts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("role", String(100), nullable=False, server_default=""),
    Column("phone_number", String(20), nullable=False, server_default=""),
    Column("email", String(320), nullable=False, server_default=""),
    Column("is_primary", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_customer_contacts_customer", "customer_id", "id"),
)

customer_addresses = Table(
    "customer_addresses",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("line1", String(200), nullable=False),
    Column("line2", String(200), nullable=False, server_default=""),
    Column("city", String(100), nullable=False),
    Column("postal_code", String(20), nullable=False, server_default=""),
    Column("country_code", String(2), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_customer_addresses_customer", "customer_id", "id"),
)

# The words a live customer is found by (domain.name_words): one row per folded word of the
# name, with its consonant skeleton and the customer's creation time (the search ranks equal
# matches newest first without reading customers). "C" collation, so a prefix is an index range
# (word >= p AND word < p || U+10FFFF) whatever the database's locale. A merged customer's words
# are deleted: a tombstone is not found.
customer_name_words = Table(
    "customer_name_words",
    metadata,
    Column("customer_id", String(64), ForeignKey("customers.id"), primary_key=True),
    Column("position", SmallInteger, primary_key=True),
    Column("word", String(100, collation="C"), nullable=False),
    Column("skeleton", String(100, collation="C"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Newest first within a word: a search whose words are all exact reads a common word's
    # newest rows only (queries._EXACT_SEARCH); a prefix is a range of it.
    Index("ix_customer_name_words_word", "word", text("created_at DESC"), "customer_id"),
    Index("ix_customer_name_words_skeleton", "skeleton", postgresql_where=text("skeleton <> ''")),
)

customer_leads = Table(
    "customer_leads",
    metadata,
    Column("lead_id", String(64), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_customer_leads_customer", "customer_id"),
)

timeline = Table(
    "timeline",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("summary", Text, nullable=False),
    Column("channel", String(20), nullable=False),
    # The event that produced the entry: a second guard, after the inbox, against doubles.
    Column("event_id", String(64), nullable=False, unique=True),
    # The entry's facts by name (source, amount_minor, stage, …): a reader renders the entry in its
    # own language from them; `summary` is the English line. {} on entries older than migration 0008.
    Column("facts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_timeline_customer_occurred", "customer_id", "occurred_at", "id"),
)

# Every consent given or withdrawn (append-only: the history a regulator may ask for). The state in
# force per channel and purpose is the latest by occurred_at; SMS's and e-mail's are also kept on the
# customer row (marketing_*_consent, transactional_*_opt_out), which GetContactInfo reads per message.
consents = Table(
    "consents",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("purpose", String(10), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("source", String(20), nullable=False),
    Column("evidence", String(500), nullable=False, server_default=""),
    Column("actor", String(200), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_consents_customer", "customer_id", "channel", "purpose", "occurred_at", "id"),
)

# What each customer bought: one row per line of a won deal (DealClosed's items, numbered from 1:
# quantity × unit price; a won deal without items is one line, sku '', with its total). Audiences
# filter on it ("bought a sofa in the last year"; lifetime value per currency is its sum). Moved to
# the survivor by a merge. Deals won before migration 0011 are one line each with the deal's total,
# keyed 'timeline-<entry id>' (their items were never kept).
customer_purchases = Table(
    "customer_purchases",
    metadata,
    Column("deal_id", String(64), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("sku", String(100), nullable=False, server_default=""),
    Column("description", String(500), nullable=False, server_default=""),
    # The deal's pipeline's product line when it closed (DealClosed.product_line), or ''.
    Column("product_line", String(100), nullable=False, server_default=""),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Index("ix_customer_purchases_customer", "customer_id", "closed_at"),
)

# Static lists of customers (an audience's list_id), imported from CSV files: the list with its
# import report (lines read, the first 1,000 line errors), and its members by customer id. A
# merge moves a duplicate's memberships to the survivor. request_id makes a retried import
# return the first list.
audience_lists = Table(
    "audience_lists",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("members", Integer, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("error_count", Integer, nullable=False),
    Column("errors", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("created_by", String(200), nullable=False, server_default=""),
    Column("request_id", String(200), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_audience_lists_created", "created_at", "id"),
)

audience_list_members = Table(
    "audience_list_members",
    metadata,
    Column("list_id", String(64), ForeignKey("audience_lists.id"), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), primary_key=True),
    Index("ix_audience_list_members_customer", "customer_id"),
)

# The customer's service desk tickets, by ticket id: opened (TicketOpened) and resolved
# (TicketResolved, the latest resolution's time). A ticket is open while resolved_at is null; an
# audience leaves out a customer with an open complaint. Kept, not deleted, when resolved: a
# TicketOpened replayed after its TicketResolved (a dead letter's replay) then finds the ticket
# resolved instead of opening it again. Moved to the survivor by a merge.
customer_tickets = Table(
    "customer_tickets",
    metadata,
    Column("ticket_id", String(64), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    # support's TicketKind as its word (complaint, question, …), the latest event's.
    Column("kind", String(30), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Index("ix_customer_tickets_customer", "customer_id"),
    # The open complaints an audience leaves out (audiences._open_complaint: the same predicate).
    Index(
        "ix_customer_tickets_open_complaints",
        "customer_id",
        postgresql_where=text("kind = 'complaint' AND resolved_at IS NULL"),
    ),
)
