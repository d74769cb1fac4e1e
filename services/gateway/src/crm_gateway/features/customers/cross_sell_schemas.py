"""Cross-sell suggestions on a customer's page and the offers made of them (reporting's
association rules; docs/analytics.md, "Cross-sell and upsell")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

CrossSellResponse = Literal["accepted", "declined"]


class CrossSellOffer(BaseModel):
    id: str
    customer_id: str
    sku: str
    response: CrossSellResponse
    offer_time: datetime
    # Who recorded it.
    user_id: str
    # The rule that suggested it when offered ("" when none did), and its confidence then.
    antecedent_sku: str
    confidence: float


class ProductSuggestion(BaseModel):
    sku: str
    # The product's name as its latest sale described it.
    name: str
    # What the customer bought that suggests it, and when they last bought it.
    because_sku: str
    because_name: str
    because_bought_time: datetime
    # Of the buyers of because_sku, the share who also bought sku (0.31: "31 % of such
    # customers"); how many times likelier that is than for any buyer; and the share of all
    # buyers who bought both.
    confidence: float
    lift: float
    support: float
    buyers_of_both: int
    buyers_of_because: int
    # The latest offer of it to this customer; null when never offered.
    last_offer: CrossSellOffer | None


class CrossSellModel(BaseModel):
    train_time: datetime | None
    # Buyers the rules were learned from and the minimum needed; the rules, each from at least
    # min_buyers_of_both buyers of both products.
    buyers: int
    needed_buyers: int
    rules: int
    min_buyers_of_both: int


class ProductSuggestions(BaseModel):
    """Products the customer has not bought that buyers of what they bought also bought, each with
    its reason, strongest first (at most 5)."""

    customer_id: str
    # too_little_data: fewer buyers than model.needed_buyers; no suggestions.
    status: Literal["suggested", "too_little_data"]
    suggestions: list[ProductSuggestion]
    model: CrossSellModel


class CrossSellOfferIn(BaseModel):
    """A suggestion offered to the customer, and their answer."""

    sku: str = Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")
    response: CrossSellResponse
    # Repeating the request with the same id answers the first record (or send Idempotency-Key).
    request_id: str = Field(default="", max_length=200)
