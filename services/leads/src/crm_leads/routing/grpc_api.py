"""RoutingService: routing rules, the sales organisation (teams, reps and their availability), the
fallback queue, SLA breaches, work lists (proto ↔ routing commands and queries)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc

from crm.leads.v1 import routing_pb2, routing_pb2_grpc
from crm_kit import etags
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_leads.leads import queries as lead_queries
from crm_leads.leads.lead_proto import lead_to_proto
from crm_leads.leads.queries import LeadView
from crm_leads.routing import availability, commands, directory, domain, queries


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


def rule_from_proto(r: routing_pb2.RoutingRule) -> domain.RuleInput:
    return domain.RuleInput(
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


def rep_basics(row: Any) -> routing_pb2.Rep:
    """A rep without its load (REP_VIEW_BASIC): open_leads, available and unavailable_reason unset."""
    out = routing_pb2.Rep(
        id=row.id,
        name=row.name,
        team_id=row.team_id,
        active=row.active,
        away=row.away,
        time_zone=row.time_zone,
        working_hours=[
            routing_pb2.WorkingHours(day=h.day, start=h.start, end=h.end)
            for h in availability.working_hours_from_json(row.working_hours)
        ],
        territories=list(row.territories),
        product_lines=list(row.product_lines),
        etag=etags.etag(row.version),
        create_time=to_timestamp(row.created_at),
        update_time=to_timestamp(row.updated_at),
    )
    if row.capacity is not None:
        out.capacity = row.capacity
    return out


def rep_to_proto(row: Any, open_leads: int, now: datetime) -> routing_pb2.Rep:
    """A rep with its load: its open leads and whether it can take a lead now."""
    candidate = queries.candidate(row, open_leads)
    reason = availability.skip_reason(candidate, now)
    out = rep_basics(row)
    out.open_leads, out.available, out.unavailable_reason = open_leads, not reason, reason
    return out


def _rep_input(rep: routing_pb2.Rep) -> directory.RepInput:
    return directory.RepInput(
        name=rep.name,
        team_id=rep.team_id,
        active=rep.active,
        away=rep.away,
        capacity=rep.capacity if rep.HasField("capacity") else None,
        time_zone=rep.time_zone,
        working_hours=tuple((h.day, h.start, h.end) for h in rep.working_hours),
        territories=tuple(rep.territories),
        product_lines=tuple(rep.product_lines),
    )


def team_to_proto(row: Any) -> routing_pb2.Team:
    return routing_pb2.Team(
        id=row.id,
        name=row.name,
        manager_id=row.manager_id or "",
        active=row.active,
        active_reps=row.active_reps,
        etag=etags.etag(row.version),
        create_time=to_timestamp(row.created_at),
        update_time=to_timestamp(row.updated_at),
    )


def _team_input(team: routing_pb2.Team) -> directory.TeamInput:
    return directory.TeamInput(name=team.name, manager_id=team.manager_id, active=team.active)


def _generated(prefix: str) -> Callable[[], str]:
    return lambda: f"{prefix}-{uuid.uuid4().hex[:12]}"


def breach_to_proto(r: Any) -> routing_pb2.SlaBreach:
    return routing_pb2.SlaBreach(
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


def work_item(view: LeadView, now: datetime) -> routing_pb2.WorkItem:
    r = view.row
    running = r.first_response_at is None and r.first_response_due_at is not None
    return routing_pb2.WorkItem(
        lead=lead_to_proto(view),
        seconds_left=int((r.first_response_due_at - now).total_seconds()) if running else 0,
        has_deadline=running,
        responded=r.first_response_at is not None,
    )


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ListRoutingRules(
        self, request: routing_pb2.ListRoutingRulesRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListRoutingRulesResponse:
        async with self.db.unit_of_work() as uow:
            rules = await queries.load_rules(uow)
            version = await queries.rule_set_version(uow)
        return routing_pb2.ListRoutingRulesResponse(rules=[rule_to_proto(r) for r in rules], version=version)

    async def ReplaceRoutingRules(
        self, request: routing_pb2.ReplaceRoutingRulesRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ReplaceRoutingRulesResponse:
        inputs = [rule_from_proto(r) for r in request.rules]
        async with self.db.unit_of_work() as uow:
            rules, version = await commands.replace_rules(uow, inputs, expected_version=request.expected_version)
        return routing_pb2.ReplaceRoutingRulesResponse(rules=[rule_to_proto(r) for r in rules], version=version)

    async def ListReps(
        self, request: routing_pb2.ListRepsRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListRepsResponse:
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            if request.view == routing_pb2.REP_VIEW_BASIC:
                # Who is in a team (the gateway's target scopes): no count over the leads table.
                rows = await queries.list_reps(uow, team_id=request.team_id, rep_id=request.rep_id)
                return routing_pb2.ListRepsResponse(reps=[rep_basics(r) for r in rows])
            found = await queries.reps_with_load(uow, team_id=request.team_id, rep_id=request.rep_id)
        return routing_pb2.ListRepsResponse(reps=[rep_to_proto(r, n, now) for r, n in found])

    async def GetRep(
        self, request: routing_pb2.GetRepRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.GetRepResponse:
        require({"rep_id": request.rep_id})
        async with self.db.unit_of_work() as uow:
            found = await queries.reps_with_load(uow, rep_id=request.rep_id)
        if not found:
            raise commands.rep_not_found(request.rep_id)
        return routing_pb2.GetRepResponse(rep=rep_to_proto(*found[0], datetime.now(UTC)))

    async def CreateRep(
        self, request: routing_pb2.CreateRepRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.CreateRepResponse:
        rep_id = directory.new_id(request.rep_id, "rep_id", _generated("rep"))
        values = directory.new_rep(rep_id, _rep_input(request.rep))
        async with self.db.unit_of_work() as uow:
            await commands.create_rep(uow, values)
            found = await queries.reps_with_load(uow, rep_id=rep_id)
        return routing_pb2.CreateRepResponse(rep=rep_to_proto(*found[0], datetime.now(UTC)))

    async def UpdateRep(
        self, request: routing_pb2.UpdateRepRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.UpdateRepResponse:
        require({"rep.id": request.rep.id})
        values = directory.rep_changes(list(request.update_mask.paths), _rep_input(request.rep))
        async with self.db.unit_of_work() as uow:
            await commands.update_rep(uow, request.rep.id, values, request.etag)
            found = await queries.reps_with_load(uow, rep_id=request.rep.id)
        return routing_pb2.UpdateRepResponse(rep=rep_to_proto(*found[0], datetime.now(UTC)))

    async def CreateTeam(
        self, request: routing_pb2.CreateTeamRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.CreateTeamResponse:
        team_id = directory.new_id(request.team_id, "team_id", _generated("team"))
        values = directory.new_team(team_id, _team_input(request.team))
        async with self.db.unit_of_work() as uow:
            await commands.create_team(uow, values)
            row = await queries.get_team(uow, team_id)
        return routing_pb2.CreateTeamResponse(team=team_to_proto(row))

    async def GetTeam(
        self, request: routing_pb2.GetTeamRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.GetTeamResponse:
        require({"team_id": request.team_id})
        async with self.db.unit_of_work() as uow:
            row = await queries.get_team(uow, request.team_id)
        return routing_pb2.GetTeamResponse(team=team_to_proto(row))

    async def ListTeams(
        self, request: routing_pb2.ListTeamsRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListTeamsResponse:
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_teams(
                uow,
                show_inactive=request.show_inactive,
                limit=page_size(request.page_size),
                after=page_position(request.page_token, datetime.fromisoformat, str),
            )
        return routing_pb2.ListTeamsResponse(
            teams=[team_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def UpdateTeam(
        self, request: routing_pb2.UpdateTeamRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.UpdateTeamResponse:
        require({"team.id": request.team.id})
        values = directory.team_changes(list(request.update_mask.paths), _team_input(request.team))
        async with self.db.unit_of_work() as uow:
            await commands.update_team(uow, request.team.id, values, request.etag)
            row = await queries.get_team(uow, request.team.id)
        return routing_pb2.UpdateTeamResponse(team=team_to_proto(row))

    async def ListLeadQueue(
        self, request: routing_pb2.ListLeadQueueRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListLeadQueueResponse:
        async with self.db.unit_of_work() as uow:
            views, next_key = await queries.lead_queue(
                uow,
                team_id=request.team_id,
                include_unteamed=request.include_unteamed,
                limit=page_size(request.page_size),
                after=page_position(request.page_token, datetime.fromisoformat, str),
            )
        return routing_pb2.ListLeadQueueResponse(
            leads=[lead_to_proto(v) for v in views],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def AssignLead(
        self, request: routing_pb2.AssignLeadRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.AssignLeadResponse:
        require({"lead_id": request.lead_id, "rep_id": request.rep_id})
        async with self.db.unit_of_work() as uow:
            await commands.assign_by_hand(uow, request.lead_id, request.rep_id, datetime.now(UTC))
            view = await lead_queries.get_lead(uow, request.lead_id)
        return routing_pb2.AssignLeadResponse(lead=lead_to_proto(view))

    async def GetLeadRouting(
        self, request: routing_pb2.GetLeadRoutingRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.GetLeadRoutingResponse:
        require({"lead_id": request.lead_id})
        async with self.db.unit_of_work() as uow:
            view = await lead_queries.get_lead(uow, request.lead_id)
        return routing_pb2.GetLeadRoutingResponse(lead=lead_to_proto(view))

    async def ListSlaBreaches(
        self, request: routing_pb2.ListSlaBreachesRequest, context: grpc.aio.ServicerContext
    ) -> routing_pb2.ListSlaBreachesResponse:
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_sla_breaches(
                uow,
                team_id=request.team_id,
                limit=page_size(request.page_size),
                after=page_position(request.page_token, datetime.fromisoformat, str),
            )
        return routing_pb2.ListSlaBreachesResponse(
            sla_breaches=[breach_to_proto(r) for r in rows],
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
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            views = await queries.work_list(uow, request.rep_id, offset=offset, limit=limit)
        return routing_pb2.ListWorkListResponse(
            items=[work_item(v, now) for v in views[:limit]],
            next_page_token=encode_page_token(offset + limit) if len(views) > limit else "",
        )
