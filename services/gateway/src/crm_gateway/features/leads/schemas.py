"""Request and response bodies of /leads (capture, list, read, convert, merge, assign, routing)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from crm.leads.v1 import leads_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, Code, Locale, RecordId, RequestBody, RequiredText, ShortText


def _no_stub_phone(value: str) -> str:
    """Empty (an e-mail is given instead) or at least 3 characters: "1" is named here with the
    other bad fields; whether a number is a real one is the leads service's check."""
    if 0 < len(value) < 3:
        raise ValueError("String should have at least 3 characters")
    return value


PhoneNumber = Annotated[str, StringConstraints(max_length=32), STRIPPED, AfterValidator(_no_stub_phone)]
Email = Annotated[str, StringConstraints(max_length=254), STRIPPED]
CONTACT_REQUIRED = "a phone number or an e-mail address is required (at least one)"


class LeadContactBody(RequestBody):
    """A body that brings a person in: it needs a phone number or an e-mail address, at least one
    (an e-mail enquiry has no number). Both are named in the 422 with every other bad field, so a
    client fixes all in one go; the leads service holds the same rule for imports (and checks
    that a number is a possible one of its country)."""

    @model_validator(mode="wrap")
    @classmethod
    def _phone_or_email(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        errors: list[InitErrorDetails] = []
        model = None
        try:
            model = handler(data)
        except ValidationError as exc:
            errors = [
                InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"], input=e["input"])
                for e in exc.errors()
            ]
        if isinstance(data, dict) and not any(str(data.get(f) or "").strip() for f in ("phone_number", "email")):
            required = PydanticCustomError("contact_required", CONTACT_REQUIRED)
            errors += [InitErrorDetails(type=required, loc=(name,), input="") for name in ("phone_number", "email")]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return model


class CaptureLeadIn(LeadContactBody):
    full_name: RequiredText
    phone_number: PhoneNumber = ""
    email: Email = ""
    source: Code
    campaign: ShortText = ""
    locale: Locale = "he-IL"
    product_line: Annotated[str, StringConstraints(max_length=64), STRIPPED] = ""
    request_id: Annotated[str, StringConstraints(max_length=200), STRIPPED] = ""
    city: Annotated[str, StringConstraints(max_length=100), STRIPPED] = ""
    region: Annotated[str, StringConstraints(max_length=100), STRIPPED] = ""

    def to_proto(
        self, idempotency_key: str = "", reach: leads_pb2.LeadReach | None = None
    ) -> leads_pb2.CaptureLeadRequest:
        return leads_pb2.CaptureLeadRequest(
            caller_reach=reach,
            full_name=self.full_name,
            phone_number=self.phone_number,
            email=self.email,
            source=self.source,
            campaign=self.campaign,
            locale=self.locale,
            product_line=self.product_line,
            request_id=self.request_id or idempotency_key,
            city=self.city,
            region=self.region,
        )


class ConvertLeadIn(RequestBody):
    title: ShortText = ""
    pipeline_id: Annotated[
        str,
        StringConstraints(max_length=64),
        STRIPPED,
        Field(description="The active pipeline the deal opens in; empty for the default pipeline."),
    ] = ""


class MergeLeadsIn(RequestBody):
    """The lead to merge into the one in the path (which survives)."""

    duplicate_lead_id: RecordId


class AssignLeadIn(RequestBody):
    rep_id: Annotated[str, StringConstraints(min_length=1, max_length=64), STRIPPED, NOT_BLANK]


class Assignment(BaseModel):
    rep_id: str
    rep_name: str
    team_id: str
    rule_id: str
    reason: str
    assign_time: datetime | None


class Lead(BaseModel):
    id: str
    full_name: str
    phone_number: str
    email: str
    source: str
    campaign: str
    locale: str
    product_line: str
    status: Literal["unspecified", "new", "converted"]
    assignment: Assignment | None
    deal_id: str
    create_time: datetime | None
    campaign_id: str
    city: str
    region: str
    first_response_due_time: datetime | None
    first_response_time: datetime | None
    sla_breached: bool
    merged_into_lead_id: str
    missing_fields: list[str]
    touch_count: int
    # The SLA: the manager a breach escalated the lead to, how many breaches handed it to another
    # rep, when it first breached (GET /leads/{id}/routing adds the routing explanation).
    escalated_to: str
    sla_reassign_count: int
    sla_breach_time: datetime | None


class CapturedLead(Lead):
    """The captured lead; with duplicate true, the existing lead the capture was attached to
    (only to a caller who may read that lead: see CaptureAttached)."""

    duplicate: bool
    matched_on: str


class CaptureAttached(BaseModel):
    """The person is already a lead the caller may not read: the capture was attached to it as a
    touch, and nothing about that lead (not its id, owner or fields) is in the answer."""

    duplicate: Literal[True] = True


class CaptureReplayed(BaseModel):
    """A repeated request_id whose lead the caller may not read (any more, or ever: marketing
    captures for reps): the lead's id, which the first answer gave, and nothing of its state now."""

    id: str
    duplicate: bool
    replayed: Literal[True] = True


class LeadList(BaseModel):
    leads: list[Lead]
    next_page_token: str


class CandidateConsidered(BaseModel):
    rep_id: str
    open_leads: int
    skip_reason: str


class RuleConsidered(BaseModel):
    rule_id: str
    strategy: str
    team_id: str
    turn: int
    picked_rep_id: str
    candidates: list[CandidateConsidered]


class RoutingExplanation(BaseModel):
    outcome: str
    rules: list[RuleConsidered]


class RoutedLead(Lead):
    """A lead with why it went where it went."""

    routing_explanation: RoutingExplanation | None


class LeadScoreReason(BaseModel):
    # source, campaign or product_line, and the lead's value of it.
    field: str
    value: str
    # What the value multiplies the odds of converting by: above 1 helps, below hurts, 1 says
    # nothing (never seen among decided leads).
    factor: float


class LeadScoringModel(BaseModel):
    train_time: datetime | None
    # Decided leads it learned from (won; every deal lost), and the minimum of each it needs.
    won: int
    lost: int
    needed_per_outcome: int
    # Trained on the earlier 80 % of decided leads, scoring the latest 20 %: the area under the
    # ROC curve (0.5 is chance); null when the holdout lacks an outcome or there is no model.
    holdout_auc: float | None
    holdout_leads: int
    # naive_bayes, or logistic_regression (the fields and their pairs), which serves only with
    # 1,000 decided leads (120 of each outcome) and an AUC on the same holdout at least 0.01 above
    # naive Bayes'; "" without a model. holdout_auc is the serving model's; each model's beside it
    # (null: not trained).
    kind: Literal["naive_bayes", "logistic_regression", ""]
    naive_bayes_auc: float | None
    logistic_regression_auc: float | None


class LeadScore(BaseModel):
    """The probability the lead converts (a deal won), explainable: naive Bayes over its source,
    campaign and product line — or a logistic regression over them and their pairs once it beats
    naive Bayes on leads it has not seen — trained on decided leads, with each field's factor on
    the odds."""

    lead_id: str
    # too_little_data: fewer than needed_per_outcome won or lost leads; no probability.
    status: Literal["scored", "too_little_data"]
    probability: float | None
    # Largest effect first.
    reasons: list[LeadScoreReason]
    model: LeadScoringModel
