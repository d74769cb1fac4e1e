"""The shape of a pipeline: its name and product line, and its ordered stages (open stages first,
then exactly one won and one lost stage), checked when it is created and when its stages are
replaced while deals sit in them. No I/O; the deal's side of stages is in `crm_sales.domain`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_sales.domain import DEAL_FIELDS, StageOutcome

# Seeded by migration 0002; every deal opened without naming a pipeline goes to it, so it stays active.
DEFAULT_PIPELINE_ID = "default"
NAME_MAX = 200
PRODUCT_LINE_MAX = 100
STAGE_NAME_MAX = 100
PIPELINE_FIELDS = ("name", "product_line", "active", "stages")
# A won deal is certain and a lost one is gone: the forecast weights them at exactly that.
_CLOSED_PROBABILITY = {StageOutcome.WON: 100, StageOutcome.LOST: 0}


class ForecastCategory(StrEnum):
    """Where the forecast counts the open deals of a stage (docs/selling.md, "Forecast"): every
    open deal is pipeline; best case adds up best_case and commit stages; commit only commit ones.
    Omitted stages are left out; the won stage is closed and the lost one omitted, always."""

    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    OMITTED = "omitted"
    CLOSED = "closed"


_CLOSED_CATEGORY = {StageOutcome.WON: ForecastCategory.CLOSED, StageOutcome.LOST: ForecastCategory.OMITTED}
# Probabilities from which an open stage defaults to commit and to best case.
COMMIT_FROM = 80
BEST_CASE_FROM = 50


def default_forecast_category(outcome: StageOutcome | None, probability: int) -> ForecastCategory:
    """A stage's category when the company has not chosen one: the won and lost stages' fixed ones,
    else from the probability (80 and above commit, 50 and above best case, below that pipeline)."""
    if outcome in _CLOSED_CATEGORY:
        return _CLOSED_CATEGORY[outcome]
    if probability >= COMMIT_FROM:
        return ForecastCategory.COMMIT
    return ForecastCategory.BEST_CASE if probability >= BEST_CASE_FROM else ForecastCategory.PIPELINE


def category_fits(outcome: StageOutcome | None, category: ForecastCategory) -> bool:
    """The won and lost stages have their fixed category; an open stage any but closed."""
    if outcome in _CLOSED_CATEGORY:
        return category is _CLOSED_CATEGORY[outcome]
    return category is not ForecastCategory.CLOSED


@dataclass(frozen=True)
class StageDraft:
    """A stage as a client sent it: id empty for a new one, outcome None when unspecified."""

    id: str
    name: str
    probability: int
    required_fields: tuple[str, ...]
    outcome: StageOutcome | None
    # None: the stage's current one when it is kept, else default_forecast_category.
    forecast_category: ForecastCategory | None = None


@dataclass(frozen=True)
class PipelineDraft:
    name: str
    product_line: str
    active: bool
    stages: tuple[StageDraft, ...]


def _stage_violations(i: int, stage: StageDraft, seen_names: set[str]) -> list[tuple[str, str]]:
    at = f"stages[{i}]"
    violations: list[tuple[str, str]] = []
    name = stage.name.strip()
    if not name or len(name) > STAGE_NAME_MAX:
        violations.append((f"{at}.name", f"is required, at most {STAGE_NAME_MAX} characters"))
    elif name.casefold() in seen_names:
        violations.append((f"{at}.name", "is used by another stage"))
    seen_names.add(name.casefold())
    if not 0 <= stage.probability <= 100:
        violations.append((f"{at}.probability", "must be 0-100"))
    elif stage.outcome in _CLOSED_PROBABILITY and stage.probability != _CLOSED_PROBABILITY[stage.outcome]:
        violations.append((f"{at}.probability", f"must be {_CLOSED_PROBABILITY[stage.outcome]} for a {stage.outcome}"))
    if stage.outcome is None:
        violations.append((f"{at}.outcome", "must be open, won or lost"))
    unknown = [f for f in stage.required_fields if f not in DEAL_FIELDS]
    if unknown:
        violations.append((f"{at}.required_fields", f"must be among {', '.join(DEAL_FIELDS)}"))
    elif stage.required_fields and stage.outcome in _CLOSED_PROBABILITY:
        violations.append((f"{at}.required_fields", "only an open stage requires fields (a close carries its own)"))
    if stage.forecast_category is not None and not category_fits(stage.outcome, stage.forecast_category):
        violations.append(
            (f"{at}.forecast_category", "won is closed, lost is omitted, an open stage any of the others")
        )
    return violations


def _order_violations(stages: Sequence[StageDraft]) -> list[tuple[str, str]]:
    outcomes = [s.outcome for s in stages]
    violations: list[tuple[str, str]] = []
    if StageOutcome.OPEN not in outcomes:
        violations.append(("stages", "need at least one open stage"))
    for closed in (StageOutcome.WON, StageOutcome.LOST):
        if outcomes.count(closed) != 1:
            violations.append(("stages", f"need exactly one {closed} stage"))
    last_open = max((i for i, o in enumerate(outcomes) if o is StageOutcome.OPEN), default=-1)
    violations += [
        (f"stages[{i}].outcome", "won and lost stages come after every open stage")
        for i, o in enumerate(outcomes[:last_open])
        if o in _CLOSED_PROBABILITY
    ]
    return violations


def _field_violations(draft: PipelineDraft, fields: Sequence[str]) -> list[tuple[str, str]]:
    violations: list[tuple[str, str]] = []
    if "name" in fields and not 0 < len(draft.name.strip()) <= NAME_MAX:
        violations.append(("name", f"is required, at most {NAME_MAX} characters"))
    if "product_line" in fields and len(draft.product_line.strip()) > PRODUCT_LINE_MAX:
        violations.append(("product_line", f"at most {PRODUCT_LINE_MAX} characters"))
    if "stages" in fields:
        seen: set[str] = set()
        violations += [v for i, stage in enumerate(draft.stages) for v in _stage_violations(i, stage, seen)]
        violations += _order_violations(draft.stages)
    return violations


def _category(stage: StageDraft, current: Mapping[str, ForecastCategory]) -> ForecastCategory:
    """The category to store: the one sent, else the kept stage's own (when it still fits its
    outcome), else the default: a client that replaces the stage list without knowing categories
    keeps the company's choices."""
    if stage.forecast_category is not None:
        return stage.forecast_category
    kept = current.get(stage.id)
    if kept is not None and category_fits(stage.outcome, kept):
        return kept
    return default_forecast_category(stage.outcome, stage.probability)


def _clean(draft: PipelineDraft, categories: Mapping[str, ForecastCategory] | None = None) -> PipelineDraft:
    stages = tuple(
        StageDraft(
            s.id.strip(),
            s.name.strip(),
            s.probability,
            tuple(dict.fromkeys(s.required_fields)),
            s.outcome,
            _category(s, categories or {}),
        )
        for s in draft.stages
    )
    return replace(draft, name=draft.name.strip(), product_line=draft.product_line.strip(), stages=stages)


def validate_new_pipeline(draft: PipelineDraft) -> PipelineDraft:
    """The pipeline to create, trimmed; INVALID_ARGUMENT names every bad field."""
    violations = _field_violations(draft, PIPELINE_FIELDS)
    violations += [(f"stages[{i}].id", "is chosen by the service") for i, s in enumerate(draft.stages) if s.id]
    if violations:
        raise InvalidArgument("invalid pipeline", field_violations=violations)
    return _clean(draft)


def _replacement_violations(
    stages: Sequence[StageDraft], current: Mapping[str, StageOutcome], occupied: Mapping[str, int]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(bad ids, changes that deals in a stage forbid) of a new stage list against the current one."""
    invalid: list[tuple[str, str]] = []
    blocked: list[tuple[str, str]] = []
    kept: set[str] = set()
    for i, stage in enumerate(stages):
        if stage.id and (stage.id not in current or stage.id in kept):
            invalid.append((f"stages[{i}].id", "must be a stage of this pipeline, once (empty for a new stage)"))
        kept.add(stage.id)
        if occupied.get(stage.id) and stage.outcome is not current.get(stage.id):
            blocked.append((f"stages[{i}].outcome", f"{occupied[stage.id]} deals are in this stage"))
    blocked += [
        ("stages", f"stage {stage_id} has {count} deals: move them first")
        for stage_id, count in occupied.items()
        if count and stage_id not in kept
    ]
    return invalid, blocked


def validate_pipeline_update(
    pipeline_id: str,
    draft: PipelineDraft,
    mask: Sequence[str],
    current: Mapping[str, StageOutcome],
    occupied: Mapping[str, int],
    categories: Mapping[str, ForecastCategory] | None = None,
) -> PipelineDraft:
    """The fields of `mask` of an update, trimmed. `current` is the pipeline's stages (id →
    outcome), `occupied` the deals per stage: a stage with deals is neither removed nor given
    another outcome (its deals would be in a place their status contradicts). `categories` are
    the stages' forecast categories now (id → category), kept when a stage is sent without one."""
    unknown = [path for path in mask if path not in PIPELINE_FIELDS]
    if not mask or unknown:
        field = ("update_mask", f"name some of {', '.join(PIPELINE_FIELDS)}; unknown: {unknown}")
        raise InvalidArgument("invalid update_mask", field_violations=[field])
    violations = _field_violations(draft, mask)
    blocked: list[tuple[str, str]] = []
    if "stages" in mask:
        invalid, blocked = _replacement_violations(draft.stages, current, occupied)
        violations += invalid
    if violations:
        raise InvalidArgument("invalid pipeline", field_violations=violations)
    if "active" in mask and not draft.active and pipeline_id == DEFAULT_PIPELINE_ID:
        blocked.append(("active", "the default pipeline takes every deal opened without a pipeline"))
    if blocked:
        raise FailedPrecondition(
            "the pipeline's deals forbid this change", reason="PIPELINE_IN_USE", field_violations=blocked
        )
    return _clean(draft, categories)
