"""Retention call lists and customers' risk of leaving (reporting's RetentionService;
docs/architecture.md, "At-risk customers and retention lists")."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt

from crm_gateway.convert import Money

RiskSignal = Literal[
    "no_purchase",
    "fewer_purchases",
    "smaller_purchases",
    "complaints",
    "sla_breaches",
    "opted_out",
    "no_contact",
    "lost_deals",
]
Band = Literal["low", "medium", "high"]
RetentionResponse = Literal["reached", "offer_accepted", "declined", "unreachable", "churned"]


class RiskReason(BaseModel):
    signal: RiskSignal
    # Its share of the risk, out of 100.
    points: int
    # The figure behind it: days (no_purchase, no_contact) or a count.
    value: float


class CalibrationBin(BaseModel):
    predicted: float
    observed: float
    customers: int


class ChurnValidation(BaseModel):
    """How the learned model did on the later window it was validated on."""

    train_time: datetime | None
    customers: int
    churned: int
    # Area under the ROC curve (0.5 is chance).
    auc: float
    # The churn rate among the riskiest 10 % over the base rate.
    top_decile_lift: float
    brier: float
    # Predicted against observed churn, per fifth of customers by predicted risk.
    calibration: builtins.list[CalibrationBin]
    # Days without a purchase after a moment that count as having left.
    window_days: int


class CustomerRisk(BaseModel):
    """How likely the customer is to leave, and why (largest reason first)."""

    customer_id: str
    # no_purchases: the customer never bought, so has nothing to leave; no risk.
    status: Literal["scored", "no_purchases"]
    risk: float
    band: Band | None
    reasons: list[RiskReason]
    # logistic_regression: the learned model, with its validation; rules: the documented
    # rule-based score while the history is too short for the model (fallback_reason says why).
    model: Literal["logistic_regression", "rules"]
    fallback_reason: str
    validation: ChurnValidation | None


class RetentionList(BaseModel):
    id: str
    name: str
    # The team it was made for ("" for the whole company).
    team_id: str
    threshold: float
    control_share: float
    # Customers to call, and held out uncalled.
    called: int
    control: int
    created_by: str
    create_time: datetime
    # What scored its customers.
    model: Literal["logistic_regression", "rules"]


class RetentionEntry(BaseModel):
    customer_id: str
    # Who calls ("" in the control group).
    rep_id: str
    control: bool
    risk: float
    band: Band
    reasons: list[RiskReason]
    # service_recovery, cross_sell:<sku>, win_back_discount or loyalty_check_in.
    offer: str
    # The latest answer ("" none yet).
    response: RetentionResponse | Literal[""]
    response_time: datetime | None
    position: int


class RetentionListDetail(BaseModel):
    """A list and the entries the caller may see (a rep: their own calls)."""

    list: RetentionList
    entries: builtins.list[RetentionEntry]


class RetentionLists(BaseModel):
    lists: list[RetentionList]


class RetentionListIn(BaseModel):
    """This week's call list: the customers at or above `threshold`, highest risk first. Strict
    numbers: "0.5" or false is a 422, not quietly converted."""

    name: str = Field(default="", max_length=200)
    threshold: StrictFloat = Field(default=0.6, ge=0.01, le=1)
    # The share held out at random as the control group (never called).
    control_share: StrictFloat = Field(default=0.1, ge=0, le=0.5)
    max_entries: StrictInt = Field(default=500, ge=1, le=5000)
    # An admin's list for one team ("": every customer); a manager's is always their team's.
    team_id: str = Field(default="", max_length=64)
    request_id: str = Field(default="", max_length=200)


class RetentionResponseIn(BaseModel):
    response: RetentionResponse


class RetentionGroup(BaseModel):
    group: Literal["called", "control"]
    customers: int
    # Answers recorded per kind (the called group only).
    responses: dict[str, int]
    # Customers who won a deal after the list was made, and that revenue.
    buyers: int
    revenue: list[Money]
    revenue_per_customer: list[Money]


class RetentionReport(BaseModel):
    """What the list brought: the called group against the control group held out."""

    list: RetentionList
    groups: builtins.list[RetentionGroup]
    # (called revenue per customer − control revenue per customer) × customers called.
    retained_revenue: builtins.list[Money]
