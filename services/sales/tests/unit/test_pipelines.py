"""The pure rules of pipelines and stage moves: each bad input names its field."""

from datetime import UTC, date, datetime, timedelta

import pytest

from crm_kit.errors import Aborted, FailedPrecondition, InvalidArgument
from crm_sales import domain, pipelines
from crm_sales.domain import StageOutcome

pytestmark = pytest.mark.unit

OPEN, WON, LOST = StageOutcome.OPEN, StageOutcome.WON, StageOutcome.LOST


def stage(name: str, probability: int, outcome: StageOutcome | None = OPEN, *required: str, id: str = ""):
    return pipelines.StageDraft(id, name, probability, tuple(required), outcome)


def draft(*stages: pipelines.StageDraft, name: str = "ריהוט", product_line: str = "sofas") -> pipelines.PipelineDraft:
    return pipelines.PipelineDraft(name, product_line, True, stages)


GOOD = (stage("New", 10), stage("Proposal", 60, OPEN, "amount"), stage("Won", 100, WON), stage("Lost", 0, LOST))


def fields_of(err: pytest.ExceptionInfo[InvalidArgument] | pytest.ExceptionInfo[FailedPrecondition]) -> list[str]:
    return [field for field, _ in err.value.field_violations]


def test_a_good_pipeline_is_trimmed() -> None:
    made = pipelines.validate_new_pipeline(draft(stage(" New ", 10), *GOOD[1:], name=" ריהוט "))
    assert made.name == "ריהוט" and made.stages[0].name == "New" and made.stages[1].required_fields == ("amount",)


def test_each_bad_stage_field_is_named() -> None:
    bad = draft(
        stage("", 10),
        stage("Proposal", 101, OPEN, "colour"),
        stage("proposal", 5, None),
        stage("Won", 90, WON),
        stage("Lost", 0, LOST, "amount"),
        name="",
        product_line="x" * 101,
    )
    with pytest.raises(InvalidArgument) as err:
        pipelines.validate_new_pipeline(bad)
    assert fields_of(err) == [
        "name",
        "product_line",
        "stages[0].name",
        "stages[1].probability",
        "stages[1].required_fields",
        "stages[2].name",
        "stages[2].outcome",
        "stages[3].probability",
        "stages[4].required_fields",
    ]


def test_a_pipeline_has_open_stages_then_exactly_one_won_and_one_lost() -> None:
    with pytest.raises(InvalidArgument) as none_open:
        pipelines.validate_new_pipeline(draft(stage("Won", 100, WON), stage("Lost", 0, LOST)))
    assert ("stages", "need at least one open stage") in none_open.value.field_violations
    with pytest.raises(InvalidArgument) as two_won:
        pipelines.validate_new_pipeline(draft(stage("New", 10), stage("Won", 100, WON), stage("Won 2", 100, WON)))
    assert [v for v in two_won.value.field_violations if v[0] == "stages"] == [
        ("stages", "need exactly one won stage"),
        ("stages", "need exactly one lost stage"),
    ]
    with pytest.raises(InvalidArgument) as order:
        pipelines.validate_new_pipeline(draft(stage("Won", 100, WON), stage("New", 10), stage("Lost", 0, LOST)))
    assert fields_of(order) == ["stages[0].outcome"]
    with pytest.raises(InvalidArgument) as ids:
        pipelines.validate_new_pipeline(draft(stage("New", 10, OPEN, id="mine"), *GOOD[1:]))
    assert fields_of(ids) == ["stages[0].id"]


def test_an_update_names_its_mask_and_keeps_stages_with_deals() -> None:
    current = {"s-new": OPEN, "s-prop": OPEN, "s-won": WON, "s-lost": LOST}
    kept = (stage("New", 10, OPEN, id="s-new"), stage("Won", 100, WON, id="s-won"), stage("Lost", 0, LOST, id="s-lost"))
    update = pipelines.validate_pipeline_update
    with pytest.raises(InvalidArgument) as mask:
        update("p", draft(*kept), ["colour"], current, {})
    assert fields_of(mask) == ["update_mask"]
    with pytest.raises(InvalidArgument) as unknown:
        update("p", draft(stage("New", 10, OPEN, id="elsewhere"), *kept[1:]), ["stages"], current, {})
    assert fields_of(unknown) == ["stages[0].id"]
    # s-prop, left out, holds a deal; s-new, made a won stage, holds two.
    with pytest.raises(FailedPrecondition) as occupied:
        update(
            "p",
            draft(stage("Open", 5), stage("New", 100, WON, id="s-new"), kept[2]),
            ["stages"],
            current,
            {"s-new": 2, "s-prop": 1},
        )
    assert fields_of(occupied) == ["stages[1].outcome", "stages"]
    # Removing an empty stage and adding one is fine; the name alone changes only the name.
    assert len(update("p", draft(kept[0], stage("Demo", 40), *kept[1:]), ["stages"], current, {"s-new": 3}).stages) == 4
    with pytest.raises(FailedPrecondition) as default:
        update(pipelines.DEFAULT_PIPELINE_ID, pipelines.PipelineDraft("d", "", False, ()), ["active"], current, {})
    assert fields_of(default) == ["active"]


PROPOSAL = domain.Stage("s-prop", "p", "Proposal", OPEN, ("amount", "expected_close_date"))
EMPTY = domain.DealFields("ספה")


def test_a_move_needs_an_open_deal_an_open_stage_of_its_pipeline_and_the_stages_fields() -> None:
    with pytest.raises(FailedPrecondition) as closed:
        domain.validate_move(domain.DealStatus.WON, "p", PROPOSAL, EMPTY)
    assert closed.value.reason == "DEAL_ALREADY_CLOSED"
    with pytest.raises(InvalidArgument) as other:
        domain.validate_move(domain.DealStatus.OPEN, "q", PROPOSAL, EMPTY)
    assert fields_of(other) == ["stage_id"]
    with pytest.raises(InvalidArgument) as won:
        domain.validate_move(domain.DealStatus.OPEN, "p", domain.Stage("s-won", "p", "Won", WON), EMPTY)
    assert fields_of(won) == ["stage_id"]
    with pytest.raises(FailedPrecondition) as missing:
        domain.validate_move(domain.DealStatus.OPEN, "p", PROPOSAL, EMPTY)
    assert missing.value.reason == "REQUIRED_FIELDS_MISSING" and fields_of(missing) == ["expected_close_date", "amount"]
    ready = domain.DealFields("ספה", date(2027, 1, 31), 500000, "ILS")
    assert domain.validate_move(domain.DealStatus.OPEN, "p", PROPOSAL, ready) is PROPOSAL


def test_an_update_sets_only_its_mask_and_never_empties_a_required_field() -> None:
    ready = domain.DealFields("ספה", date(2027, 1, 31), 500000, "ILS")
    update = domain.apply_deal_update
    new = domain.DealFields(" כורסה ", None, 100, "usd")
    assert update(domain.DealStatus.OPEN, PROPOSAL, ready, new, ["title", "amount"]) == domain.DealFields(
        "כורסה", date(2027, 1, 31), 100, "USD"
    )
    with pytest.raises(FailedPrecondition) as emptied:
        update(domain.DealStatus.OPEN, PROPOSAL, ready, new, ["expected_close_date"])
    assert fields_of(emptied) == ["expected_close_date"]
    with pytest.raises(InvalidArgument) as bad:
        update(domain.DealStatus.OPEN, PROPOSAL, ready, domain.DealFields(" ", None, -1, "SHEKEL"), ["title", "amount"])
    assert fields_of(bad) == ["deal.amount.amount_minor", "deal.amount.currency_code", "deal.title"]
    with pytest.raises(InvalidArgument) as mask:
        update(domain.DealStatus.OPEN, PROPOSAL, ready, new, [])
    assert fields_of(mask) == ["update_mask"]
    with pytest.raises(FailedPrecondition):
        update(domain.DealStatus.LOST, PROPOSAL, ready, new, ["title"])


def test_etags_lost_reasons_and_time_in_stage() -> None:
    domain.check_etag("", 3, "deal d")
    domain.check_etag(domain.etag(3), 3, "deal d")
    with pytest.raises(Aborted) as stale:
        domain.check_etag(domain.etag(2), 3, "deal d")
    assert stale.value.reason == "STALE_ETAG" and fields_of(stale) == ["etag"]
    domain.check_lost_reason(False, "price", ["price", "other"])
    domain.check_lost_reason(True, "", ["price"])
    with pytest.raises(InvalidArgument) as unknown:
        domain.check_lost_reason(False, "weather", ["price"])
    with pytest.raises(InvalidArgument) as won:
        domain.check_lost_reason(True, "price", ["price"])
    assert fields_of(unknown) == fields_of(won) == ["lost_reason_code"]
    now = datetime(2026, 12, 12, tzinfo=UTC)
    assert domain.seconds_in_stage(now - timedelta(hours=1), now) == 3600
    assert domain.seconds_in_stage(None, now) == 0 and domain.seconds_in_stage(now + timedelta(seconds=5), now) == 0
