"""Response bodies of /audience-lists (the upload's body is the CSV file itself)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AudienceListError(BaseModel):
    line_number: int = Field(description="the file's line; the header is line 1")
    field: str = Field(description="customer_id, phone_number or email")
    message: str


class AudienceList(BaseModel):
    id: str
    name: str
    members: int = Field(description="distinct customers the lines matched")
    lines: int = Field(description="lines read, the header and blank lines not counted")
    error_count: int = Field(description="lines that matched no customer or could not be read")
    errors: list[AudienceListError] = Field(description="the first 1,000; empty in a list of lists")
    created_by: str
    create_time: datetime | None


class AudienceListPage(BaseModel):
    lists: list[AudienceList]
    next_page_token: str
