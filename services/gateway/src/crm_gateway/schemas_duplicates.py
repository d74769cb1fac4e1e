"""Request and response bodies of the duplicates routes (possible duplicates, merges, incomplete
records); conversion through crm_gateway.schemas' helpers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from crm_gateway.schemas import Customer, Lead, RequestBody

RecordId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class MergeLeadsIn(RequestBody):
    """The lead to merge into the one in the path (which survives)."""

    duplicate_lead_id: RecordId


class MergeCustomersIn(RequestBody):
    """The customer to merge into the one in the path (which survives)."""

    duplicate_customer_id: RecordId


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


class MergedCustomer(Customer):
    """The surviving customer; merged_into_customer_id is empty on it."""

    merged_into_customer_id: str
