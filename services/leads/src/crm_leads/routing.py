"""Routing: which rep gets a new lead, decided in the capture's own transaction.

The rules live in routing_rules (ordered by priority); this module matches them and picks the rep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text

from crm_kit.db import UnitOfWork
from crm_leads import domain
from crm_leads.db import routing_rules

# One round trip: take the team's next round-robin turn and read its active reps. The UPDATE's
# row lock on the team is held to the capture's commit, so two captures (on any replica) never
# get the same turn.
_TAKE_TURN = text(
    """
    WITH turn AS (UPDATE teams SET rr_turn = rr_turn + 1 WHERE id = :team_id RETURNING rr_turn)
    SELECT turn.rr_turn AS turn,
           coalesce(array_agg(reps.id ORDER BY reps.id) FILTER (WHERE reps.id IS NOT NULL), '{}') AS rep_ids,
           coalesce(array_agg(reps.name ORDER BY reps.id) FILTER (WHERE reps.id IS NOT NULL), '{}') AS rep_names
    FROM turn LEFT JOIN reps ON reps.team_id = :team_id AND reps.active
    GROUP BY turn.rr_turn
    """
)


@dataclass(frozen=True)
class Assignment:
    """Who gets the lead and why. An empty rep_id: the lead waits in the fallback queue."""

    rep_id: str
    rep_name: str
    team_id: str
    rule_id: str
    reason: str
    first_response_due_at: datetime | None = None


async def assign(uow: UnitOfWork, new: domain.NewLead, now: datetime) -> Assignment:
    """Match the routing rule for a new lead and pick its rep, in the capture's transaction."""
    rules = [
        domain.RoutingRule(id=r.id, team_id=r.team_id, sources=tuple(r.sources), priority=r.priority)
        for r in (await uow.conn.execute(select(routing_rules))).all()
    ]
    rule = domain.match_rule(rules, new.source)
    taken = (await uow.conn.execute(_TAKE_TURN, {"team_id": rule.team_id})).one()
    rep_id = domain.pick_round_robin(list(taken.rep_ids), taken.turn)
    rep_name = dict(zip(taken.rep_ids, taken.rep_names, strict=True))[rep_id]
    reason = (
        f"source {new.source} matched rule {rule.id}; round-robin turn {taken.turn} in team {rule.team_id} "
        f"of {len(taken.rep_ids)} active reps"
    )
    return Assignment(rep_id=rep_id, rep_name=rep_name, team_id=rule.team_id, rule_id=rule.id, reason=reason)
