"""Request and response bodies of /deals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm.sales.v1 import deals_pb2
from crm_gateway.convert import LineItem, LineItemIn, Money, RequestBody, enum_value


class CloseDealIn(RequestBody):
    outcome: Literal["won", "lost"]
    items: list[LineItemIn] = Field(default_factory=list, max_length=500)
    lost_reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""

    def to_proto(self, deal_id: str) -> deals_pb2.CloseDealRequest:
        return deals_pb2.CloseDealRequest(
            deal_id=deal_id,
            outcome=enum_value(deals_pb2.DealOutcome, self.outcome),
            items=[item.to_proto() for item in self.items],
            lost_reason=self.lost_reason,
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
