"""Request and response bodies of /routing-rules (the ordered rule set routing leads to reps)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm.leads.v1 import routing_pb2
from crm_gateway.convert import STRIPPED, RequestBody

Name = Annotated[str, StringConstraints(max_length=200), STRIPPED]
Id = Annotated[str, StringConstraints(max_length=64), STRIPPED]
Item = Annotated[str, StringConstraints(max_length=100), STRIPPED]
Strategy = Literal["round_robin", "least_loaded", "named_rep"]
BreachAction = Literal["reassign", "escalate"]


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
