"""Request and response bodies of /pipelines (a sales process: its ordered stages, each with a
probability, the deal fields required to enter it and a won/lost meaning)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints

from crm.sales.v1 import pipelines_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, RequestBody, enum_value
from crm_gateway.features.deals.schemas import Deal

PipelineName = Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK]
ProductLine = Annotated[str, StringConstraints(max_length=100), STRIPPED]
StageName = Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]
StageOutcome = Literal["open", "won", "lost"]
ForecastCategory = Literal["pipeline", "best_case", "commit", "omitted", "closed"]
RequiredField = Literal["title", "expected_close_date", "amount"]


class StageIn(RequestBody):
    """Strict numbers and booleans: 1.0, "60" or 0 for false are a 422, not quietly converted."""

    name: StageName
    probability: StrictInt = Field(ge=0, le=100, description="The chance a deal here is won; won 100, lost 0")
    required_fields: list[RequiredField] = Field([], max_length=3, description="To enter this open stage")
    outcome: StageOutcome = "open"
    forecast_category: ForecastCategory | None = Field(
        None,
        description="Where the forecast counts the stage's open deals (won: closed, lost: omitted); null keeps a"
        " kept stage's, else from the probability: 80+ commit, 50+ best_case, else pipeline",
    )

    def to_proto(self, stage_id: str = "") -> pipelines_pb2.Stage:
        stage = pipelines_pb2.Stage(
            id=stage_id,
            name=self.name,
            probability=self.probability,
            required_fields=list(self.required_fields),
            outcome=enum_value(pipelines_pb2.StageOutcome, self.outcome),
        )
        if self.forecast_category:
            stage.forecast_category = enum_value(pipelines_pb2.ForecastCategory, self.forecast_category)
        return stage


class StageUpdateIn(StageIn):
    id: Annotated[str, StringConstraints(max_length=100), STRIPPED] = Field(
        "", description="A stage of the pipeline to keep; empty for a new one"
    )


class CreatePipelineIn(RequestBody):
    """Open stages first, then exactly one won and one lost stage."""

    name: PipelineName
    product_line: ProductLine = ""
    active: StrictBool = True
    stages: list[StageIn] = Field(min_length=1, max_length=50)
    request_id: Annotated[str, StringConstraints(max_length=200), STRIPPED] = ""

    def to_proto(self, idempotency_key: str) -> pipelines_pb2.CreatePipelineRequest:
        return pipelines_pb2.CreatePipelineRequest(
            pipeline=pipelines_pb2.Pipeline(
                name=self.name,
                product_line=self.product_line,
                active=self.active,
                stages=[stage.to_proto() for stage in self.stages],
            ),
            request_id=self.request_id or idempotency_key,
        )


class UpdatePipelineIn(RequestBody):
    """Only the fields sent change (they make the update_mask, AIP-134). `stages` replaces the
    ordered list as a whole: a stage sent with its id is kept, one without is new, one left out
    is removed (409 while deals are in it)."""

    name: PipelineName = Field("", description="Not empty")
    product_line: ProductLine = ""
    active: StrictBool = Field(True, description="An inactive pipeline takes no new deals")
    stages: list[StageUpdateIn] = Field([], max_length=50)

    def to_proto(self, pipeline_id: str, etag: str) -> pipelines_pb2.UpdatePipelineRequest:
        return pipelines_pb2.UpdatePipelineRequest(
            pipeline=pipelines_pb2.Pipeline(
                id=pipeline_id,
                name=self.name,
                product_line=self.product_line,
                active=self.active,
                stages=[stage.to_proto(stage.id) for stage in self.stages],
            ),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(self.model_fields_set)),
            etag=etag,
        )


class Stage(BaseModel):
    id: str
    name: str
    probability: int
    required_fields: list[str]
    outcome: Literal["unspecified", "open", "won", "lost"]
    forecast_category: Literal["unspecified", "pipeline", "best_case", "commit", "omitted", "closed"]


class Pipeline(BaseModel):
    id: str
    name: str
    product_line: str
    active: bool
    stages: list[Stage]
    etag: str = Field(description="The ETag header's value: send it back in If-Match")
    create_time: datetime | None
    update_time: datetime | None


class PipelineList(BaseModel):
    pipelines: list[Pipeline]
    next_page_token: str


class StageAmount(BaseModel):
    currency_code: str
    deal_count: int
    amount_minor: int = Field(description="The deals' amounts (a won deal's: its total)")
    weighted_amount_minor: int = Field(description="Sum of amount x the stage's probability / 100, rounded half up")


class BoardStage(BaseModel):
    stage: Stage
    deal_count: int = Field(description="Won and lost stages: deals closed since the board's close_time_from")
    amounts: list[StageAmount] = Field(description="Per currency; deals without an amount are in deal_count only")
    deals: list[Deal]
    next_page_token: str = Field(
        description="GET /deals with this pipeline_id and stage_id, the board's owner filters, order_by and (won or"
        " lost stage) close_time_from, and this page_token lists the stage's next deals; empty when all are listed"
    )
    order_by: str = Field(description="The order of deals: expected_close_date, or close_time desc (won, lost)")


class PipelineBoard(BaseModel):
    stages: list[BoardStage]
    close_time_from: datetime | None = Field(description="The won and lost stages hold deals closed since then")
