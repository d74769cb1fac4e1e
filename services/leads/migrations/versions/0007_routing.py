"""routing rule sets, rep availability and capacity, the SLA

Rules gain matching criteria (campaign, product line, territory, language), a strategy (round-robin,
least-loaded, a named rep), an SLA and a breach action; reps gain availability (away, weekly hours in
their time zone) and a capacity cap; teams a manager; leads the SLA bookkeeping and the structured
routing explanation; lead_sla_breaches keeps every breach; routing_rule_sets the rule set's version
(the ETag of PUT /routing-rules). Each team's round-robin turn is a PostgreSQL sequence (nextval is
not transactional: captures never wait on each other for a turn), created with the team by a trigger.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RULE_ARRAYS = (("campaign_ids", 64), ("product_lines", 100), ("territories", 100), ("languages", 8))


def upgrade() -> None:
    op.add_column("teams", sa.Column("manager_id", sa.String(length=64), nullable=True))
    op.add_column("reps", sa.Column("away", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("reps", sa.Column("capacity", sa.Integer(), nullable=True))
    op.add_column("reps", sa.Column("time_zone", sa.String(length=64), server_default="Asia/Jerusalem", nullable=False))
    op.add_column("reps", sa.Column("working_hours", JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False))
    for name, length in _RULE_ARRAYS:
        op.add_column(
            "routing_rules", sa.Column(name, ARRAY(sa.String(length=length)), server_default="{}", nullable=False)
        )
    op.add_column(
        "routing_rules", sa.Column("strategy", sa.String(length=20), server_default="round_robin", nullable=False)
    )
    op.add_column("routing_rules", sa.Column("rep_id", sa.String(length=64), nullable=True))
    op.create_foreign_key("fk_routing_rules_rep_id", "routing_rules", "reps", ["rep_id"], ["id"])
    op.add_column("routing_rules", sa.Column("sla_seconds", sa.Integer(), nullable=True))
    op.add_column(
        "routing_rules", sa.Column("breach_action", sa.String(length=20), server_default="escalate", nullable=False)
    )
    op.add_column("leads", sa.Column("sla_seconds", sa.Integer(), nullable=True))
    op.add_column("leads", sa.Column("breach_action", sa.String(length=20), server_default="", nullable=False))
    op.add_column("leads", sa.Column("sla_clock_running", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("leads", sa.Column("escalated_to", sa.String(length=64), nullable=True))
    op.add_column("leads", sa.Column("reassign_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("leads", sa.Column("tried_rep_ids", ARRAY(sa.String(length=64)), server_default="{}", nullable=False))
    op.add_column(
        "leads",
        sa.Column("routing_explanation", JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )
    op.create_index(
        "ix_leads_sla_due",
        "leads",
        ["first_response_due_at"],
        postgresql_where=sa.text("sla_clock_running AND first_response_at IS NULL"),
    )
    op.create_index("ix_leads_queue", "leads", ["created_at", "id"], postgresql_where=sa.text("rep_id IS NULL"))
    # The open leads of a rep (least-loaded and caps count them on every capture): never the
    # rep's whole history, which grows without bound.
    op.create_index(
        "ix_leads_rep_open",
        "leads",
        ["rep_id"],
        postgresql_where=sa.text("status = 'new' AND first_response_at IS NULL AND merged_into_id IS NULL"),
    )
    op.create_table(
        "lead_sla_breaches",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("rep_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("team_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("rule_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("new_rep_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("manager_id", sa.String(length=64), server_default="", nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lead_sla_breaches_time", "lead_sla_breaches", ["breached_at", "id"])
    op.create_index("ix_lead_sla_breaches_team", "lead_sla_breaches", ["team_id", "breached_at", "id"])
    op.create_index("ix_lead_sla_breaches_lead", "lead_sla_breaches", ["lead_id"])
    op.create_table(
        "routing_rule_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.String(length=200), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO routing_rule_sets (id, version) VALUES (1, 1)")
    op.execute("UPDATE teams SET manager_id = 'manager-media' WHERE id = 'team-media'")
    op.execute("UPDATE teams SET manager_id = 'manager-digital' WHERE id = 'team-digital'")
    # One round-robin sequence per team, named by the md5 of its id (any id is a valid name).
    op.execute(
        """
        CREATE FUNCTION routing_create_team_sequence() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', 'routing_rr_' || md5(NEW.id));
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER teams_routing_sequence AFTER INSERT ON teams "
        "FOR EACH ROW EXECUTE FUNCTION routing_create_team_sequence()"
    )
    op.execute(
        """
        DO $$ DECLARE t record; BEGIN
          FOR t IN SELECT id FROM teams LOOP
            EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', 'routing_rr_' || md5(t.id));
          END LOOP;
        END $$
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DO $$ DECLARE t record; BEGIN
          FOR t IN SELECT id FROM teams LOOP
            EXECUTE format('DROP SEQUENCE IF EXISTS %I', 'routing_rr_' || md5(t.id));
          END LOOP;
        END $$
        """
    )
    op.execute("DROP TRIGGER teams_routing_sequence ON teams")
    op.execute("DROP FUNCTION routing_create_team_sequence()")
    op.drop_table("routing_rule_sets")
    op.drop_index("ix_lead_sla_breaches_lead", table_name="lead_sla_breaches")
    op.drop_index("ix_lead_sla_breaches_team", table_name="lead_sla_breaches")
    op.drop_index("ix_lead_sla_breaches_time", table_name="lead_sla_breaches")
    op.drop_table("lead_sla_breaches")
    op.drop_index("ix_leads_queue", table_name="leads")
    op.drop_index("ix_leads_rep_open", table_name="leads")
    op.drop_index("ix_leads_sla_due", table_name="leads")
    for column in (
        "routing_explanation",
        "tried_rep_ids",
        "reassign_count",
        "escalated_to",
        "sla_clock_running",
        "breach_action",
        "sla_seconds",
    ):
        op.drop_column("leads", column)
    op.drop_column("routing_rules", "breach_action")
    op.drop_column("routing_rules", "sla_seconds")
    op.drop_constraint("fk_routing_rules_rep_id", "routing_rules", type_="foreignkey")
    for column in ("rep_id", "strategy", *(name for name, _ in _RULE_ARRAYS)):
        op.drop_column("routing_rules", column)
    for column in ("working_hours", "time_zone", "capacity", "away"):
        op.drop_column("reps", column)
    op.drop_column("teams", "manager_id")
