"""Response body of /my-leads (a rep's work list)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from crm_gateway.features.leads.schemas import RoutedLead


class WorkItem(BaseModel):
    lead: RoutedLead
    seconds_left: int = Field(description="To the first-response deadline; negative: overdue; 0: no clock")
    has_deadline: bool
    responded: bool


class WorkList(BaseModel):
    items: list[WorkItem]
    next_page_token: str
