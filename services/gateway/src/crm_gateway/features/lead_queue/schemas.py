"""Response body of /lead-queue."""

from __future__ import annotations

from pydantic import BaseModel

from crm_gateway.features.leads.schemas import RoutedLead


class RoutedLeadList(BaseModel):
    leads: list[RoutedLead]
    next_page_token: str
