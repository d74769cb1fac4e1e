"""Reading routing: the rule set and its version, teams and reps (with their open leads), the
fallback queue, reps' work lists and SLA breaches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, case, func, literal, literal_column, or_, select

from crm_kit.db import UnitOfWork
from crm_kit.pagination import keyset_page
from crm_leads.campaigns import queries as campaign_queries
from crm_leads.config_cache import CaptureConfig
from crm_leads.db import lead_sla_breaches, leads, reps, routing_rule_sets, routing_rules, teams
from crm_leads.leads.domain import SOURCES, LeadStatus
from crm_leads.leads.queries import LeadView, lead_view, lead_view_query
from crm_leads.routing import availability, directory, domain


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


_ALL_RULES = select(routing_rules).order_by(routing_rules.c.priority)


async def load_rules(uow: UnitOfWork, config: CaptureConfig | None = None) -> list[domain.RoutingRule]:
    """The rule set; with config (a capture's crm_leads.config_cache), read once per version."""
    if config is not None and config.rules is not None:
        return list(config.rules)
    rules = [rule_from_row(r) for r in (await uow.conn.execute(_ALL_RULES)).all()]
    if config is not None:
        config.rules = tuple(rules)
    return rules


async def rule_set_version(uow: UnitOfWork) -> int:
    """The rule set's version (the ETag of GET /routing-rules); 1 before any replacement."""
    found = (await uow.conn.execute(select(routing_rule_sets.c.version).where(routing_rule_sets.c.id == 1))).scalar()
    return 1 if found is None else int(found)


async def rule_catalogue(uow: UnitOfWork) -> domain.RuleCatalogue:
    """What a new rule set may name: the catalogue's sources (built-in ones too), active teams and
    their reps, campaigns."""
    rep_teams = select(reps.c.id, reps.c.team_id).join(teams, teams.c.id == reps.c.team_id).where(teams.c.active)
    return domain.RuleCatalogue(
        sources=set(SOURCES) | await campaign_queries.source_codes(uow),
        teams=set((await uow.conn.execute(select(teams.c.id).where(teams.c.active))).scalars()),
        rep_teams={r.id: r.team_id for r in (await uow.conn.execute(rep_teams)).all()},
        campaigns=await campaign_queries.campaign_ids(uow),
    )


async def strategy_of(uow: UnitOfWork, rule_id: str | None) -> domain.Strategy:
    """The strategy of a lead's rule as it is now; round-robin when it was removed or named a rep
    (the "next rep" of a named-rep rule is the next in its team's rotation)."""
    if rule_id:
        found = (await uow.conn.execute(select(routing_rules.c.strategy).where(routing_rules.c.id == rule_id))).scalar()
        if found == domain.Strategy.LEAST_LOADED.value:
            return domain.Strategy.LEAST_LOADED
    return domain.Strategy.ROUND_ROBIN


async def team_manager(uow: UnitOfWork, team_id: str) -> str:
    """Who a breach of the team's leads escalates to ("" when nobody is set)."""
    return (await uow.conn.execute(select(teams.c.manager_id).where(teams.c.id == team_id))).scalar() or ""


def open_lead_filter() -> Any:
    """An open lead (what least-loaded and caps count): new, not answered yet, not merged away."""
    # The status as a literal, not a bind parameter: the planner must see that ix_leads_rep_open's
    # predicate holds even for a generic prepared plan.
    return (
        (leads.c.status == literal_column(f"'{LeadStatus.NEW.value}'"))
        & leads.c.first_response_at.is_(None)
        & leads.c.merged_into_id.is_(None)
    )


async def _open_leads(uow: UnitOfWork, rep_ids: list[str]) -> dict[str, int]:
    counted = await uow.conn.execute(
        select(leads.c.rep_id, func.count())
        .where(leads.c.rep_id.in_(rep_ids), open_lead_filter())
        .group_by(leads.c.rep_id)
    )
    return {row[0]: row[1] for row in counted.all()}


def candidate(r: Any, open_leads: int) -> availability.Candidate:
    """A reps row (all its columns) and its open leads as routing's Candidate."""
    return availability.Candidate(
        rep_id=r.id,
        name=r.name,
        active=r.active,
        away=r.away,
        capacity=r.capacity,
        open_leads=open_leads,
        time_zone=r.time_zone,
        working_hours=availability.working_hours_from_json(r.working_hours),
        territories=tuple(r.territories),
        product_lines=tuple(r.product_lines),
    )


async def candidates(
    uow: UnitOfWork, team_id: str, *, rep_id: str = "", lock: bool | None = None, config: CaptureConfig | None = None
) -> list[availability.Candidate]:
    """The reps of a team (or the one named rep) with their open leads. lock None: lock when a cap
    must hold (any rep has a capacity); True: always (least-loaded). With config (a capture's
    crm_leads.config_cache) the unlocked read is taken from it, once per version; the locked read
    and the count of open leads are never cached."""
    query = select(reps).where(reps.c.id == rep_id) if rep_id else select(reps).where(reps.c.team_id == team_id)
    key = (team_id, rep_id)
    unlocked: tuple[availability.Candidate, ...] | None = config.reps.get(key) if config is not None else None
    if unlocked is None:
        unlocked = tuple(candidate(r, 0) for r in (await uow.conn.execute(query.order_by(reps.c.id))).all())
        if config is not None:
            config.reps[key] = unlocked
    if not (lock or (lock is None and any(c.capacity is not None for c in unlocked))):
        return list(unlocked)
    # Re-read under the lock: a concurrent capture's open lead is visible once it committed.
    rows = (await uow.conn.execute(query.order_by(reps.c.id).with_for_update())).all()
    counts = await _open_leads(uow, [r.id for r in rows]) if rows else {}
    return [candidate(r, counts.get(r.id, 0)) for r in rows]


async def list_reps(uow: UnitOfWork, *, team_id: str = "", rep_id: str = "") -> list[Any]:
    """Reps (of a team, or one rep) by id: one read of the reps table, no count of their leads."""
    query = select(reps)
    if team_id:
        query = query.where(reps.c.team_id == team_id)
    if rep_id:
        query = query.where(reps.c.id == rep_id)
    return list((await uow.conn.execute(query.order_by(reps.c.id))).all())


async def reps_with_load(uow: UnitOfWork, *, team_id: str = "", rep_id: str = "") -> list[tuple[Any, int]]:
    """Reps (of a team, or one rep) with their open leads, by id."""
    rows = await list_reps(uow, team_id=team_id, rep_id=rep_id)
    if not rows:
        return []
    counts = await _open_leads(uow, [r.id for r in rows])
    return [(r, counts.get(r.id, 0)) for r in rows]


# ---------------------------------------------------------------- the sales organisation


def _teams_query() -> Select[Any]:
    active_reps = (
        select(func.count()).where(reps.c.team_id == teams.c.id, reps.c.active).scalar_subquery().label("active_reps")
    )
    return select(teams, active_reps)


async def get_team(uow: UnitOfWork, team_id: str) -> Any:
    """The team with its number of active reps; TEAM_NOT_FOUND when there is none."""
    row = (await uow.conn.execute(_teams_query().where(teams.c.id == team_id))).first()
    if row is None:
        raise directory.team_not_found(team_id)
    return row


async def list_teams(
    uow: UnitOfWork, *, show_inactive: bool, limit: int, after: tuple[Any, ...] | None
) -> tuple[list[Any], list[Any] | None]:
    """Teams oldest first (active ones unless asked), with their numbers of active reps."""
    query = _teams_query() if show_inactive else _teams_query().where(teams.c.active)
    return await keyset_page(uow.conn, query, teams.c.created_at, teams.c.id, limit=limit, after=after)


async def locked_team(uow: UnitOfWork, team_id: str, *, share: bool = False) -> Any:
    """The team's row, locked until the unit of work ends (None when there is none): FOR NO KEY
    UPDATE for a change of the team, FOR SHARE for a rep joining it, so that a deactivation and a
    rep's activation or move never pass each other. Neither waits for rows that only reference the
    team (foreign keys take KEY SHARE)."""
    query = select(teams).where(teams.c.id == team_id)
    return (await uow.conn.execute(query.with_for_update(read=share, key_share=not share))).first()


async def locked_rep(uow: UnitOfWork, rep_id: str) -> Any:
    """The rep's row, locked FOR NO KEY UPDATE (None when there is none): a capture or a rule set
    that only references the rep (foreign keys) does not wait for the edit."""
    query = select(reps).where(reps.c.id == rep_id).with_for_update(key_share=True)
    return (await uow.conn.execute(query)).first()


async def active_rep_ids(uow: UnitOfWork, team_id: str) -> list[str]:
    query = select(reps.c.id).where(reps.c.team_id == team_id, reps.c.active).order_by(reps.c.id)
    return list((await uow.conn.execute(query)).scalars())


async def rule_ids_for_team(uow: UnitOfWork, team_id: str) -> list[str]:
    """The routing rules that give the team leads (by priority)."""
    query = select(routing_rules.c.id).where(routing_rules.c.team_id == team_id).order_by(routing_rules.c.priority)
    return list((await uow.conn.execute(query)).scalars())


async def rule_ids_naming_rep(uow: UnitOfWork, rep_id: str) -> list[str]:
    """The named_rep routing rules that give the rep leads (by priority)."""
    query = select(routing_rules.c.id).where(routing_rules.c.rep_id == rep_id).order_by(routing_rules.c.priority)
    return list((await uow.conn.execute(query)).scalars())


async def lead_queue(
    uow: UnitOfWork, *, team_id: str, include_unteamed: bool, limit: int, after: tuple[Any, ...] | None
) -> tuple[list[LeadView], list[Any] | None]:
    """New leads no rep has (the fallback queue), oldest first; of a team, and the unteamed ones when asked."""
    query = lead_view_query().where(
        leads.c.rep_id.is_(None),
        leads.c.status == LeadStatus.NEW.value,
        leads.c.merged_into_id.is_(None),
    )
    if team_id:
        team = leads.c.team_id == team_id
        query = query.where(or_(team, leads.c.team_id.is_(None)) if include_unteamed else team)
    rows, next_key = await keyset_page(uow.conn, query, leads.c.created_at, leads.c.id, limit=limit, after=after)
    return [lead_view(r) for r in rows], next_key


def _work_list_query(rep_id: str) -> Select[Any]:
    responded = leads.c.first_response_at.is_not(None)
    # Open leads by deadline (overdue first), open leads without a deadline, then answered ones.
    return (
        lead_view_query()
        .where(leads.c.rep_id == rep_id, leads.c.status == LeadStatus.NEW.value, leads.c.merged_into_id.is_(None))
        .order_by(
            case((responded, literal(1)), else_=literal(0)),
            leads.c.first_response_due_at.asc().nulls_last(),
            leads.c.created_at,
            leads.c.id,
        )
    )


async def work_list(uow: UnitOfWork, rep_id: str, *, offset: int, limit: int) -> list[LeadView]:
    """A rep's new leads in the order to work them, from offset; limit + 1 rows tell whether more
    follow. The order moves as time passes and leads are answered: pages are offsets into a live view."""
    rows = (await uow.conn.execute(_work_list_query(rep_id).offset(offset).limit(limit + 1))).all()
    return [lead_view(r) for r in rows]


async def list_sla_breaches(
    uow: UnitOfWork, *, team_id: str, limit: int, after: tuple[Any, ...] | None
) -> tuple[list[Any], list[Any] | None]:
    """Breaches newest first, of a team when given."""
    query = select(lead_sla_breaches)
    if team_id:
        query = query.where(lead_sla_breaches.c.team_id == team_id)
    return await keyset_page(
        uow.conn,
        query,
        lead_sla_breaches.c.breached_at,
        lead_sla_breaches.c.id,
        limit=limit,
        after=after,
        descending=True,
    )
