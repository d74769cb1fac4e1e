"""Tables of the reporting database: a read model built from every domain's events.

Fact columns other than the key are nullable because events arrive in any order: a fact
row starts from whichever event comes first and the others fill it in.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
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


def changed(table: str) -> tuple[Column[int], Index]:
    """The id of the transaction that last wrote the row (a trigger stamps it: migration 0017), which
    the report builder's DuckDB copy syncs by (crm_reporting.replica); null on rows kept before."""
    return (
        Column("changed_xid", BigInteger, nullable=True),
        Index(f"ix_{table}_changed", "changed_xid", postgresql_where=text("changed_xid IS NOT NULL")),
    )


event_log = Table(
    "event_log",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_event_log_type_occurred", "event_type", "occurred_at"),
)

lead_facts = Table(
    "lead_facts",
    metadata,
    Column("lead_id", String(64), primary_key=True),
    Column("source", String(50), nullable=True),
    Column("campaign", String(200), nullable=True),
    Column("captured_at", DateTime(timezone=True), nullable=True),
    Column("assigned_at", DateTime(timezone=True), nullable=True),
    Column("rep_id", String(64), nullable=True),
    Column("speed_to_assign_seconds", Float, nullable=True),
    # The campaign's id in the leads catalogue (LeadCaptured.campaign_id); null without one.
    Column("campaign_id", String(64), nullable=True),
    # The first assignment's team (with rep_id) and the product line asked for at capture.
    Column("team_id", String(64), nullable=True),
    Column("product_line", String(100), nullable=True),
    # The city given at capture (LeadCaptured.city, migration 0012): a report builder dimension.
    Column("city", String(100), nullable=True),
    # The rep's first response (ActivityLogged with first_response, migration 0013): the earliest.
    Column("first_response_at", DateTime(timezone=True), nullable=True),
    # The current owner: the latest assignment (rep_id/team_id above are the first, which targets
    # credit). Reports are held to it: a lead reassigned is its new rep's, not its first's.
    Column("owner_rep_id", String(64), nullable=True),
    Column("owner_team_id", String(64), nullable=True),
    Column("owner_at", DateTime(timezone=True), nullable=True),
    Index("ix_lead_facts_captured", "captured_at"),
    Index("ix_lead_facts_owner_rep_captured", "owner_rep_id", "captured_at"),
    Index("ix_lead_facts_owner_team_captured", "owner_team_id", "captured_at"),
    Index("ix_lead_facts_campaign", "campaign_id"),
    # Targets vs actual: one subject's leads in a period is a range of one of these.
    Index("ix_lead_facts_rep_captured", "rep_id", "captured_at"),
    Index("ix_lead_facts_team_captured", "team_id", "captured_at"),
    Index("ix_lead_facts_source_captured", "source", "captured_at"),
    Index("ix_lead_facts_product_line_captured", "product_line", "captured_at"),
    *changed("lead_facts"),
)

deal_facts = Table(
    "deal_facts",
    metadata,
    Column("deal_id", String(64), primary_key=True),
    Column("lead_id", String(64), nullable=True),
    Column("source", String(50), nullable=True),
    Column("campaign", String(200), nullable=True),
    Column("won", Boolean, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    # From DealClosed (null on deals recorded before it carried them, migration 0005).
    Column("owner_rep_id", String(64), nullable=True),
    Column("owner_team_id", String(64), nullable=True),
    Column("pipeline_id", String(64), nullable=True),
    Column("product_line", String(100), nullable=True),
    Index("ix_deal_facts_closed", "closed_at"),
    Index("ix_deal_facts_lead", "lead_id"),
    # Targets vs actual: one subject's won deals in a period is a range of one of these (partial:
    # lost deals never count).
    *(
        Index(
            f"ix_deal_facts_won_{column}",
            column,
            "closed_at",
            postgresql_where=text("won"),
            postgresql_include=["total_minor", "currency_code"],
        )
        for column in ("owner_rep_id", "owner_team_id", "source", "product_line")
    ),
    *changed("deal_facts"),
)

order_facts = Table(
    "order_facts",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("deal_id", String(64), nullable=True),
    Column("lead_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=True),
    Column("shipped_at", DateTime(timezone=True), nullable=True),
    Column("estimated_delivery_date", Date, nullable=True),
)

notification_facts = Table(
    "notification_facts",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("lead_id", String(64), nullable=True),
    Column("order_id", String(64), nullable=True),
    Column("status", String(10), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # A promotion's message (NotificationSent names the promotion and its recipient customer):
    # what a promotion's results attribute revenue to.
    Column("promotion_id", String(64), nullable=True),
    Column("customer_id", String(64), nullable=True),
    # The promotion's A/B variant the message was ("" without variants).
    Column("variant", String(3), nullable=False, server_default=""),
    Index("ix_notification_facts_promotion", "promotion_id", postgresql_where=text("promotion_id IS NOT NULL")),
    *changed("notification_facts"),
)

# A known person coming in again (LeadTouched: the same phone or e-mail captured anew), by touch:
# what a promotion's results count as the leads it brought from its recipients.
lead_touch_facts = Table(
    "lead_touch_facts",
    metadata,
    Column("touch_id", String(64), primary_key=True),
    Column("lead_id", String(64), nullable=False),
    Column("source", String(50), nullable=False, server_default=""),
    Column("campaign_id", String(64), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_lead_touch_facts_lead", "lead_id", "at"),
)

# What buyers bought: a won deal's lines that carry a SKU (DealClosed's items, numbered from 1 in
# the event's order), by the deal's lead. Cross-sell rules learn from them; an offer's "bought
# after" reads them by lead and SKU.
purchase_facts = Table(
    "purchase_facts",
    metadata,
    Column("deal_id", String(64), nullable=False),
    Column("line", Integer, nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("sku", String(100), nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("quantity", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("deal_id", "line"),
    Index("ix_purchase_facts_lead", "lead_id", "sku", "closed_at"),
    Index("ix_purchase_facts_closed", "closed_at"),
)

# A cross-sell suggestion offered to a customer by a rep or agent, and the answer (accepted or
# declined), with the rule that suggested it then and the customer's leads (whose later purchases
# of the SKU the report counts). request_id: a retried record finds the first.
cross_sell_offers = Table(
    "cross_sell_offers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("lead_ids", ARRAY(String(64)), nullable=False),
    Column("sku", String(100), nullable=False),
    Column("antecedent_sku", String(100), nullable=False, server_default=""),
    Column("confidence", Float, nullable=True),
    Column("response", String(10), nullable=False),
    Column("user_id", String(64), nullable=False, server_default=""),
    Column("offered_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(200), nullable=True, unique=True),
    Index("ix_cross_sell_offers_customer", "customer_id", "offered_at"),
    Index("ix_cross_sell_offers_offered", "offered_at"),
)

# Retention call lists (crm.reporting.v1.RetentionService): the customers at risk when the list was
# made, highest first, each in the call group (with its rep) or the control group held out, with
# the risk's reasons and the suggested offer then, and the rep's latest answer.
retention_lists = Table(
    "retention_lists",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("team_id", String(64), nullable=False, server_default=""),
    Column("threshold", Float, nullable=False),
    Column("control_share", Float, nullable=False),
    Column("called", Integer, nullable=False),
    Column("control", Integer, nullable=False),
    Column("created_by", String(64), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(200), nullable=True, unique=True),
    # What scored its customers: logistic_regression or rules.
    Column("model", String(30), nullable=False, server_default="rules"),
    Index("ix_retention_lists_team", "team_id", "created_at"),
)

# Each customer's risk band at the last scheduled scoring (retention_api.scan_risks): a change
# publishes CustomerAtRisk.
customer_risk_bands = Table(
    "customer_risk_bands",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("band", String(10), nullable=False),
    Column("risk", Float, nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
)

# When a scheduled job last ran (by name): under its advisory lock, a replica whose turn comes
# within the interval of another's run skips it.
scan_marks = Table(
    "scan_marks",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

retention_entries = Table(
    "retention_entries",
    metadata,
    Column("list_id", String(64), ForeignKey("retention_lists.id"), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("control", Boolean, nullable=False),
    Column("rep_id", String(64), nullable=False, server_default=""),
    Column("risk", Float, nullable=False),
    Column("band", String(10), nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("offer", String(120), nullable=False),
    Column("response", String(20), nullable=False, server_default=""),
    Column("responded_at", DateTime(timezone=True), nullable=True),
    Column("responded_by", String(64), nullable=False, server_default=""),
    PrimaryKeyConstraint("list_id", "customer_id"),
    Index("ix_retention_entries_rep", "rep_id", "list_id"),
    Index("ix_retention_entries_customer", "customer_id"),
)

# The funnel: a deal's opening (LeadConverted: stage_id "", in its first stage, with its lead, the
# pipeline it opened in — "" for the default — and its owner) and each stage it entered since
# (DealStageChanged, the first time), whatever order the events arrive in.
deal_stage_facts = Table(
    "deal_stage_facts",
    metadata,
    Column("deal_id", String(64), nullable=False),
    Column("stage_id", String(64), nullable=False),
    Column("lead_id", String(64), nullable=False, server_default=""),
    Column("pipeline_id", String(64), nullable=False, server_default=""),
    Column("owner_rep_id", String(64), nullable=False, server_default=""),
    Column("owner_team_id", String(64), nullable=False, server_default=""),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    # The stage's name when the deal entered it (the report builder's "stage"); "" for an opening.
    Column("stage_name", String(200), nullable=False, server_default=""),
    PrimaryKeyConstraint("deal_id", "stage_id"),
    Index("ix_deal_stage_facts_opened", "pipeline_id", "entered_at", postgresql_where=text("stage_id = ''")),
    *changed("deal_stage_facts"),
)

# The report builder's saved reports (crm.reporting.v1.ReportBuilderService): a definition (JSON of
# ReportDefinition's fields), its owner (the token's subject), and who else sees it: the roles in
# shared_roles, of team_id when it is set (else of the company). Each caller runs it in their reach.
saved_reports = Table(
    "saved_reports",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("owner_id", String(200), nullable=False),
    Column("team_id", String(64), nullable=False, server_default=""),
    Column("shared_roles", ARRAY(String(30)), nullable=False, server_default="{}"),
    Column("definition", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(200), nullable=True, unique=True),
    Index("ix_saved_reports_owner", "owner_id", "created_at"),
)

# A saved report e-mailed weekly or monthly (crm_reporting.schedules), in the reach of whoever
# scheduled it; next_run_at is the next delivery in UTC.
report_schedules = Table(
    "report_schedules",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("saved_report_id", String(64), ForeignKey("saved_reports.id", ondelete="CASCADE"), nullable=False),
    Column("owner_id", String(200), nullable=False),
    Column("reach_rep_id", String(64), nullable=False, server_default=""),
    Column("reach_team_id", String(64), nullable=False, server_default=""),
    Column("cadence", String(10), nullable=False),
    Column("weekday", SmallInteger, nullable=False, server_default="0"),
    Column("day_of_month", SmallInteger, nullable=False, server_default="1"),
    Column("hour", SmallInteger, nullable=False),
    Column("recipients", ARRAY(String(254)), nullable=False),
    Column("locale", String(5), nullable=False),
    Column("next_run_at", DateTime(timezone=True), nullable=False),
    Column("last_run_at", DateTime(timezone=True), nullable=True),
    Column("last_error", String(1000), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(200), nullable=True, unique=True),
    Index("ix_report_schedules_due", "next_run_at"),
    Index("ix_report_schedules_owner", "owner_id", "created_at"),
    Index("ix_report_schedules_report", "saved_report_id"),
)

# The latest state of each campaign (CampaignChanged): name, budget and actual cost.
campaign_facts = Table(
    "campaign_facts",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("source", String(50), nullable=False),
    Column("name", String(100), nullable=False),
    Column("budget_minor", BigInteger, nullable=False),
    Column("actual_cost_minor", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    *changed("campaign_facts"),
)

# Each customer's acquiring lead (CustomerCreated): tickets and consents reach a source through it.
customer_facts = Table(
    "customer_facts",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("lead_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=True),
)

# One row per ticket from support's events, whatever order they arrive in: TicketOpened sets what the
# ticket is; TicketResolved (once per resolution: a reopened ticket resolves again) the latest
# resolution; TicketSlaBreached counts warnings (level 1) and breaches (levels 2 and 3, once per
# metric and level); SurveyAnswered the latest score. Kinds, channels and priorities are words.
ticket_facts = Table(
    "ticket_facts",
    metadata,
    Column("ticket_id", String(64), primary_key=True),
    Column("number", BigInteger, nullable=True),
    Column("customer_id", String(64), nullable=True),
    Column("order_id", String(64), nullable=True),
    Column("kind", String(20), nullable=True),
    Column("channel", String(20), nullable=True),
    Column("priority", String(20), nullable=True),
    Column("category_id", String(64), nullable=True),
    Column("queue_id", String(64), nullable=True),
    Column("assignee_id", String(64), nullable=True),
    Column("opened_at", DateTime(timezone=True), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("resolutions", Integer, nullable=False, server_default="0"),
    Column("resolution_seconds", BigInteger, nullable=True),
    Column("resolution_sla_met", Boolean, nullable=True),
    Column("warnings", Integer, nullable=False, server_default="0"),
    Column("breaches", Integer, nullable=False, server_default="0"),
    Column("first_breach_at", DateTime(timezone=True), nullable=True),
    Column("score", SmallInteger, nullable=True),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Index("ix_ticket_facts_opened", "opened_at"),
    Index("ix_ticket_facts_customer", "customer_id", "opened_at"),
    *changed("ticket_facts"),
)

# Every consent given or withdrawn (ConsentChanged), by customers' record id: marketing opt-outs are
# a churn signal, and the history is the regulator's (customers keeps the authoritative one).
consent_facts = Table(
    "consent_facts",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("channel", String(10), nullable=False),
    Column("purpose", String(20), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("source", String(30), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("customer_id", "record_id"),
    Index("ix_consent_facts_changed", "changed_at"),
)

# Sales targets (crm.reporting.v1.TargetsService): one per subject, period and metric. `value` is
# minor units of currency_code (won_amount) or a count (won_deals, leads; currency "").
targets = Table(
    "targets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("subject_kind", String(20), nullable=False),
    Column("subject_id", String(100), nullable=False),
    Column("period_kind", String(10), nullable=False),
    # The period's first day in the company's time zone.
    Column("period_start", Date, nullable=False),
    Column("metric", String(20), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False, server_default=""),
    # CreateTarget's AIP-155 key: a repeated request finds the first target.
    Column("request_id", String(200), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint(
        "subject_kind", "subject_id", "period_kind", "period_start", "metric", name="uq_targets_subject_period_metric"
    ),
    # The report reads one period's targets; lists go newest period first.
    Index("ix_targets_period", "period_kind", "period_start"),
    Index("ix_targets_period_start", "period_start", "id"),
)
