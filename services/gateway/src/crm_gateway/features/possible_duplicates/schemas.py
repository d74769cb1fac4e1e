"""Response bodies of /possible-duplicates (pairs of leads that may be one person)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from crm_gateway.features.leads.schemas import Lead


class PossibleDuplicate(BaseModel):
    id: str
    lead: Lead | None
    other_lead: Lead | None
    score: int
    reasons: list[str]
    status: Literal["unspecified", "open", "merged", "dismissed"]
    create_time: datetime | None
    resolve_time: datetime | None
    resolved_by: str


class PossibleDuplicateList(BaseModel):
    possible_duplicates: list[PossibleDuplicate]
    next_page_token: str
