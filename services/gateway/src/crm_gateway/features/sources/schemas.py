"""Request and response bodies of /sources (the catalogue of lead sources)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from crm.leads.v1 import campaigns_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, RequestBody

SourceCode = Annotated[str, StringConstraints(pattern=r"^\s*[a-z][a-z0-9_]{1,49}\s*$", max_length=60), STRIPPED]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]


class CreateSourceIn(RequestBody):
    code: SourceCode = Field(description="[a-z][a-z0-9_]{1,49}, e.g. podcast")
    display_name: DisplayName

    def to_proto(self) -> campaigns_pb2.CreateSourceRequest:
        return campaigns_pb2.CreateSourceRequest(code=self.code, display_name=self.display_name)


class Source(BaseModel):
    code: str
    display_name: str


class SourceList(BaseModel):
    sources: list[Source]


class CreatedSource(BaseModel):
    code: str
    display_name: str
    built_in: bool
    active: bool
    create_time: datetime | None
