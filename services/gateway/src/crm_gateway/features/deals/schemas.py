"""Request and response bodies of /deals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, Field, StringConstraints

from crm.sales.v1 import deals_pb2
from crm_gateway.convert import (
    NOT_BLANK,
    STRIPPED,
    IsoDate,
    LineItem,
    LineItemIn,
    Money,
    MoneyIn,
    RequestBody,
    RequiredText,
    enum_value,
)
from crm_kit import protoconv

StageId = Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]
LostReasonCode = Annotated[str, StringConstraints(max_length=64), STRIPPED]


class CloseDealIn(RequestBody):
    outcome: Literal["won", "lost"]
    items: list[LineItemIn] = Field(default_factory=list, max_length=500)
    lost_reason: Annotated[str, StringConstraints(max_length=500), STRIPPED] = ""
    lost_reason_code: LostReasonCode = Field("", description="When lost: a code of GET /lost-reasons")

    def to_proto(self, deal_id: str, etag: str = "") -> deals_pb2.CloseDealRequest:
        return deals_pb2.CloseDealRequest(
            deal_id=deal_id,
            outcome=enum_value(deals_pb2.DealOutcome, self.outcome),
            items=[item.to_proto() for item in self.items],
            lost_reason=self.lost_reason,
            lost_reason_code=self.lost_reason_code,
            etag=etag,
        )


class MoveDealStageIn(RequestBody):
    stage_id: StageId = Field(description="An open stage of the deal's pipeline")


class UpdateDealIn(RequestBody):
    """Only the fields sent change (they make the update_mask, AIP-134); null clears the expected
    close date or the amount (unless the deal's stage requires it: 409 naming it)."""

    title: RequiredText = Field("", description="Not empty")
    expected_close_date: IsoDate | None = None
    amount: MoneyIn | None = None

    def to_proto(self, deal_id: str, etag: str) -> deals_pb2.UpdateDealRequest:
        return deals_pb2.UpdateDealRequest(
            deal=deals_pb2.Deal(
                id=deal_id,
                title=self.title,
                expected_close_date=protoconv.to_date(self.expected_close_date),
                amount=self.amount.to_proto() if self.amount else None,
            ),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(self.model_fields_set)),
            etag=etag,
        )


class Deal(BaseModel):
    id: str
    lead_id: str
    title: str
    owner_rep_id: str
    status: Literal["unspecified", "open", "won", "lost"]
    items: list[LineItem]
    total: Money | None
    create_time: datetime | None
    close_time: datetime | None
    lost_reason: str
    owner_team_id: str
    pipeline_id: str
    stage_id: str
    stage_enter_time: datetime | None
    expected_close_date: date | None
    amount: Money | None
    probability: int = Field(description="The stage's chance (0-100) that the deal is won")
    etag: str = Field(description="The ETag header's value: send it back in If-Match")
    lost_reason_code: str


class DealStageHistoryEntry(BaseModel):
    from_stage_id: str = Field(description="Empty for the deal's first stage")
    to_stage_id: str
    actor: str
    move_time: datetime | None
    seconds_in_previous_stage: int


class DealStageHistory(BaseModel):
    entries: list[DealStageHistoryEntry]


class DealList(BaseModel):
    deals: list[Deal]
    next_page_token: str = Field(description="Empty on the last page; send it back with the same filters and order_by")


DealOrderBy = Literal["expected_close_date", "create_time desc", "close_time desc"]
