"""Routing commands: which rep gets a new lead (in the capture's own transaction), the rule set and
the sales organisation (teams, reps and their availability) admins change, a lead handed to a rep
by hand, and the speed-to-lead SLA scan.

Fairness with several replicas:

- the round-robin turn is the team's own sequence (`nextval` is not transactional, so captures
  never wait for each other's commit to get a turn and no two get the same turn);
- where a cap has to hold (least-loaded, or any rep of the team with a capacity) the team's rep
  rows are locked (in id order, so captures never deadlock) until the capture commits, and the open
  leads are counted under that lock: two captures can never both see the last free slot.

The SLA: a lead's clock runs from its assignment (first_response_due_at = assignment + the rule's
SLA) until its first logged activity (first_response_at, set by crm_leads.activities.commands). The scan
runs on every replica every few seconds (CRM_SLA_SCAN_INTERVAL_SECONDS); `FOR UPDATE SKIP LOCKED`
gives each due lead to one replica. A breach is recorded (lead_sla_breaches, audit,
LeadSlaBreached) and acted on: reassign hands the lead to the next eligible rep of the team by the
rule's strategy (never one who already had it) with a new deadline; escalate — or a reassign that
finds nobody — gives it to the team's manager and stops the clock.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.leads.v1 import events_pb2
from crm_kit import caller, etags
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import AlreadyExists, DomainError, FailedPrecondition, InvalidArgument, NotFound
from crm_kit.protoconv import to_timestamp
from crm_leads.campaigns.domain import CampaignRef
from crm_leads.config_cache import CaptureConfig
from crm_leads.db import lead_sla_breaches, leads, reps, routing_rule_sets, routing_rules, teams
from crm_leads.errors import lead_not_found
from crm_leads.leads.domain import LeadStatus, NewLead
from crm_leads.metrics import SLA_BREACHES
from crm_leads.routing import availability, directory, domain, queries

log = logging.getLogger(__name__)

_NEXT_TURN = text("SELECT nextval(('routing_rr_' || md5(:team_id))::regclass)")


class VersionMismatch(DomainError):
    """The rule set changed since the client read it (If-Match failed)."""

    grpc_code = grpc.StatusCode.ABORTED
    reason = "RULE_SET_VERSION_MISMATCH"


def rep_not_found(rep_id: str) -> NotFound:
    return NotFound(f"rep {rep_id} not found", reason="REP_NOT_FOUND", metadata={"rep_id": rep_id})


# ---------------------------------------------------------------- assignment of a new lead


async def _screen_team(
    uow: UnitOfWork,
    *,
    rule_id: str,
    strategy: domain.Strategy,
    team_id: str,
    rep_id: str,
    now: datetime,
    tried: tuple[str, ...] = (),
    lead: domain.LeadFacts | None = None,
    config: CaptureConfig | None = None,
) -> tuple[availability.RuleOutcome, list[availability.Candidate]]:
    """The rule's outcome so far (every candidate and why it was skipped; the named rep picked) and
    the eligible reps, who wait for the team's turn when the strategy picks by turn."""
    outcome = availability.RuleOutcome(rule_id=rule_id, strategy=strategy.value, team_id=team_id)
    named = rep_id if strategy is domain.Strategy.NAMED_REP else ""
    found = await queries.candidates(
        uow, team_id, rep_id=named, lock=True if strategy is domain.Strategy.LEAST_LOADED else None, config=config
    )
    eligible, outcome.considered = availability.screen(found, now, tried, None if named else lead)
    if eligible and strategy is domain.Strategy.NAMED_REP:
        outcome.picked = eligible[0]
    return outcome, eligible


async def next_turn(uow: UnitOfWork, team_id: str) -> int:
    """The team's next round-robin turn (its sequence: never waits for another capture's commit)."""
    return int((await uow.conn.execute(_NEXT_TURN, {"team_id": team_id})).scalar_one())


async def try_team(
    uow: UnitOfWork,
    *,
    rule_id: str,
    strategy: domain.Strategy,
    team_id: str,
    rep_id: str,
    now: datetime,
    tried: tuple[str, ...] = (),
    lead: domain.LeadFacts | None = None,
) -> availability.RuleOutcome:
    """Pick a rep of the team (or the named rep) by the strategy, skipping who may not take it now
    and, for a pool strategy, who does not cover the lead (a named rep is the rule's own choice)."""
    outcome, eligible = await _screen_team(
        uow, rule_id=rule_id, strategy=strategy, team_id=team_id, rep_id=rep_id, now=now, tried=tried, lead=lead
    )
    if eligible and outcome.picked is None:
        outcome.turn = await next_turn(uow, team_id)
        outcome.picked = availability.pick(strategy, eligible, outcome.turn)
    return outcome


@dataclass
class PendingAssignment:
    """A new lead's routing decided but for the round-robin turn: turn_team_id names the team whose
    turn completes it ("" when it needs none), so a capture can fetch the turn in a statement it
    sends anyway; complete() then gives the assignment."""

    new: NewLead
    now: datetime
    matched: list[domain.RoutingRule]
    tried: list[dict[str, Any]]
    # The first matching rule with an eligible rep, its position among the matches, what it did and
    # whom it may pick from; None: the lead waits in the queue.
    rule: domain.RoutingRule | None = None
    index: int = 0
    outcome: availability.RuleOutcome | None = None
    eligible: list[availability.Candidate] = field(default_factory=list)

    @property
    def turn_team_id(self) -> str:
        return self.rule.team_id if self.outcome is not None and self.outcome.picked is None and self.rule else ""

    def complete(self, turn: int = 0) -> domain.Assignment:
        rule, outcome = self.rule, self.outcome
        if rule is None or outcome is None:
            return domain.queued(self.new.source, self.matched, self.tried, self.now)
        if outcome.picked is None:
            outcome.turn = turn
            outcome.picked = availability.pick(rule.strategy, self.eligible, turn)
        picked = outcome.picked
        self.tried.append(outcome.as_dict())
        return domain.Assignment(
            rep_id=picked.rep_id,
            rep_name=picked.name,
            team_id=rule.team_id,
            rule_id=rule.id,
            reason=domain.assigned_reason(rule, turn=outcome.turn, open_leads=picked.open_leads, skipped=self.index),
            first_response_due_at=domain.due_at(self.now, rule.sla_seconds),
            sla_seconds=rule.sla_seconds,
            breach_action=rule.breach_action.value,
            explanation={"outcome": "assigned", "rules": self.tried},
        )


async def plan_assignment(
    uow: UnitOfWork, new: NewLead, now: datetime, campaign: CampaignRef, config: CaptureConfig | None = None
) -> PendingAssignment:
    """Match the routing rules for a new lead and screen their reps, in the capture's transaction
    (rules and reps from config, the capture's crm_leads.config_cache, when given).

    The first matching rule with an eligible rep wins; when none has one the lead waits in the
    fallback queue (no rep) under the first matching rule's team, with that rule's SLA, so its
    manager sees it and the SLA job escalates it; a lead no rule matches waits for an admin."""
    facts = domain.LeadFacts(
        source=new.source,
        campaign_id=campaign.id,
        campaign=new.campaign,
        product_line=new.product_line,
        city=new.city,
        region=new.region,
        locale=new.locale,
    )
    matched = domain.matching_rules(await queries.load_rules(uow, config), facts)
    tried: list[dict[str, Any]] = []
    for index, rule in enumerate(matched):
        outcome, eligible = await _screen_team(
            uow,
            rule_id=rule.id,
            strategy=rule.strategy,
            team_id=rule.team_id,
            rep_id=rule.rep_id,
            now=now,
            lead=facts,
            config=config,
        )
        if eligible:
            return PendingAssignment(new, now, matched, tried, rule, index, outcome, eligible)
        tried.append(outcome.as_dict())
    return PendingAssignment(new, now, matched, tried)


# ---------------------------------------------------------------- the rule set and reps


def _actor() -> str:
    who = caller.current()
    return who.actor[:200] if who else ""


async def _locked_version(uow: UnitOfWork) -> int:
    """The rule set's version, its row locked: the check and the write of a replacement are one step."""
    query = select(routing_rule_sets.c.version).where(routing_rule_sets.c.id == 1)
    found = (await uow.conn.execute(query.with_for_update())).scalar()
    if found is None:
        await uow.conn.execute(insert(routing_rule_sets).values(id=1, version=1))
        return 1
    return int(found)


def _rule_row(r: domain.RoutingRule) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "priority": r.priority,
        "sources": list(r.sources),
        "campaign_ids": list(r.campaign_ids),
        "product_lines": list(r.product_lines),
        "territories": list(r.territories),
        "languages": list(r.languages),
        "strategy": r.strategy.value,
        "team_id": r.team_id,
        "rep_id": r.rep_id or None,
        "sla_seconds": r.sla_seconds,
        "breach_action": r.breach_action.value,
    }


async def replace_rules(
    uow: UnitOfWork, inputs: list[domain.RuleInput], *, expected_version: int
) -> tuple[list[domain.RoutingRule], int]:
    """Replace the whole rule set (when it is still at expected_version, 0: any); returns the rules
    as stored and the new version."""
    version = await _locked_version(uow)
    if expected_version and expected_version != version:
        raise VersionMismatch(
            f"the rule set is at version {version}, not {expected_version}", metadata={"version": str(version)}
        )
    catalogue = await queries.rule_catalogue(uow)
    rules = domain.validate_rule_set(
        inputs,
        sources=catalogue.sources,
        teams=catalogue.teams,
        rep_teams=catalogue.rep_teams,
        campaigns=catalogue.campaigns,
        new_id=lambda: f"rule-{uuid.uuid4().hex[:12]}",
    )
    await uow.conn.execute(delete(routing_rules))
    if rules:
        await uow.conn.execute(insert(routing_rules), [_rule_row(r) for r in rules])
    new_version = version + 1
    await uow.conn.execute(
        update(routing_rule_sets)
        .where(routing_rule_sets.c.id == 1)
        .values(version=new_version, updated_at=func.now(), updated_by=_actor())
    )
    uow.audit(
        "leads.ReplaceRoutingRules",
        "routing_rule_set",
        "1",
        {"version": new_version, "rule_ids": [r.id for r in rules]},
    )
    return rules, new_version


# ---------------------------------------------------------------- the sales organisation (teams and reps)


async def _share_rule_set(uow: UnitOfWork) -> None:
    """Hold the rule set still (its row FOR SHARE) while a team or rep change checks the rules
    against it: a concurrent replacement (FOR UPDATE) validates against the change, not before it."""
    await uow.conn.execute(select(routing_rule_sets.c.id).where(routing_rule_sets.c.id == 1).with_for_update(read=True))


async def create_team(uow: UnitOfWork, values: dict[str, Any]) -> None:
    """Insert a team (directory.new_team); its round-robin sequence comes with it (a trigger)."""
    created = await uow.conn.execute(
        pg_insert(teams)
        .values(**values, created_at=func.now(), updated_at=func.now())
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(teams.c.id)
    )
    if created.first() is None:
        team_id = values["id"]
        raise AlreadyExists(f"team {team_id} already exists", reason="TEAM_EXISTS", metadata={"team_id": team_id})
    uow.audit("leads.CreateTeam", "team", values["id"], values)


async def update_team(uow: UnitOfWork, team_id: str, values: dict[str, Any], etag: str) -> None:
    """Set the masked columns (directory.team_changes) of the team at etag (empty: any). A team is
    deactivated only when no active rep and no routing rule is left (directory.check_team_deactivation)."""
    current = await queries.locked_team(uow, team_id)
    if current is None:
        raise directory.team_not_found(team_id)
    etags.check_etag(etag, current.version, f"team {team_id}")
    if values.get("active") is False and current.active:
        await _share_rule_set(uow)
        directory.check_team_deactivation(
            team_id, await queries.active_rep_ids(uow, team_id), await queries.rule_ids_for_team(uow, team_id)
        )
    await uow.conn.execute(
        update(teams).where(teams.c.id == team_id).values(**values, version=teams.c.version + 1, updated_at=func.now())
    )
    uow.audit("leads.UpdateTeam", "team", team_id, {"update_mask": sorted(values), **values})


async def _check_team_for(uow: UnitOfWork, team_id: str, rep_active: bool) -> None:
    """The team a rep is created in, moved to or activated in exists (and is active for an active
    rep); its row is held FOR SHARE so that it cannot be deactivated meanwhile."""
    team = await queries.locked_team(uow, team_id, share=True)
    state = directory.TeamState(exists=team is not None, active=bool(team is not None and team.active))
    directory.check_rep_team(team_id, state, rep_active)


async def create_rep(uow: UnitOfWork, values: dict[str, Any]) -> None:
    """Insert a rep (directory.new_rep) into an existing team (an active one for an active rep)."""
    await _check_team_for(uow, values["team_id"], values["active"])
    created = await uow.conn.execute(
        pg_insert(reps)
        .values(**values, created_at=func.now(), updated_at=func.now())
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(reps.c.id)
    )
    if created.first() is None:
        rep_id = values["id"]
        raise AlreadyExists(f"rep {rep_id} already exists", reason="REP_EXISTS", metadata={"rep_id": rep_id})
    uow.audit("leads.CreateRep", "rep", values["id"], values)


async def update_rep(uow: UnitOfWork, rep_id: str, values: dict[str, Any], etag: str = "") -> None:
    """Set the masked columns (directory.rep_changes) of the rep at etag (empty: any).

    Deactivating takes effect on the next capture (routing reads reps in the capture's
    transaction) and leaves the rep's leads with them and their team. A move changes only where
    the rep's next leads come from (the leads they hold keep their team) and is refused while
    named_rep rules give them their old team's leads."""
    current = await queries.locked_rep(uow, rep_id)
    if current is None:
        raise rep_not_found(rep_id)
    etags.check_etag(etag, current.version, f"rep {rep_id}")
    team_id = values.get("team_id", current.team_id)
    active = values.get("active", current.active)
    moved = team_id != current.team_id
    if moved or (active and not current.active):
        await _check_team_for(uow, team_id, active)
    if moved:
        await _share_rule_set(uow)
        directory.check_rep_move(rep_id, current.team_id, await queries.rule_ids_naming_rep(uow, rep_id))
    await uow.conn.execute(
        update(reps).where(reps.c.id == rep_id).values(**values, version=reps.c.version + 1, updated_at=func.now())
    )
    details = {"update_mask": sorted(values), **values}
    if moved:
        details["previous_team_id"] = current.team_id
    uow.audit("leads.UpdateRep", "rep", rep_id, details)


async def assign_by_hand(uow: UnitOfWork, lead_id: str, rep_id: str, now: datetime) -> None:
    """A manager hands a lead to a rep: the rep's team becomes the lead's, the SLA clock restarts
    (with the lead's SLA), LeadAssigned is published. Capacity and hours do not bind a person's
    decision; an inactive rep is refused."""
    lead = (await uow.conn.execute(select(leads).where(leads.c.id == lead_id).with_for_update(key_share=True))).first()
    if lead is None:
        raise lead_not_found(lead_id)
    rep = (await uow.conn.execute(select(reps).where(reps.c.id == rep_id))).first()
    if rep is None:
        raise InvalidArgument(f"unknown rep {rep_id!r}", field_violations=[("rep_id", "unknown rep")])
    if not rep.active:
        raise InvalidArgument(f"rep {rep_id} is inactive", field_violations=[("rep_id", "the rep is inactive")])
    if lead.status != LeadStatus.NEW.value or lead.merged_into_id:
        raise FailedPrecondition("only a new lead can be assigned", reason="LEAD_NOT_ASSIGNABLE")
    due = domain.due_at(now, lead.sla_seconds)
    running = due is not None and lead.first_response_at is None
    await uow.conn.execute(
        update(leads)
        .where(leads.c.id == lead_id)
        .values(
            rep_id=rep_id,
            team_id=rep.team_id,
            assigned_at=now,
            first_response_due_at=due if lead.first_response_at is None else lead.first_response_due_at,
            sla_clock_running=running,
            escalated_to=None,
            assign_reason="assigned by hand",
        )
    )
    uow.audit(
        "leads.AssignLead",
        "lead",
        lead_id,
        {"rep_id": rep_id, "team_id": rep.team_id, "previous_rep_id": lead.rep_id or ""},
    )
    await uow.record_event(
        events_pb2.LeadAssigned(
            lead_id=lead_id,
            rep_id=rep_id,
            team_id=rep.team_id,
            rule_id=lead.rule_id or "",
            reason="assigned by hand",
            source=lead.source,
            capture_time=to_timestamp(lead.created_at),
            assign_time=to_timestamp(now),
        ),
        time=now,
    )


# ---------------------------------------------------------------- SLA breaches


async def scan_breaches(db: Database, *, batch_size: int = 100, now: datetime | None = None) -> int:
    """Handle up to batch_size leads past their deadline, one transaction per lead; returns how many.

    One lead per transaction: a lead that fails (logged, skipped this round) never rolls back the
    others, and rep locks are held for one breach at a time. The lead row is locked FOR NO KEY
    UPDATE: a capture that only references the lead (a possible-duplicate pair's foreign key) is
    not blocked by the scan.
    """
    handled = 0
    failed: list[str] = []
    while handled + len(failed) < batch_size:
        lead: Any = None
        try:
            async with db.unit_of_work() as uow:
                at = now or datetime.now(UTC)
                query = (
                    select(leads)
                    .where(
                        leads.c.sla_clock_running,
                        leads.c.first_response_at.is_(None),
                        leads.c.first_response_due_at <= at,
                        # A lead converted to a deal or merged into another is no longer waiting.
                        leads.c.status == LeadStatus.NEW.value,
                        leads.c.merged_into_id.is_(None),
                    )
                    .order_by(leads.c.first_response_due_at)
                    .limit(1)
                    .with_for_update(skip_locked=True, key_share=True)
                )
                if failed:
                    query = query.where(leads.c.id.not_in(failed))
                lead = (await uow.conn.execute(query)).first()
                if lead is None:
                    break
                await handle_breach(uow, lead, at)
            handled += 1
        except Exception:
            if lead is None:
                raise
            log.exception("SLA breach handling failed; the lead is retried next scan", extra={"lead_id": lead.id})
            failed.append(lead.id)
    if handled:
        log.info("SLA breaches handled", extra={"count": handled})
    return handled


async def _act_on_breach(
    uow: UnitOfWork, lead: Any, now: datetime, tried: tuple[str, ...], explanation: dict[str, Any]
) -> domain.BreachOutcome:
    """Reassign within the team when the rule says so and someone is eligible; else escalate to
    the team's manager. The reassignment attempt is added to explanation."""
    if lead.breach_action == domain.BreachAction.REASSIGN.value and lead.team_id:
        outcome = await try_team(
            uow,
            rule_id=lead.rule_id or "",
            strategy=await queries.strategy_of(uow, lead.rule_id),
            team_id=lead.team_id,
            rep_id="",
            now=now,
            tried=tried,
            lead=domain.LeadFacts(
                source=lead.source, product_line=lead.product_line, city=lead.city, region=lead.region
            ),
        )
        explanation.setdefault("reassignments", []).append(outcome.as_dict())
        if outcome.picked is not None:
            return domain.BreachOutcome(
                domain.BreachAction.REASSIGN,
                new_rep=outcome.picked.rep_id,
                new_due=domain.due_at(now, lead.sla_seconds),
            )
    manager = await queries.team_manager(uow, lead.team_id) if lead.team_id else ""
    return domain.BreachOutcome(domain.BreachAction.ESCALATE, manager=manager)


async def handle_breach(uow: UnitOfWork, lead: Any, now: datetime) -> None:
    """Record one breach and act on it, in the scan's transaction."""
    tried = tuple(dict.fromkeys([*lead.tried_rep_ids, *([lead.rep_id] if lead.rep_id else [])]))
    explanation = dict(lead.routing_explanation or {})
    done = await _act_on_breach(uow, lead, now, tried, explanation)
    await uow.conn.execute(
        update(leads)
        .where(leads.c.id == lead.id)
        .values(
            sla_breached_at=lead.sla_breached_at or now,
            tried_rep_ids=list(tried),
            routing_explanation=explanation,
            **domain.breached_lead_values(lead, now, done),
        )
    )
    await _record_breach(uow, lead, now, done)
    uow.after_commit(SLA_BREACHES.labels(lead.source, done.action.value).inc)


async def _record_breach(uow: UnitOfWork, lead: Any, now: datetime, done: domain.BreachOutcome) -> None:
    """The breach's row, audit entry and LeadSlaBreached (and LeadAssigned for a new rep)."""
    await uow.conn.execute(
        lead_sla_breaches.insert().values(
            id=str(uuid.uuid4()),
            lead_id=lead.id,
            rep_id=lead.rep_id or "",
            team_id=lead.team_id or "",
            rule_id=lead.rule_id or "",
            source=lead.source,
            due_at=lead.first_response_due_at,
            breached_at=now,
            action=done.action.value,
            new_rep_id=done.new_rep,
            manager_id=done.manager,
        )
    )
    uow.audit(
        "leads.SlaBreached",
        "lead",
        lead.id,
        {
            "rep_id": lead.rep_id or "",
            "action": done.action.value,
            "new_rep_id": done.new_rep,
            "manager_id": done.manager,
        },
    )
    await uow.record_event(
        events_pb2.LeadSlaBreached(
            lead_id=lead.id,
            rep_id=lead.rep_id or "",
            team_id=lead.team_id or "",
            rule_id=lead.rule_id or "",
            source=lead.source,
            due_time=to_timestamp(lead.first_response_due_at),
            breach_time=to_timestamp(now),
            action=done.action.value,
            new_rep_id=done.new_rep,
            manager_id=done.manager,
            new_due_time=to_timestamp(done.new_due),
        ),
        time=now,
    )
    if done.new_rep:
        await uow.record_event(
            events_pb2.LeadAssigned(
                lead_id=lead.id,
                rep_id=done.new_rep,
                team_id=lead.team_id or "",
                rule_id=lead.rule_id or "",
                reason="reassigned after an SLA breach",
                source=lead.source,
                capture_time=to_timestamp(lead.created_at),
                assign_time=to_timestamp(now),
            ),
            time=now,
        )
