"""Routing: which rep gets a new lead, decided in the capture's own transaction.

The rules live in routing_rules (ordered by priority); crm_leads.routing_rules matches them and
picks the rep; this module reads what they need. Fairness with several replicas:

- the round-robin turn is the team's own sequence (`nextval` is not transactional, so captures
  never wait for each other's commit to get a turn and no two get the same turn);
- where a cap has to hold (least-loaded, or any rep of the team with a capacity) the team's rep
  rows are locked (in id order, so captures never deadlock) until the capture commits, and the open
  leads are counted under that lock: two captures can never both see the last free slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal_column, select, text

from crm_kit.db import UnitOfWork
from crm_leads import campaigns, domain
from crm_leads import routing_rules as rr
from crm_leads.db import leads, reps, routing_rules

_NEXT_TURN = text("SELECT nextval(('routing_rr_' || md5(:team_id))::regclass)")


@dataclass(frozen=True)
class Assignment:
    """Who gets the lead and why. An empty rep_id: the lead waits in the fallback queue."""

    rep_id: str
    rep_name: str
    team_id: str
    rule_id: str
    reason: str
    first_response_due_at: datetime | None = None
    sla_seconds: int | None = None
    breach_action: str = ""
    # The structured explanation: every rule tried, its candidates and why each was skipped.
    explanation: dict[str, Any] = field(default_factory=dict)


def rule_from_row(r: Any) -> domain.RoutingRule:
    return domain.RoutingRule(
        id=r.id,
        team_id=r.team_id,
        sources=tuple(r.sources),
        priority=r.priority,
        name=r.name,
        campaign_ids=tuple(r.campaign_ids),
        product_lines=tuple(r.product_lines),
        territories=tuple(r.territories),
        languages=tuple(r.languages),
        strategy=domain.Strategy(r.strategy),
        rep_id=r.rep_id or "",
        sla_seconds=r.sla_seconds,
        breach_action=domain.BreachAction(r.breach_action),
    )


async def load_rules(uow: UnitOfWork) -> list[domain.RoutingRule]:
    rows = (await uow.conn.execute(select(routing_rules).order_by(routing_rules.c.priority))).all()
    return [rule_from_row(r) for r in rows]


def open_lead_filter() -> Any:
    """An open lead (what least-loaded and caps count): new, not answered yet, not merged away."""
    # The status as a literal, not a bind parameter: the planner must see that ix_leads_rep_open's
    # predicate holds even for a generic prepared plan.
    return (
        (leads.c.status == literal_column(f"'{domain.LeadStatus.NEW.value}'"))
        & leads.c.first_response_at.is_(None)
        & leads.c.merged_into_id.is_(None)
    )


async def candidates(
    uow: UnitOfWork, team_id: str, *, rep_id: str = "", lock: bool | None = None
) -> list[rr.Candidate]:
    """The reps of a team (or the one named rep) with their open leads. lock None: lock when a cap
    must hold (any rep has a capacity); True: always (least-loaded)."""
    query = select(reps).where(reps.c.id == rep_id) if rep_id else select(reps).where(reps.c.team_id == team_id)
    rows = (await uow.conn.execute(query.order_by(reps.c.id))).all()
    if lock or (lock is None and any(r.capacity is not None for r in rows)):
        # Re-read under the lock: a concurrent capture's open lead is visible once it committed.
        rows = (await uow.conn.execute(query.order_by(reps.c.id).with_for_update())).all()
        lock = True
    counts: dict[str, int] = {}
    if lock and rows:
        counted = await uow.conn.execute(
            select(leads.c.rep_id, func.count())
            .where(leads.c.rep_id.in_([r.id for r in rows]), open_lead_filter())
            .group_by(leads.c.rep_id)
        )
        counts = {row[0]: row[1] for row in counted.all()}
    return [
        rr.Candidate(
            rep_id=r.id,
            name=r.name,
            active=r.active,
            away=r.away,
            capacity=r.capacity,
            open_leads=counts.get(r.id, 0),
            time_zone=r.time_zone,
            working_hours=rr.working_hours_from_json(r.working_hours),
        )
        for r in rows
    ]


async def try_team(
    uow: UnitOfWork,
    *,
    rule_id: str,
    strategy: domain.Strategy,
    team_id: str,
    rep_id: str,
    now: datetime,
    tried: tuple[str, ...] = (),
) -> rr.RuleOutcome:
    """Pick a rep of the team (or the named rep) by the strategy, skipping who may not take it now."""
    outcome = rr.RuleOutcome(rule_id=rule_id, strategy=strategy.value, team_id=team_id)
    named = rep_id if strategy is domain.Strategy.NAMED_REP else ""
    found = await candidates(
        uow, team_id, rep_id=named, lock=True if strategy is domain.Strategy.LEAST_LOADED else None
    )
    eligible, outcome.considered = rr.screen(found, now, tried)
    if not eligible:
        return outcome
    if strategy is domain.Strategy.NAMED_REP:
        outcome.picked = eligible[0]
        return outcome
    outcome.turn = int((await uow.conn.execute(_NEXT_TURN, {"team_id": team_id})).scalar_one())
    outcome.picked = rr.pick(strategy, eligible, outcome.turn)
    return outcome


async def assign(
    uow: UnitOfWork, new: domain.NewLead, now: datetime, campaign: campaigns.CampaignRef | None = None
) -> Assignment:
    """Match the routing rules for a new lead and pick its rep, in the capture's transaction.

    The first matching rule with an eligible rep wins; when none has one the lead waits in the
    fallback queue (no rep) under the first matching rule's team, with that rule's SLA, so its
    manager sees it and the SLA job escalates it; a lead no rule matches waits for an admin."""
    if campaign is None:  # the capture resolved it already; other callers may not have
        campaign = await campaigns.resolve_campaign(uow, new.source, new.campaign)
    facts = rr.LeadFacts(
        source=new.source,
        campaign_id=campaign.id,
        campaign=new.campaign,
        product_line=new.product_line,
        city=new.city,
        region=new.region,
        locale=new.locale,
    )
    matched = rr.matching_rules(await load_rules(uow), facts)
    tried: list[dict[str, Any]] = []
    for rule in matched:
        outcome = await try_team(
            uow, rule_id=rule.id, strategy=rule.strategy, team_id=rule.team_id, rep_id=rule.rep_id, now=now
        )
        tried.append(outcome.as_dict())
        if outcome.picked is None:
            continue
        rep = outcome.picked
        why = (
            f"round-robin turn {outcome.turn}"
            if rule.strategy is domain.Strategy.ROUND_ROBIN
            else (
                f"least-loaded ({rep.open_leads} open leads)"
                if rule.strategy is domain.Strategy.LEAST_LOADED
                else "named rep"
            )
        )
        skipped = len(matched[: matched.index(rule)])
        reason = f"matched rule {rule.id} ({rule.strategy.value}): {why} in team {rule.team_id}" + (
            f"; {skipped} earlier matching rule(s) had no eligible rep" if skipped else ""
        )
        return Assignment(
            rep_id=rep.rep_id,
            rep_name=rep.name,
            team_id=rule.team_id,
            rule_id=rule.id,
            reason=reason[:500],
            first_response_due_at=rr.due_at(now, rule.sla_seconds),
            sla_seconds=rule.sla_seconds,
            breach_action=rule.breach_action.value,
            explanation={"outcome": "assigned", "rules": tried},
        )
    first = matched[0] if matched else None
    if first is None:
        reason = f"no routing rule matches source {new.source}: waiting in the fallback queue"
    else:
        reason = f"no eligible rep in {len(matched)} matching rule(s): waiting in team {first.team_id}'s queue"
    return Assignment(
        rep_id="",
        rep_name="",
        team_id=first.team_id if first else "",
        rule_id=first.id if first else "",
        reason=reason[:500],
        first_response_due_at=rr.due_at(now, first.sla_seconds) if first else None,
        sla_seconds=first.sla_seconds if first else None,
        breach_action=first.breach_action.value if first else "",
        explanation={"outcome": "queued", "rules": tried},
    )
