"""Request and response bodies of the routing and SLA routes (rules, reps, queue, breaches, work
list); conversion through crm_gateway.schemas' helpers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm.leads.v1 import leads_pb2, routing_pb2
from crm_gateway.schemas import Lead, RequestBody, message_to_dict

Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
Item = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
HourMinute = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
Strategy = Literal["round_robin", "least_loaded", "named_rep"]
BreachAction = Literal["reassign", "escalate"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class RoutingRuleIn(RequestBody):
    """A rule; every criterion list empty matches any lead. team_id for round_robin/least_loaded,
    rep_id for named_rep."""

    id: Id = Field("", description="Generated when empty")
    name: Name
    priority: int = Field(ge=-1_000_000, le=1_000_000, description="Unique; the lowest is tried first")
    sources: list[Id] = Field([], max_length=50)
    campaign_ids: list[Id] = Field([], max_length=100)
    product_lines: list[Item] = Field([], max_length=100)
    territories: list[Item] = Field([], max_length=100, description="City or region names")
    languages: list[Literal["he", "fa", "en"]] = Field([], max_length=3)
    strategy: Strategy = "round_robin"
    team_id: Id = ""
    rep_id: Id = ""
    sla_seconds: int | None = Field(None, ge=1, le=7 * 24 * 3600, description="First-response SLA; null: none")
    breach_action: BreachAction = "escalate"

    def to_proto(self) -> routing_pb2.RoutingRule:
        out = routing_pb2.RoutingRule(
            id=self.id,
            name=self.name,
            priority=self.priority,
            sources=self.sources,
            campaign_ids=self.campaign_ids,
            product_lines=self.product_lines,
            territories=self.territories,
            languages=list(self.languages),
            strategy=self.strategy,
            team_id=self.team_id,
            rep_id=self.rep_id,
            breach_action=self.breach_action,
        )
        if self.sla_seconds is not None:
            out.sla_seconds = self.sla_seconds
        return out


class RoutingRulesIn(RequestBody):
    """The whole ordered rule set (it replaces the current one)."""

    rules: list[RoutingRuleIn] = Field(min_length=1, max_length=200)


class RoutingRule(BaseModel):
    id: str
    name: str
    priority: int
    sources: list[str]
    campaign_ids: list[str]
    product_lines: list[str]
    territories: list[str]
    languages: list[str]
    strategy: str
    team_id: str
    rep_id: str
    sla_seconds: int | None
    breach_action: str


class RoutingRuleSet(BaseModel):
    rules: list[RoutingRule]
    version: int


def rule_set(rules: Any, version: int) -> RoutingRuleSet:
    out = []
    for rule in rules:
        values = message_to_dict(rule)
        values["sla_seconds"] = rule.sla_seconds if rule.HasField("sla_seconds") else None
        out.append(RoutingRule.model_validate(values))
    return RoutingRuleSet(rules=out, version=version)


class WorkingHoursIn(RequestBody):
    day: Day
    start: HourMinute
    end: HourMinute


class RepPatchIn(RequestBody):
    """Only the fields sent are changed. capacity null removes the cap; working_hours [] means
    always on duty. A rep may change their own away, time_zone and working_hours."""

    away: bool = False
    capacity: int | None = Field(None, ge=0, le=10_000)
    time_zone: Annotated[str, StringConstraints(max_length=64)] = Field("", description="IANA, e.g. Asia/Tehran")
    working_hours: list[WorkingHoursIn] = Field([], max_length=50)

    def to_proto(self, rep_id: str) -> tuple[routing_pb2.Rep, list[str]]:
        rep = routing_pb2.Rep(
            id=rep_id,
            away=self.away,
            time_zone=self.time_zone,
            working_hours=[routing_pb2.WorkingHours(day=h.day, start=h.start, end=h.end) for h in self.working_hours],
        )
        if self.capacity is not None:
            rep.capacity = self.capacity
        return rep, sorted(self.model_fields_set)


class WorkingHours(BaseModel):
    day: str
    start: str
    end: str


class Rep(BaseModel):
    id: str
    name: str
    team_id: str
    active: bool
    away: bool
    capacity: int | None
    time_zone: str
    working_hours: list[WorkingHours]
    open_leads: int
    available: bool
    unavailable_reason: str


class RepList(BaseModel):
    reps: list[Rep]


def rep_model(rep: routing_pb2.Rep) -> Rep:
    values = message_to_dict(rep)
    values["capacity"] = rep.capacity if rep.HasField("capacity") else None
    return Rep.model_validate(values)


class CandidateConsidered(BaseModel):
    rep_id: str
    open_leads: int
    skip_reason: str


class RuleConsidered(BaseModel):
    rule_id: str
    strategy: str
    team_id: str
    turn: int
    picked_rep_id: str
    candidates: list[CandidateConsidered]


class RoutingExplanation(BaseModel):
    outcome: str
    rules: list[RuleConsidered]


class RoutedLead(Lead):
    """A lead with why it went where it went."""

    routing_explanation: RoutingExplanation | None


def routed_lead(lead: leads_pb2.Lead) -> RoutedLead:
    return RoutedLead.model_validate(message_to_dict(lead))


class RoutedLeadList(BaseModel):
    leads: list[RoutedLead]
    next_page_token: str


class AssignLeadIn(RequestBody):
    rep_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class SlaBreach(BaseModel):
    id: str
    lead_id: str
    rep_id: str
    team_id: str
    rule_id: str
    source: str
    due_time: datetime | None
    breach_time: datetime | None
    action: str
    new_rep_id: str
    manager_id: str


class SlaBreachList(BaseModel):
    sla_breaches: list[SlaBreach]
    next_page_token: str


class WorkItem(BaseModel):
    lead: RoutedLead
    seconds_left: int = Field(description="To the first-response deadline; negative: overdue; 0: no clock")
    has_deadline: bool
    responded: bool


class WorkList(BaseModel):
    items: list[WorkItem]
    next_page_token: str
