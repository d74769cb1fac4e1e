"""Request and response bodies of /targets (a sales target per rep, team, source or product line,
period and metric) — also the rows of GET /reports/targets."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, Field, StrictInt, StringConstraints

from crm.reporting.v1 import targets_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, IsoDate, Money, MoneyIn, RequestBody, enum_value
from crm_kit.protoconv import to_date

SubjectKind = Literal["rep", "team", "source", "product_line"]
PeriodKind = Literal["month", "quarter", "year"]
Metric = Literal["won_amount", "won_deals", "leads"]
SubjectId = Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]
TargetCount = Annotated[StrictInt, Field(ge=1, le=1_000_000_000)]


class TargetIn(RequestBody):
    """One target per subject, period and metric (a second is 409 naming the first). won_amount
    takes `amount`, won_deals and leads take `count`."""

    subject_kind: SubjectKind
    subject_id: SubjectId = Field(description="A rep or team id, a source code or a product line")
    period_kind: PeriodKind
    period_start: IsoDate = Field(description="Any day of the period; the target is the period's that contains it")
    metric: Metric
    amount: MoneyIn | None = Field(None, description="won_amount: the amount to win (minor units)")
    count: TargetCount | None = Field(None, description="won_deals, leads: how many")
    request_id: Annotated[str, StringConstraints(max_length=200), STRIPPED] = ""

    def to_proto(self, idempotency_key: str) -> targets_pb2.CreateTargetRequest:
        return targets_pb2.CreateTargetRequest(
            target=targets_pb2.Target(
                subject_kind=enum_value(targets_pb2.TargetSubjectKind, self.subject_kind),
                subject_id=self.subject_id,
                period_kind=enum_value(targets_pb2.PeriodKind, self.period_kind),
                period_start=to_date(self.period_start),
                metric=enum_value(targets_pb2.TargetMetric, self.metric),
                amount=self.amount.to_proto() if self.amount else None,
                count=self.count or 0,
            ),
            request_id=self.request_id or idempotency_key,
        )


class TargetPatchIn(RequestBody):
    """The new value: `amount` for a won_amount target, `count` for the others. A target's subject,
    period and metric are what it is: to change them, delete it and create another."""

    amount: MoneyIn | None = None
    count: TargetCount | None = None

    def to_proto(self, target_id: str) -> targets_pb2.UpdateTargetRequest:
        return targets_pb2.UpdateTargetRequest(
            target=targets_pb2.Target(
                id=target_id, amount=self.amount.to_proto() if self.amount else None, count=self.count or 0
            ),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(self.model_fields_set)),
        )


class Target(BaseModel):
    id: str
    subject_kind: Literal["unspecified", "rep", "team", "source", "product_line"]
    subject_id: str
    period_kind: Literal["unspecified", "month", "quarter", "year"]
    period_start: date | None = Field(description="The period's first day in the company's time zone")
    metric: Literal["unspecified", "won_amount", "won_deals", "leads"]
    amount: Money | None = Field(description="won_amount targets; null for the counts")
    count: int = Field(description="won_deals and leads targets; 0 for won_amount")
    create_time: datetime | None
    update_time: datetime | None


class TargetList(BaseModel):
    targets: list[Target]
    next_page_token: str
