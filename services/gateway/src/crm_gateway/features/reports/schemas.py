"""Response bodies of /reports (leads, deals, revenue and cost per source and per campaign)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from crm_gateway.convert import Money
from crm_gateway.features.campaigns.schemas import CampaignMoney


class SourceReportRow(BaseModel):
    source: str
    leads: int
    won_deals: int
    lost_deals: int
    revenue: list[Money]
    # What the source's campaigns cost (their actual cost, per currency; GET /reports/campaigns
    # has cost per lead and return per campaign).
    cost: list[Money]


class SourceReport(BaseModel):
    rows: list[SourceReportRow]


class CampaignReportRow(BaseModel):
    campaign_id: str
    source: str
    name: str
    budget: CampaignMoney | None
    cost: CampaignMoney | None = Field(description="the campaign's actual cost (whole campaign)")
    leads: int
    won_deals: int
    lost_deals: int
    revenue: list[CampaignMoney] = Field(description="won deals' revenue per currency")
    cost_per_lead: CampaignMoney | None = Field(description="null without leads or without a cost")
    return_on_cost: float = Field(description="revenue in the cost's currency / cost; 0 without a cost")


class CampaignReport(BaseModel):
    rows: list[CampaignReportRow]
