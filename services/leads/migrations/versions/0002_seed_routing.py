"""seed teams, reps and per-source routing rules

Routing configuration is data the business edits; these are the starting teams so a fresh
install routes every source at once. Rules: broadcast media to the media team, web and
e-mail to the digital team, everything else (referral, exhibition, telemarketing, import)
to the catch-all rule.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

teams = sa.table("teams", sa.column("id", sa.String), sa.column("name", sa.String))
reps = sa.table("reps", sa.column("id", sa.String), sa.column("name", sa.String), sa.column("team_id", sa.String))
rules = sa.table(
    "routing_rules",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("sources", ARRAY(sa.String)),
    sa.column("team_id", sa.String),
    sa.column("priority", sa.Integer),
)


def upgrade() -> None:
    op.bulk_insert(
        teams,
        [
            {"id": "team-media", "name": "צוות מדיה / Media team"},
            {"id": "team-digital", "name": "צוות דיגיטל / Digital team"},
        ],
    )
    op.bulk_insert(
        reps,
        [
            {"id": "rep-dana", "name": "דנה לוי", "team_id": "team-media"},
            {"id": "rep-moshe", "name": "משה כהן", "team_id": "team-media"},
            {"id": "rep-sara", "name": "سارا محمدی", "team_id": "team-digital"},
            {"id": "rep-yael", "name": "יעל אברהם", "team_id": "team-digital"},
            {"id": "rep-omid", "name": "امید کریمی", "team_id": "team-digital"},
        ],
    )
    op.bulk_insert(
        rules,
        [
            {
                "id": "rule-broadcast",
                "name": "Radio, TV and press",
                "sources": ["radio", "tv", "press"],
                "team_id": "team-media",
                "priority": 10,
            },
            {
                "id": "rule-digital",
                "name": "Web and e-mail",
                "sources": ["website", "web_form", "email"],
                "team_id": "team-digital",
                "priority": 20,
            },
            {"id": "rule-default", "name": "Everything else", "sources": [], "team_id": "team-media", "priority": 1000},
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM routing_rules WHERE id IN ('rule-broadcast', 'rule-digital', 'rule-default')")
    op.execute("DELETE FROM reps WHERE team_id IN ('team-media', 'team-digital')")
    op.execute("DELETE FROM teams WHERE id IN ('team-media', 'team-digital')")
