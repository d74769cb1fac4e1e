"""The pure rules of deal lists, boards, the forecast and stage forecast categories."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm_kit.errors import InvalidArgument
from crm_sales import domain, pipelines
from crm_sales.domain import DealFilter, DealOrder, StageOutcome
from crm_sales.pipelines import ForecastCategory

pytestmark = pytest.mark.unit


def fields_of(err: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [field for field, _ in err.value.field_violations]


@pytest.mark.parametrize(
    ("order_by", "order"),
    [
        ("", DealOrder.EXPECTED_CLOSE),
        ("expected_close_date", DealOrder.EXPECTED_CLOSE),
        ("  Create_Time   DESC ", DealOrder.CREATE_TIME_DESC),
        ("close_time desc", DealOrder.CLOSE_TIME_DESC),
    ],
)
def test_order_by_is_read_as_a_client_types_it(order_by: str, order: DealOrder) -> None:
    assert domain.parse_order(order_by) is order


def test_an_unknown_order_names_order_by() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.parse_order("title")
    assert fields_of(err) == ["order_by"]


def test_a_filter_is_trimmed_and_its_currency_upper_cased() -> None:
    cleaned = domain.validate_filter(
        DealFilter(owner_rep_id=" rep-dana ", amount_currency="ils", amount_min=0, title_contains="  ספה ")
    )
    assert (cleaned.owner_rep_id, cleaned.amount_currency, cleaned.amount_min, cleaned.title_contains) == (
        "rep-dana",
        "ILS",
        0,
        "ספה",
    )


def test_every_bad_filter_field_is_named() -> None:
    bad = DealFilter(
        expected_close_from=date(2027, 2, 1),
        expected_close_to=date(2027, 1, 31),
        amount_min=-5,
        amount_max=-10,
        title_contains="x" * 101,
    )
    with pytest.raises(InvalidArgument) as err:
        domain.validate_filter(bad)
    assert fields_of(err) == [
        "expected_close_to",
        "amount_currency_code",
        "amount_min_minor",
        "amount_max_minor",
        "amount_max_minor",
        "title_contains",
    ]


def test_amounts_of_a_currency_compare_only_within_it() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_filter(DealFilter(amount_max=100))
    assert fields_of(err) == ["amount_currency_code"]
    with pytest.raises(InvalidArgument) as err:
        domain.validate_filter(DealFilter(amount_currency="₪"))
    assert fields_of(err) == ["amount_currency_code"]
    assert domain.validate_filter(DealFilter(amount_currency="USD")).amount_min is None


@pytest.mark.parametrize(("requested", "listed"), [(0, 10), (1, 1), (50, 50)])
def test_a_board_lists_a_capped_number_of_deals_per_stage(requested: int, listed: int) -> None:
    assert domain.board_deals_per_stage(requested) == listed


@pytest.mark.parametrize("requested", [-1, 51])
def test_more_deals_per_stage_than_the_cap_is_refused(requested: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.board_deals_per_stage(requested)
    assert fields_of(err) == ["deals_per_stage"]


def test_the_closed_columns_default_to_the_last_30_days() -> None:
    now = datetime(2027, 3, 31, 12, tzinfo=UTC)
    assert domain.board_close_time_from(None, now) == now - timedelta(days=30)
    assert domain.board_close_time_from(now, now + timedelta(days=90)) == now


@pytest.mark.parametrize(("total", "weighted"), [(0, 0), (49, 0), (50, 1), (149, 1), (150, 2), (100_001 * 20, 20_000)])
def test_weighted_amounts_round_half_up_once(total: int, weighted: int) -> None:
    assert domain.weighted_minor(total) == weighted


def test_a_period_runs_forward() -> None:
    domain.validate_period(date(2027, 1, 1), date(2027, 1, 1))
    with pytest.raises(InvalidArgument) as err:
        domain.validate_period(date(2027, 1, 2), date(2027, 1, 1))
    assert fields_of(err) == ["period_end"]


def test_a_forecast_period_is_the_companys_days_from_local_midnight() -> None:
    jerusalem, tehran = ZoneInfo("Asia/Jerusalem"), ZoneInfo("Asia/Tehran")
    # Israel is on summer time (UTC+3) since 28 March 2025, winter time (UTC+2) before.
    assert domain.period_instants(date(2025, 4, 1), date(2025, 4, 30), jerusalem) == (
        datetime(2025, 3, 31, 21, tzinfo=UTC),
        datetime(2025, 4, 30, 21, tzinfo=UTC),
    )
    assert domain.period_instants(date(2025, 1, 1), None, jerusalem) == (datetime(2024, 12, 31, 22, tzinfo=UTC), None)
    assert domain.period_instants(None, date(2025, 3, 31), tehran) == (None, datetime(2025, 3, 31, 20, 30, tzinfo=UTC))
    assert domain.period_instants(None, None, jerusalem) == (None, None)


@pytest.mark.parametrize(
    ("outcome", "probability", "category"),
    [
        (StageOutcome.OPEN, 10, ForecastCategory.PIPELINE),
        (StageOutcome.OPEN, 49, ForecastCategory.PIPELINE),
        (StageOutcome.OPEN, 50, ForecastCategory.BEST_CASE),
        (StageOutcome.OPEN, 79, ForecastCategory.BEST_CASE),
        (StageOutcome.OPEN, 80, ForecastCategory.COMMIT),
        (StageOutcome.WON, 100, ForecastCategory.CLOSED),
        (StageOutcome.LOST, 0, ForecastCategory.OMITTED),
    ],
)
def test_a_stage_category_defaults_from_its_probability(
    outcome: StageOutcome, probability: int, category: ForecastCategory
) -> None:
    assert pipelines.default_forecast_category(outcome, probability) is category


def stage(name: str, probability: int, outcome: StageOutcome, category: ForecastCategory | None = None, id: str = ""):
    return pipelines.StageDraft(id, name, probability, (), outcome, category)


def test_a_new_pipeline_gets_its_categories() -> None:
    made = pipelines.validate_new_pipeline(
        pipelines.PipelineDraft(
            "p",
            "",
            True,
            (
                stage("a", 90, StageOutcome.OPEN, ForecastCategory.OMITTED),
                stage("b", 60, StageOutcome.OPEN),
                stage("won", 100, StageOutcome.WON),
                stage("lost", 0, StageOutcome.LOST),
            ),
        )
    )
    assert [s.forecast_category for s in made.stages] == [
        ForecastCategory.OMITTED,
        ForecastCategory.BEST_CASE,
        ForecastCategory.CLOSED,
        ForecastCategory.OMITTED,
    ]


def test_won_is_closed_lost_is_omitted_and_open_is_never_closed() -> None:
    bad = pipelines.PipelineDraft(
        "p",
        "",
        True,
        (
            stage("a", 20, StageOutcome.OPEN, ForecastCategory.CLOSED),
            stage("won", 100, StageOutcome.WON, ForecastCategory.COMMIT),
            stage("lost", 0, StageOutcome.LOST, ForecastCategory.PIPELINE),
        ),
    )
    with pytest.raises(InvalidArgument) as err:
        pipelines.validate_new_pipeline(bad)
    assert fields_of(err) == [
        "stages[0].forecast_category",
        "stages[1].forecast_category",
        "stages[2].forecast_category",
    ]


def test_a_kept_stage_keeps_its_category_unless_it_no_longer_fits() -> None:
    draft = pipelines.PipelineDraft(
        "p",
        "",
        True,
        (
            stage("a", 20, StageOutcome.OPEN, id="s1"),
            stage("b", 20, StageOutcome.OPEN, id="s2"),
            stage("c", 20, StageOutcome.OPEN),
            stage("won", 100, StageOutcome.WON, id="s3"),
            stage("lost", 0, StageOutcome.LOST, id="s4"),
        ),
    )
    current = {"s1": StageOutcome.OPEN, "s2": StageOutcome.OPEN, "s3": StageOutcome.OPEN, "s4": StageOutcome.LOST}
    categories = {
        "s1": ForecastCategory.COMMIT,
        "s2": ForecastCategory.OMITTED,
        "s3": ForecastCategory.BEST_CASE,
        "s4": ForecastCategory.OMITTED,
    }
    updated = pipelines.validate_pipeline_update("p1", draft, ["stages"], current, {}, categories)
    assert [s.forecast_category for s in updated.stages] == [
        ForecastCategory.COMMIT,
        ForecastCategory.OMITTED,
        ForecastCategory.PIPELINE,
        ForecastCategory.CLOSED,
        ForecastCategory.OMITTED,
    ]
