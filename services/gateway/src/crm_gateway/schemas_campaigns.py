"""Request and response bodies of the sources, campaigns and lead-import routes, and their
conversion from and to protobuf. Conventions as in crm_gateway.schemas."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, BeforeValidator, Field, StrictInt, StringConstraints

from crm.common.v1 import types_pb2
from crm.leads.v1 import campaigns_pb2
from crm_gateway.schemas import RequestBody
from crm_kit import protoconv

SourceCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{1,49}$")]
CampaignName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _iso_date(value: Any) -> Any:
    """Only "YYYY-MM-DD" text (or a date) is a date here: pydantic would also read a number."""
    if not isinstance(value, date | str) or (isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


# Dates a campaign may run on: anything else is a typo.
CampaignDate = Annotated[date, BeforeValidator(_iso_date), Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]


class CampaignMoneyIn(RequestBody):
    """Integer minor units (a JSON integer: not true, 1.0 or "1") and an ISO 4217 code."""

    amount_minor: StrictInt = Field(ge=0, le=2**63 - 1, description="Integer minor units (agorot, cents)")
    currency_code: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. ILS")

    def to_proto(self) -> types_pb2.Money:
        return types_pb2.Money(amount_minor=self.amount_minor, currency_code=self.currency_code)


def _money(value: CampaignMoneyIn | None) -> types_pb2.Money | None:
    return value.to_proto() if value is not None else None


class CreateSourceIn(RequestBody):
    code: SourceCode = Field(description="[a-z][a-z0-9_]{1,49}, e.g. podcast")
    display_name: DisplayName

    def to_proto(self) -> campaigns_pb2.CreateSourceRequest:
        return campaigns_pb2.CreateSourceRequest(code=self.code, display_name=self.display_name)


class CreateCampaignIn(RequestBody):
    source: SourceCode
    name: CampaignName
    starts_on: CampaignDate | None = None
    ends_on: CampaignDate | None = None
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
    starts_on: CampaignDate | None = None
    ends_on: CampaignDate | None = None
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


class CreatedSource(BaseModel):
    code: str
    display_name: str
    built_in: bool
    active: bool
    create_time: datetime | None


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
