"""RoutingService: routing rules, reps' availability, the fallback queue, SLA breaches, work lists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import case, delete, func, insert, literal, or_, select, update

from crm.leads.v1 import routing_pb2, routing_pb2_grpc
from crm_kit import caller
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import DomainError, InvalidArgument, NotFound, require
from crm_kit.pagination import keyset_page
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_leads import commands, domain, sla
from crm_leads import routing_rules as rr
from crm_leads.db import campaigns as campaign_table
from crm_leads.db import lead_sla_breaches, leads, reps, routing_rule_sets, routing_rules, teams
from crm_leads.db import sources as source_table
from crm_leads.grpc_api import lead_to_proto
from crm_leads.routing import open_lead_filter, rule_from_row

_REP_FIELDS = ("away", "capacity", "time_zone", "working_hours")


class VersionMismatch(DomainError):
    """The rule set changed since the client read it (If-Match failed)."""

    grpc_code = grpc.StatusCode.ABORTED
    reason = "RULE_SET_VERSION_MISMATCH"


def rule_to_proto(rule: domain.RoutingRule) -> routing_pb2.RoutingRule:
    out = routing_pb2.RoutingRule(
        id=rule.id,
        name=rule.name,
        priority=rule.priority,
        sources=list(rule.sources),
        campaign_ids=list(rule.campaign_ids),
        product_lines=list(rule.product_lines),
        territories=list(rule.territories),
        languages=list(rule.languages),
        strategy=rule.strategy.value,
        team_id=rule.team_id,
        rep_id=rule.rep_id,
        breach_action=rule.breach_action.value,
    )
    if rule.sla_seconds is not None:
        out.sla_seconds = rule.sla_seconds
    return out


def rule_from_proto(r: routing_pb2.RoutingRule) -> rr.RuleInput:
    return rr.RuleInput(
        id=r.id,
        name=r.name,
        priority=r.priority,
        sources=tuple(r.sources),
        campaign_ids=tuple(r.campaign_ids),
        product_lines=tuple(r.product_lines),
        territories=tuple(r.territories),
        languages=tuple(r.languages),
        strategy=r.strategy,
        team_id=r.team_id,
        rep_id=r.rep_id,
        sla_seconds=r.sla_seconds if r.HasField("sla_seconds") else None,
        breach_action=r.breach_action,
    )


def rep_to_proto(row: Any, open_leads: int, now: datetime) -> routing_pb2.Rep:
    hours = rr.working_hours_from_json(row.working_hours)
    candidate = rr.Candidate(
        rep_id=row.id,
        active=row.active,
        away=row.away,
        capacity=row.capacity,
        open_leads=open_leads,
        time_zone=row.time_zone,
        working_hours=hours,
    )
    reason = rr.skip_reason(candidate, now)
    out = routing_pb2.Rep(
        id=row.id,
        name=row.name,
        team_id=row.team_id,
        active=row.active,
        away=row.away,
        time_zone=row.time_zone,
        working_hours=[routing_pb2.WorkingHours(day=h.day, start=h.start, end=h.end) for h in hours],
        open_leads=open_leads,
        available=not reason,
        unavailable_reason=reason,
    )
    if row.capacity is not None:
        out.capacity = row.capacity
    return out


async def _version(uow: UnitOfWork, *, lock: bool = False) -> int:
    query = select(routing_rule_sets.c.version).where(routing_rule_sets.c.id == 1)
    found = (await uow.conn.execute(query.with_for_update() if lock else query)).scalar()
    if found is None:
        await uow.conn.execute(insert(routing_rule_sets).values(id=1, version=1))
        return 1
    return int(found)


async def _reps_with_load(uow: UnitOfWork, query: Any) -> list[tuple[Any, int]]:
    rows = (await uow.conn.execute(query.order_by(reps.c.id))).all()
    if not rows:
        return []
    counted = await uow.conn.execute(
        select(leads.c.rep_id, func.count())
        .where(leads.c.rep_id.in_([r.id for r in rows]), open_lead_filter())
        .group_by(leads.c.rep_id)
    )
    counts = {row[0]: row[1] for row in counted.all()}
    return [(r, counts.get(r.id, 0)) for r in rows]


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ListRoutingRules(
        self, request: routing_pb2.ListRoutingRulesRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListRoutingRulesResponse:
        async with self.db.unit_of_work() as uow:
            rows = (await uow.conn.execute(select(routing_rules).order_by(routing_rules.c.priority))).all()
            version = await _version(uow)
        return routing_pb2.ListRoutingRulesResponse(
            rules=[rule_to_proto(rule_from_row(r)) for r in rows], version=version
        )

    async def ReplaceRoutingRules(
        self, request: routing_pb2.ReplaceRoutingRulesRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ReplaceRoutingRulesResponse:
        inputs = [rule_from_proto(r) for r in request.rules]
        async with self.db.unit_of_work() as uow:
            # The version row's lock serializes replacements: the check and the write are one step.
            version = await _version(uow, lock=True)
            if request.expected_version and request.expected_version != version:
                raise VersionMismatch(
                    f"the rule set is at version {version}, not {request.expected_version}",
                    metadata={"version": str(version)},
                )
            team_ids = set((await uow.conn.execute(select(teams.c.id))).scalars())
            rep_teams = {r.id: r.team_id for r in (await uow.conn.execute(select(reps.c.id, reps.c.team_id))).all()}
            rules = rr.validate_rule_set(
                inputs,
                sources=set(domain.SOURCES) | set((await uow.conn.execute(select(source_table.c.code))).scalars()),
                teams=team_ids,
                rep_teams=rep_teams,
                campaigns=set((await uow.conn.execute(select(campaign_table.c.id))).scalars()),
                new_id=lambda: f"rule-{uuid.uuid4().hex[:12]}",
            )
            await uow.conn.execute(delete(routing_rules))
            if rules:
                await uow.conn.execute(
                    insert(routing_rules),
                    [
                        {
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
                        for r in rules
                    ],
                )
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
        return routing_pb2.ReplaceRoutingRulesResponse(rules=[rule_to_proto(r) for r in rules], version=new_version)

    async def ListReps(
        self, request: routing_pb2.ListRepsRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListRepsResponse:
        query = select(reps)
        if request.team_id:
            query = query.where(reps.c.team_id == request.team_id)
        if request.rep_id:
            query = query.where(reps.c.id == request.rep_id)
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            found = await _reps_with_load(uow, query)
        return routing_pb2.ListRepsResponse(reps=[rep_to_proto(r, n, now) for r, n in found])

    async def GetRep(
        self, request: routing_pb2.GetRepRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.GetRepResponse:
        require({"rep_id": request.rep_id})
        async with self.db.unit_of_work() as uow:
            found = await _reps_with_load(uow, select(reps).where(reps.c.id == request.rep_id))
        if not found:
            raise _rep_not_found(request.rep_id)
        return routing_pb2.GetRepResponse(rep=rep_to_proto(*found[0], datetime.now(UTC)))

    async def UpdateRep(
        self, request: routing_pb2.UpdateRepRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.UpdateRepResponse:
        require({"rep.id": request.rep.id})
        paths = list(dict.fromkeys(request.update_mask.paths))
        violations = [
            (f"update_mask.paths[{i}]", f"one of: {', '.join(_REP_FIELDS)}")
            for i, p in enumerate(paths)
            if p not in _REP_FIELDS
        ]
        rep = request.rep
        values: dict[str, Any] = {}
        if "away" in paths:
            values["away"] = rep.away
        if "capacity" in paths:
            if rep.HasField("capacity") and not 0 <= rep.capacity <= rr.MAX_CAPACITY:
                violations.append(("rep.capacity", f"between 0 and {rr.MAX_CAPACITY} (or absent: no cap)"))
            values["capacity"] = rep.capacity if rep.HasField("capacity") else None
        if "time_zone" in paths:
            if not rr.validate_time_zone(rep.time_zone):
                violations.append(("rep.time_zone", "an IANA time zone, e.g. Asia/Jerusalem or Asia/Tehran"))
            values["time_zone"] = rep.time_zone
        if "working_hours" in paths:
            try:
                hours = rr.validate_working_hours(
                    [(h.day, h.start, h.end) for h in rep.working_hours], "rep.working_hours"
                )
                values["working_hours"] = [h.as_dict() for h in hours]
            except InvalidArgument as exc:
                violations += exc.field_violations
        if not paths:
            violations.append(("update_mask", "name at least one field"))
        if violations:
            raise InvalidArgument("invalid rep update", field_violations=violations)
        async with self.db.unit_of_work() as uow:
            changed = await uow.conn.execute(
                update(reps).where(reps.c.id == rep.id).values(**values).returning(reps.c.id)
            )
            if changed.first() is None:
                raise _rep_not_found(rep.id)
            uow.audit("leads.UpdateRep", "rep", rep.id, {k: v for k, v in values.items()})
            found = await _reps_with_load(uow, select(reps).where(reps.c.id == rep.id))
        return routing_pb2.UpdateRepResponse(rep=rep_to_proto(*found[0], datetime.now(UTC)))

    async def ListLeadQueue(
        self, request: routing_pb2.ListLeadQueueRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListLeadQueueResponse:
        query = commands.lead_view_query().where(
            leads.c.rep_id.is_(None),
            leads.c.status == domain.LeadStatus.NEW.value,
            leads.c.merged_into_id.is_(None),
        )
        if request.team_id:
            team = leads.c.team_id == request.team_id
            query = query.where(or_(team, leads.c.team_id.is_(None)) if request.include_unteamed else team)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await keyset_page(
                uow.conn,
                query,
                leads.c.created_at,
                leads.c.id,
                limit=page_size(request.page_size),
                after=page_position(request.page_token, datetime.fromisoformat, str),
            )
        return routing_pb2.ListLeadQueueResponse(
            leads=[lead_to_proto(commands.lead_view(r)) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def AssignLead(
        self, request: routing_pb2.AssignLeadRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.AssignLeadResponse:
        require({"lead_id": request.lead_id, "rep_id": request.rep_id})
        async with self.db.unit_of_work() as uow:
            await sla.assign_by_hand(uow, request.lead_id, request.rep_id, datetime.now(UTC))
            row = (await uow.conn.execute(commands.lead_view_query().where(leads.c.id == request.lead_id))).one()
        return routing_pb2.AssignLeadResponse(lead=lead_to_proto(commands.lead_view(row)))

    async def GetLeadRouting(
        self, request: routing_pb2.GetLeadRoutingRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.GetLeadRoutingResponse:
        require({"lead_id": request.lead_id})
        async with self.db.unit_of_work() as uow:
            row = (await uow.conn.execute(commands.lead_view_query().where(leads.c.id == request.lead_id))).first()
        if row is None:
            raise NotFound(
                f"lead {request.lead_id} not found", reason="LEAD_NOT_FOUND", metadata={"lead_id": request.lead_id}
            )
        return routing_pb2.GetLeadRoutingResponse(lead=lead_to_proto(commands.lead_view(row)))

    async def ListSlaBreaches(
        self, request: routing_pb2.ListSlaBreachesRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListSlaBreachesResponse:
        query = select(lead_sla_breaches)
        if request.team_id:
            query = query.where(lead_sla_breaches.c.team_id == request.team_id)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await keyset_page(
                uow.conn,
                query,
                lead_sla_breaches.c.breached_at,
                lead_sla_breaches.c.id,
                limit=page_size(request.page_size),
                after=page_position(request.page_token, datetime.fromisoformat, str),
                descending=True,
            )
        return routing_pb2.ListSlaBreachesResponse(
            sla_breaches=[
                routing_pb2.SlaBreach(
                    id=r.id,
                    lead_id=r.lead_id,
                    rep_id=r.rep_id,
                    team_id=r.team_id,
                    rule_id=r.rule_id,
                    source=r.source,
                    due_time=to_timestamp(r.due_at),
                    breach_time=to_timestamp(r.breached_at),
                    action=r.action,
                    new_rep_id=r.new_rep_id,
                    manager_id=r.manager_id,
                )
                for r in rows
            ],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def ListWorkList(
        self, request: routing_pb2.ListWorkListRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListWorkListResponse:
        require({"rep_id": request.rep_id})
        limit = page_size(request.page_size)
        position = page_position(request.page_token, int)
        offset = int(position[0]) if position else 0
        if offset < 0:
            raise InvalidArgument("page_token is not valid", field_violations=[("page_token", "not a token")])
        responded = leads.c.first_response_at.is_not(None)
        # Open leads by deadline (overdue first), open leads without a deadline, then answered ones.
        # The order moves as time passes and leads are answered: pages are offsets into a live view.
        query = (
            commands.lead_view_query()
            .where(
                leads.c.rep_id == request.rep_id,
                leads.c.status == domain.LeadStatus.NEW.value,
                leads.c.merged_into_id.is_(None),
            )
            .order_by(
                case((responded, literal(1)), else_=literal(0)),
                leads.c.first_response_due_at.asc().nulls_last(),
                leads.c.created_at,
                leads.c.id,
            )
            .offset(offset)
            .limit(limit + 1)
        )
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            rows = (await uow.conn.execute(query)).all()
        items = []
        for r in rows[:limit]:
            running = r.first_response_at is None and r.first_response_due_at is not None
            items.append(
                routing_pb2.WorkItem(
                    lead=lead_to_proto(commands.lead_view(r)),
                    seconds_left=int((r.first_response_due_at - now).total_seconds()) if running else 0,
                    has_deadline=running,
                    responded=r.first_response_at is not None,
                )
            )
        return routing_pb2.ListWorkListResponse(
            items=items, next_page_token=encode_page_token(offset + limit) if len(rows) > limit else ""
        )


def _rep_not_found(rep_id: str) -> NotFound:
    return NotFound(f"rep {rep_id} not found", reason="REP_NOT_FOUND", metadata={"rep_id": rep_id})


def _actor() -> str:
    who = caller.current()
    return who.actor[:200] if who else ""
