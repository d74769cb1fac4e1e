"""Response bodies of /lost-reasons."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LostReason(BaseModel):
    code: str = Field(description="What POST /deals/{deal_id}/close takes as lost_reason_code")
    names: dict[str, str] = Field(description="Display names by language: he, en, fa")


class LostReasonList(BaseModel):
    lost_reasons: list[LostReason]
