"""Response bodies of /lead-imports (the upload's body is the CSV file itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ImportMode = Literal["all_or_nothing", "skip_invalid"]


class LeadImportError(BaseModel):
    row_number: int = Field(description="1-based, after the header row; 0 for the whole file")
    line_number: int = Field(description="the physical line the row starts on")
    field: str
    message: str


class LeadImport(BaseModel):
    id: str
    source: str
    campaign_id: str
    campaign: str
    file_name: str
    mode: Literal["unspecified", "all_or_nothing", "skip_invalid"]
    status: Literal["unspecified", "validating", "importing", "completed", "rejected"]
    rows_read: int
    rows_valid: int
    rows_imported: int
    duplicates: int
    error_count: int = Field(description="all errors; `errors` holds the first 1,000")
    errors: list[LeadImportError]
    reject_reason: str
    create_actor: str
    create_time: datetime | None
    update_time: datetime | None
    complete_time: datetime | None


class LeadImportList(BaseModel):
    lead_imports: list[LeadImport]
    next_page_token: str
