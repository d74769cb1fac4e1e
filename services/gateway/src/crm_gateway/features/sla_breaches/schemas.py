"""Response body of /sla-breaches."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
