"""Response body of /reports/forecast (the weighted pipeline per owner, team, pipeline or month)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ForecastGroupBy = Literal["owner_rep", "owner_team", "pipeline", "month"]


class ForecastRow(BaseModel):
    group: str = Field(
        description="A rep id, team id, pipeline id or month (YYYY-MM, the company's calendar); empty for deals "
        "without one"
    )
    currency_code: str = Field(description="Empty for open deals without an amount (counted in open_deals only)")
    open_deals: int = Field(description="Open deals in stages that are not omitted")
    pipeline_amount_minor: int
    weighted_amount_minor: int = Field(description="Sum of amount x stage probability / 100, rounded half up")
    best_case_amount_minor: int = Field(description="Open deals in best_case and commit stages")
    commit_amount_minor: int = Field(description="Open deals in commit stages")
    won_deals: int
    closed_won_amount_minor: int = Field(description="What the won deals sold")


class Forecast(BaseModel):
    rows: list[ForecastRow] = Field(description="By group, then currency; amounts never add up across currencies")
