"""Response bodies of /reports (leads, deals, revenue and cost per source and per campaign; targets
vs actual)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from crm_gateway.convert import Money
from crm_gateway.features.campaigns.schemas import CampaignMoney
from crm_gateway.features.targets.schemas import Target


class SourceReportRow(BaseModel):
    source: str
    leads: int
    won_deals: int
    lost_deals: int
    revenue: list[Money]
    # What the source's campaigns cost (their actual cost, per currency; GET /reports/campaigns
    # has cost per lead and return per campaign).
    cost: list[Money]
    tickets: int = Field(description="tickets opened in the period by customers whose first lead came from the source")
    complaints: int = Field(description="of those tickets, complaints")


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


AttributionModel = Literal["first", "last", "linear", "u_shaped", "w_shaped", "full_path", "time_decay", "markov"]


class AttributionCredit(BaseModel):
    model: str
    deals: float = Field(description="won deals credited to the row (fractions under shared models)")
    revenue: list[Money]
    cost_per_deal: list[Money] = Field(description="the row's cost per credited deal, per cost currency")
    return_on_cost: float = Field(description="credited revenue per unit of cost (0 without a cost)")


class AttributionRow(BaseModel):
    key: str = Field(description="the source code, or the campaign id ('' for touches without one)")
    name: str
    cost: list[Money]
    credits: list[AttributionCredit]


class UnavailableModel(BaseModel):
    model: str
    reason: str


class AttributionReport(BaseModel):
    rows: list[AttributionRow]
    # A model that cannot answer (the data-driven one with too little history) and why.
    unavailable: list[UnavailableModel]
    journeys: int
    conversions: int


class ReportPeriod(BaseModel):
    """The period's bounds: its local days in the company's time zone and the instants they span."""

    kind: Literal["unspecified", "month", "quarter", "year"]
    start_date: date | None = Field(description="The period's first day")
    end_date: date | None = Field(description="The period's last day (inclusive)")
    start_time: datetime | None = Field(description="Local midnight of the first day")
    end_time: datetime | None = Field(description="Local midnight after the last day (exclusive)")
    time_zone: str = Field(description="The company's time zone (IANA)")
    elapsed_fraction: float = Field(description="How much of the period has passed: 0 before, 1 after")


class TargetReportRow(BaseModel):
    target: Target
    actual_amount: Money | None = Field(description="won_amount: won deals in the target's currency")
    actual_count: int = Field(description="won_deals, leads: the count so far")
    achieved_percent: float = Field(description="actual / target x 100, 2 decimals")
    projected_amount: Money | None = Field(description="won_amount: the run rate to the period's end")
    projected_count: int = Field(description="won_deals, leads: the run rate to the period's end")
    other_currencies: list[Money] = Field(description="won_amount: won in other currencies, not counted")


class TargetReport(BaseModel):
    period: ReportPeriod
    rows: list[TargetReportRow]


class CrossSellReportRow(BaseModel):
    sku: str
    name: str
    offers: int
    accepted: int
    declined: int
    # Offers after which the customer bought the product within window_days.
    bought_after: int


class CrossSellReport(BaseModel):
    """Per offered product, the offers made in the period: the customers' answers, and the offers
    followed by a purchase of it (most offered first)."""

    window_days: int
    rows: list[CrossSellReportRow]


class SpeedBand(BaseModel):
    # under_5_minutes, 5_to_30_minutes, 30_minutes_to_2_hours, 2_to_24_hours, over_a_day, no_response
    band: str
    leads: int
    # Leads with a deal won; lost: leads whose every closed deal was lost.
    won: int
    lost: int
    # won / (won + lost); null without decided leads.
    win_rate: float | None
    median_seconds: float


class SpeedToLeadReport(BaseModel):
    """Leads captured in the period per band of time to a rep's first response, and how they ended:
    what answering faster is worth."""

    bands: list[SpeedBand]


class FunnelStage(BaseModel):
    id: str
    name: str


class FunnelRow(BaseModel):
    # The source, campaign or owner rep ("" when not grouped, or unknown).
    group: str
    # Per stage: the deals that reached it (entered it or a later one).
    reached: list[int]


class FunnelReport(BaseModel):
    """The pipeline's deals opened in the period: how many reached each stage, first to won."""

    pipeline_id: str
    stages: list[FunnelStage]
    rows: list[FunnelRow]
    total: FunnelRow


class CustomerValue(BaseModel):
    """What a customer is worth: RFM quintile scores among every buyer (5: the most recent, most
    frequent, highest-spending fifth) with the named segment, and lifetime value to date and per
    year. status no_purchases (never bought) or too_few_buyers (under 20 buyers: no quintiles yet)."""

    customer_id: str
    status: Literal["scored", "no_purchases", "too_few_buyers"]
    recency: int
    frequency: int
    monetary: int
    # champions, loyal, cannot_lose, at_risk, potential_loyalist, new, promising, needs_attention,
    # about_to_sleep, hibernating, lost or others; "" unless scored.
    segment: str
    recency_days: int
    purchases: int
    lifetime_value: Money | None
    yearly_value: Money | None
    first_purchase_time: datetime | None
    last_purchase_time: datetime | None


class CustomerValueOne(BaseModel):
    value: CustomerValue
    # The buyers the quintiles are cut from.
    buyers: int


class SegmentFigures(BaseModel):
    segment: str
    customers: int
    value: Money | None


class CustomerValueReport(BaseModel):
    """The buyers the caller sees per RFM segment, and the most valuable first."""

    status: Literal["scored", "too_few_buyers"]
    buyers: int
    segments: list[SegmentFigures]
    top: list[CustomerValue]
