"""Request and response bodies of /campaigns (budgets and costs in integer minor units)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, Field, StrictInt, StringConstraints

from crm.common.v1 import types_pb2
from crm.leads.v1 import campaigns_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, IsoDate, RequestBody
from crm_gateway.features.sources.schemas import SourceCode
from crm_kit import protoconv

CampaignName = Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]


class CampaignMoneyIn(RequestBody):
    """Integer minor units (a JSON integer: not true, 1.0 or "1") and an ISO 4217 code."""

    amount_minor: StrictInt = Field(ge=0, le=2**63 - 1, description="Integer minor units (agorot, cents)")
    currency_code: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. ILS")

    def to_proto(self) -> types_pb2.Money:
        return types_pb2.Money(amount_minor=self.amount_minor, currency_code=self.currency_code)


def _money(value: CampaignMoneyIn | None) -> types_pb2.Money | None:
    return value.to_proto() if value is not None else None


class CreateCampaignIn(RequestBody):
    source: SourceCode
    name: CampaignName
    starts_on: IsoDate | None = None
    ends_on: IsoDate | None = None
    budget: CampaignMoneyIn | None = None
    actual_cost: CampaignMoneyIn | None = None

    def to_proto(self) -> campaigns_pb2.CreateCampaignRequest:
        return campaigns_pb2.CreateCampaignRequest(
            source=self.source,
            name=self.name,
            starts_on=protoconv.to_date(self.starts_on),
            ends_on=protoconv.to_date(self.ends_on),
            budget=_money(self.budget),
            actual_cost=_money(self.actual_cost),
        )


class UpdateCampaignIn(RequestBody):
    """Only the fields present change (they make the update_mask, AIP-134); null clears a date."""

    name: CampaignName | None = None
    starts_on: IsoDate | None = None
    ends_on: IsoDate | None = None
    budget: CampaignMoneyIn | None = None
    actual_cost: CampaignMoneyIn | None = None

    def to_proto(self, campaign_id: str) -> campaigns_pb2.UpdateCampaignRequest:
        paths = sorted(self.model_fields_set)
        return campaigns_pb2.UpdateCampaignRequest(
            campaign=campaigns_pb2.Campaign(
                id=campaign_id,
                name=self.name or "",
                starts_on=protoconv.to_date(self.starts_on),
                ends_on=protoconv.to_date(self.ends_on),
                budget=_money(self.budget),
                actual_cost=_money(self.actual_cost),
            ),
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        )


class CampaignMoney(BaseModel):
    amount_minor: int
    currency_code: str


class Campaign(BaseModel):
    id: str
    source: str
    name: str
    starts_on: date | None
    ends_on: date | None
    budget: CampaignMoney | None
    actual_cost: CampaignMoney | None
    create_time: datetime | None
    update_time: datetime | None


class CampaignList(BaseModel):
    campaigns: list[Campaign]
    next_page_token: str
