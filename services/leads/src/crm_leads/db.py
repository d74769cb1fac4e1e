"""Tables of the leads database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
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

teams = Table(
    "teams",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    # Unused since 0007: the round-robin turn is the team's sequence (see crm_leads.routing.commands).
    Column("rr_turn", BigInteger, nullable=False, server_default="0"),
    # Who an SLA breach of the team's leads escalates to (a user id of the identity provider).
    Column("manager_id", String(64), nullable=True),
    # An inactive team has no active reps and no routing rule (crm_leads.routing.directory).
    Column("active", Boolean, nullable=False, server_default="true"),
    # Bumped by every change: the ETag of the team's edits.
    Column("version", BigInteger, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

reps = Table(
    "reps",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("team_id", String(64), ForeignKey("teams.id"), nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
    # Availability: away (holiday, sick), weekly hours [{"day": "sun", "start": "09:00", "end": "17:00"}]
    # in the rep's IANA time zone (empty: always on), and a cap on open leads (null: no cap).
    Column("away", Boolean, nullable=False, server_default="false"),
    Column("capacity", Integer, nullable=True),
    Column("time_zone", String(64), nullable=False, server_default="Asia/Jerusalem"),
    Column("working_hours", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # What the rep covers (empty: everything): round-robin and least-loaded picks skip them for a
    # lead of another city/region or product line (crm_leads.routing.availability.coverage_gap).
    Column("territories", ARRAY(String(100)), nullable=False, server_default="{}"),
    Column("product_lines", ARRAY(String(100)), nullable=False, server_default="{}"),
    # Bumped by every change: the ETag of the rep's edits.
    Column("version", BigInteger, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_reps_team", "team_id", "id"),
)

routing_rules = Table(
    "routing_rules",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("sources", ARRAY(String(50)), nullable=False),
    Column("team_id", String(64), ForeignKey("teams.id"), nullable=False),
    Column("priority", Integer, nullable=False, unique=True),
    # Matching criteria besides sources (empty: any); see crm_leads.routing.domain.matching_rules.
    Column("campaign_ids", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("product_lines", ARRAY(String(100)), nullable=False, server_default="{}"),
    Column("territories", ARRAY(String(100)), nullable=False, server_default="{}"),
    Column("languages", ARRAY(String(8)), nullable=False, server_default="{}"),
    Column("strategy", String(20), nullable=False, server_default="round_robin"),
    Column("rep_id", String(64), ForeignKey("reps.id", name="fk_routing_rules_rep_id"), nullable=True),
    Column("sla_seconds", Integer, nullable=True),
    Column("breach_action", String(20), nullable=False, server_default="escalate"),
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
    # The capture's request id, unique within its scope (crm_leads.leads.domain: the caller's subject,
    # the web form's key or the import), so a request id never reaches another caller's lead.
    Column("request_scope", String(300), nullable=True),
    Column("request_id", String(200), nullable=True),
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
    # The full name normalized for matching (Hebrew/Persian folding): see crm_leads.duplicates.names.
    Column("name_key", String(200), nullable=False, server_default=""),
    Index("ix_leads_created", "created_at", "id"),
    Index("ix_leads_phone_number", "phone_number", postgresql_where=text("phone_number <> ''")),
    Index("ix_leads_email", "email", postgresql_where=text("email <> ''")),
    Index("ix_leads_campaign", "campaign_id", "created_at", "id"),
    Index("ix_leads_rep", "rep_id"),
    Index("ix_leads_source", "source"),
    Index("ix_leads_team", "team_id", "created_at", "id"),
    UniqueConstraint("request_scope", "request_id", name="uq_leads_request"),
)

# Deals as they were before the sales service owned them (crm_sales copies them once with its
# `copy-deals-from-leads` job, docs/operations.md). Nothing in leads reads or writes them any more; a
# later release drops them once every installation has copied.
legacy_deals = Table(
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

legacy_deal_items = Table(
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

# The source catalogue: built-in codes (seeded by 0006 from crm_leads.leads.domain.SOURCES) and the ones admins add.
# A source is never deleted (leads keep pointing at it); an inactive one takes no new captures.
sources = Table(
    "sources",
    metadata,
    Column("code", String(50), primary_key=True),
    Column("display_name", String(100), nullable=False),
    Column("built_in", Boolean, nullable=False, server_default="false"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Campaigns under a source, with what they cost (integer minor units of one ISO 4217 currency).
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("source", String(50), ForeignKey("sources.code"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("starts_on", Date, nullable=True),
    Column("ends_on", Date, nullable=True),
    Column("budget_minor", BigInteger, nullable=False, server_default="0"),
    Column("actual_cost_minor", BigInteger, nullable=False, server_default="0"),
    Column("currency_code", String(3), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("source", "name", name="uq_campaigns_source_name"),
    Index("ix_campaigns_created", "created_at", "id"),
)

# CSV imports of lead lists: the report (status and counters, updated while it runs), the staged
# valid rows (phase 1) that phase 2 captures, and the first errors in full.
lead_imports = Table(
    "lead_imports",
    metadata,
    Column("id", String(64), primary_key=True),
    # The upload's request id, unique per uploader (create_actor): nobody gets another's import.
    Column("request_id", String(200), nullable=True),
    Column("source", String(50), nullable=False),
    Column("campaign_id", String(64), nullable=True),
    Column("campaign_name", String(100), nullable=False, server_default=""),
    Column("file_name", String(255), nullable=False, server_default=""),
    Column("mode", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("rows_read", Integer, nullable=False, server_default="0"),
    Column("rows_valid", Integer, nullable=False, server_default="0"),
    Column("rows_imported", Integer, nullable=False, server_default="0"),
    Column("duplicates", Integer, nullable=False, server_default="0"),
    Column("error_count", Integer, nullable=False, server_default="0"),
    Column("reject_reason", String(1000), nullable=False, server_default=""),
    # Phase 2's cursor: every staged row up to this row number has been captured.
    Column("next_row", Integer, nullable=False, server_default="0"),
    # Who is running phase 2 until when; past it the resume job takes the import over.
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("create_actor", String(200), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Index("ix_lead_imports_created", "created_at", "id"),
    Index("ix_lead_imports_status", "status", "lease_until"),
    UniqueConstraint("create_actor", "request_id", name="uq_lead_imports_request"),
)

lead_import_rows = Table(
    "lead_import_rows",
    metadata,
    Column("import_id", String(64), ForeignKey("lead_imports.id"), primary_key=True),
    Column("row_number", Integer, primary_key=True),
    Column("line_number", Integer, nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("phone_number", String(20), nullable=False),
    Column("email", String(320), nullable=False),
    Column("locale", String(20), nullable=False),
    Column("product_line", String(100), nullable=False),
    Column("city", String(100), nullable=False),
    Column("region", String(100), nullable=False),
)

lead_import_errors = Table(
    "lead_import_errors",
    metadata,
    Column("import_id", String(64), ForeignKey("lead_imports.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    # 0 for an error of the whole file (encoding, header).
    Column("row_number", Integer, nullable=False),
    Column("line_number", Integer, nullable=False),
    Column("field", String(100), nullable=False),
    Column("message", String(500), nullable=False),
)

# ---------------------------------------------------------------- routing and SLA (0007)

# The SLA bookkeeping of a lead: the rule's SLA and breach action as assigned, whether the clock
# runs (a breach that escalates stops it), who it was escalated to, the reps already tried, and the
# structured explanation of the routing decision (rule, strategy, candidates and why each was skipped).
for _column in (
    Column("sla_seconds", Integer, nullable=True),
    Column("breach_action", String(20), nullable=False, server_default=""),
    Column("sla_clock_running", Boolean, nullable=False, server_default="false"),
    Column("escalated_to", String(64), nullable=True),
    Column("reassign_count", Integer, nullable=False, server_default="0"),
    Column("tried_rep_ids", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("routing_explanation", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
):
    leads.append_column(_column)
Index(
    "ix_leads_sla_due",
    leads.c.first_response_due_at,
    postgresql_where=text("sla_clock_running AND first_response_at IS NULL"),
)
Index("ix_leads_queue", leads.c.created_at, leads.c.id, postgresql_where=text("rep_id IS NULL"))
Index(
    "ix_leads_rep_open",
    leads.c.rep_id,
    postgresql_where=text("status = 'new' AND first_response_at IS NULL AND merged_into_id IS NULL"),
)

# Every SLA breach and what was done about it (managers' view: GET /api/v1/sla-breaches).
lead_sla_breaches = Table(
    "lead_sla_breaches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("lead_id", String(64), ForeignKey("leads.id"), nullable=False),
    Column("rep_id", String(64), nullable=False, server_default=""),
    Column("team_id", String(64), nullable=False, server_default=""),
    Column("rule_id", String(64), nullable=False, server_default=""),
    Column("source", String(50), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("breached_at", DateTime(timezone=True), nullable=False),
    Column("action", String(20), nullable=False),
    Column("new_rep_id", String(64), nullable=False, server_default=""),
    Column("manager_id", String(64), nullable=False, server_default=""),
    Index("ix_lead_sla_breaches_time", "breached_at", "id"),
    Index("ix_lead_sla_breaches_team", "team_id", "breached_at", "id"),
    Index("ix_lead_sla_breaches_lead", "lead_id"),
)

# One row (id 1): the version of the whole rule set, the ETag of GET/PUT /api/v1/routing-rules.
routing_rule_sets = Table(
    "routing_rule_sets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200), nullable=False, server_default=""),
)

# One row (id 1): bumped by triggers (migration 0015) in every transaction that writes sources,
# campaigns, routing_rules, teams or reps. Captures key their in-process copy of those tables on it
# (crm_leads.config_cache).
capture_config_version = Table(
    "capture_config_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

# ---------------------------------------------------------------- activities (0008)

# Calls, meetings, notes, e-mails, SMS and tasks logged against a lead (and its deal). lead_id is a
# plain indexed column (no foreign key): a merge moves activities to the surviving lead with one UPDATE.
activities = Table(
    "activities",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("request_id", String(200), nullable=True, unique=True),
    Column("kind", String(10), nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("deal_id", String(64), nullable=True),
    # Whose record it was when logged (the lead's rep or the deal's owner, the lead's team), for
    # history; open tasks are listed and reminded by their current owner (crm_leads.activities.queries).
    Column("rep_id", String(64), nullable=True),
    Column("team_id", String(64), nullable=True),
    Column("subject", String(200), nullable=False, server_default=""),
    Column("body", String(10000), nullable=False, server_default=""),
    Column("outcome", String(30), nullable=False, server_default=""),
    Column("duration_seconds", Integer, nullable=True),
    Column("start_at", DateTime(timezone=True), nullable=True),
    Column("end_at", DateTime(timezone=True), nullable=True),
    Column("due_at", DateTime(timezone=True), nullable=True),
    Column("remind_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("reminded_at", DateTime(timezone=True), nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("first_response", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_activities_lead", "lead_id", "occurred_at", "id"),
    Index("ix_activities_deal", "deal_id", "occurred_at", "id", postgresql_where=text("deal_id IS NOT NULL")),
    Index(
        "ix_activities_open_tasks",
        "due_at",
        "id",
        postgresql_where=text("kind = 'task' AND completed_at IS NULL"),
    ),
    Index(
        "ix_activities_reminders",
        "remind_at",
        postgresql_where=text("kind = 'task' AND completed_at IS NULL AND reminded_at IS NULL"),
    ),
)

# ---------------------------------------------------------------- duplicates and merge (0009)

# Further matching keys of a lead's name (crm_leads.duplicates.names): written order without spaces (compound
# names) and a cross-script consonant skeleton. Equality lookups only, each through its own index.
leads.append_column(Column("name_compact", String(200), nullable=False, server_default=""))
leads.append_column(Column("name_skeleton", String(200), nullable=False, server_default=""))
for _name_column in ("name_key", "name_compact", "name_skeleton"):
    Index(
        f"ix_leads_{_name_column}",
        leads.c[_name_column],
        leads.c.created_at,
        leads.c.id,
        postgresql_where=text(f"{_name_column} <> ''"),
    )
# The incomplete-records list: live leads that lack a required field, newest first.
Index(
    "ix_leads_incomplete",
    leads.c.created_at,
    leads.c.id,
    postgresql_where=text("cardinality(missing_fields) > 0 AND merged_into_id IS NULL"),
)

# Every later capture of a person who is already a lead (the first capture is the lead itself).
lead_touches = Table(
    "lead_touches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("lead_id", String(64), ForeignKey("leads.id"), nullable=False),
    # The capture's request id and its scope (as on leads): a replay answers with the lead the
    # touch is on.
    Column("request_scope", String(300), nullable=True),
    Column("request_id", String(200), nullable=True),
    Column("source", String(50), nullable=False),
    Column("campaign", String(200), nullable=False, server_default=""),
    Column("campaign_id", String(64), nullable=True),
    Column("web_form_key_id", String(64), nullable=True),
    # What matched ("phone_number", "email"), or "merge" for a lead merged into this one.
    Column("matched_on", String(20), nullable=False),
    Column("touched_at", DateTime(timezone=True), nullable=False),
    Index("ix_lead_touches_lead", "lead_id", "touched_at"),
    UniqueConstraint("request_scope", "request_id", name="uq_lead_touches_request"),
)

# Pairs of leads that may be one person (same name, different contact details), for review.
possible_duplicates = Table(
    "possible_duplicates",
    metadata,
    Column("id", String(64), primary_key=True),
    # The newer lead and the older one it resembles.
    Column("lead_id", String(64), ForeignKey("leads.id"), nullable=False),
    Column("other_lead_id", String(64), ForeignKey("leads.id"), nullable=False),
    Column("score", Integer, nullable=False),
    Column("reasons", ARRAY(String(30)), nullable=False),
    # open | merged | dismissed
    Column("status", String(20), nullable=False, server_default="open"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("resolved_by", String(200), nullable=False, server_default=""),
    UniqueConstraint("lead_id", "other_lead_id", name="uq_possible_duplicates_pair"),
    Index("ix_possible_duplicates_status", "status", "created_at", "id"),
    Index("ix_possible_duplicates_other", "other_lead_id"),
)

# ---------------------------------------------------------------- conversions (0012)

# Which lead became which deal (the deal itself is the sales service's): one per lead. The owner is
# the lead's rep when converted — the deal's owner, whose its deal activities and tasks are. A merge
# moves a conversion to the surviving lead, as it moves the lead's activities.
lead_conversions = Table(
    "lead_conversions",
    metadata,
    Column("deal_id", String(64), primary_key=True),
    Column("lead_id", String(64), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("owner_rep_id", String(64), nullable=True),
    Column("owner_team_id", String(64), nullable=True),
    # The lead's attribution when converted, which the deal carries to DealClosed (reporting).
    Column("source", String(50), nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("converted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Recorded by the upgrade from a deal made before sales owned deals (migration 0012, or the
    # `record-legacy-conversions` job): sales has that deal from its copy job, never from OpenDeal.
    Column("legacy", Boolean, nullable=False, server_default="false"),
    # Since when lead_id is the conversion's lead (converted_at, or the merge that moved it): sales
    # applies a LeadsMerged only if it is newer than the lead its deal has (crm_sales.commands).
    Column("lead_since", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The pipeline the deal opens in, chosen when converting ('' = sales' default pipeline).
    Column("pipeline_id", String(64), nullable=False, server_default=""),
)
