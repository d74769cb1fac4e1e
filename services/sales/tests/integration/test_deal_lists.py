"""Deal lists, the pipeline board, the forecast and the pipeline-value metrics of the sales service,
in process against real PostgreSQL: every filter, keyset pages across the whole list without a
duplicate or a gap in each order, the board's sums and its per-stage continuation, commit and best
case by forecast category, and money kept per currency."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from prometheus_client import REGISTRY
from sqlalchemy import text

from crm.common.v1 import types_pb2
from crm.sales.v1 import deals_pb2, pipelines_pb2
from crm_kit.protoconv import to_date, to_timestamp
from crm_kit.testing import violated_fields
from crm_sales import commands

if TYPE_CHECKING:
    from conftest import Sales  # the fixture's type (conftest.py)

pytestmark = pytest.mark.integration

OPEN, WON, LOST = pipelines_pb2.STAGE_OUTCOME_OPEN, pipelines_pb2.STAGE_OUTCOME_WON, pipelines_pb2.STAGE_OUTCOME_LOST
COMPANY_ZONE = ZoneInfo("Asia/Jerusalem")  # SalesSettings.company_time_zone's default
# The company's day: the forecast's periods and months are its calendar's.
TODAY = datetime.now(COMPANY_ZONE).date()


def furniture(name: str) -> pipelines_pb2.Pipeline:
    """Stages with 20, 60 (best case by default) and 90 (commit) percent, one omitted stage."""
    return pipelines_pb2.Pipeline(
        name=name,
        product_line="office",
        active=True,
        stages=[
            pipelines_pb2.Stage(name="ליד", probability=20, outcome=OPEN),
            pipelines_pb2.Stage(name="הצעה", probability=60, outcome=OPEN),
            pipelines_pb2.Stage(name="חתימה", probability=90, outcome=OPEN),
            pipelines_pb2.Stage(
                name="מוקפא", probability=5, outcome=OPEN, forecast_category=pipelines_pb2.FORECAST_CATEGORY_OMITTED
            ),
            pipelines_pb2.Stage(name="נסגר", probability=100, outcome=WON),
            pipelines_pb2.Stage(name="אבד", probability=0, outcome=LOST),
        ],
    )


@dataclass
class World:
    pipeline: pipelines_pb2.Pipeline
    # deal id → (title, rep, team, stage index, amount or None, currency, expected close or None)
    deals: dict[str, tuple[str, str, str, int, int | None, str, date | None]]

    def stage(self, index: int) -> str:
        return self.pipeline.stages[index].id


# (title, rep, team, stage index, amount, currency, days to expected close): stage 4 is won, 5 lost.
PLAN = [
    ("ספה 100%", "rep-dana", "team-a", 0, 100_001, "ILS", 10),
    ("Sofa_1", "rep-dana", "team-a", 0, 50_000, "ILS", None),
    ("Desk", "rep-dana", "team-a", 1, 200_000, "ILS", 40),
    ("Desk 2", "rep-omer", "team-a", 1, 30_000, "USD", 40),
    ("Chair", "rep-omer", "team-a", 2, 99_999, "ILS", 70),
    ("Chair 2", "rep-omer", "team-a", 2, None, "", 70),
    ("Lamp", "rep-sara", "team-b", 2, 12_345, "USD", 5),
    ("Frozen", "rep-sara", "team-b", 3, 77_000, "ILS", 15),
    ("Table", "rep-sara", "team-b", 0, 1_000, "EUR", None),
    ("Won sofa", "rep-dana", "team-a", 4, 0, "ILS", 3),
    ("Lost desk", "rep-omer", "team-a", 5, 60_000, "ILS", 20),
]
BULK = range(1, 15)
PLAN += [(f"bulk {n:02d}", "rep-bulk", "team-c", n % 3, 1_000 * n, "ILS", n % 9 or None) for n in BULK]


async def build(sales: Sales) -> World:
    made = await sales.pipelines.CreatePipeline(
        pipelines_pb2.CreatePipelineRequest(pipeline=furniture(f"p {uuid.uuid4()}"))
    )
    pipeline = made.pipeline
    world = World(pipeline, {})
    for title, rep, team, stage, amount, currency, days in PLAN:
        opened = await sales.deals.OpenDeal(
            deals_pb2.OpenDealRequest(
                deal_id=str(uuid.uuid4()),
                lead_id=str(uuid.uuid4()),
                title=title,
                owner_rep_id=rep,
                owner_team_id=team,
                source="radio",
                pipeline_id=pipeline.id,
            )
        )
        deal_id = opened.deal.id
        close = TODAY + timedelta(days=days) if days is not None else None
        paths = ["expected_close_date"] + (["amount"] if amount is not None and stage != 4 else [])
        await sales.deals.UpdateDeal(
            deals_pb2.UpdateDealRequest(
                deal=deals_pb2.Deal(
                    id=deal_id,
                    expected_close_date=to_date(close),
                    amount=types_pb2.Money(amount_minor=amount or 0, currency_code=currency),
                ),
                update_mask=FieldMask(paths=paths),
            )
        )
        if stage in (1, 2, 3):
            await sales.deals.MoveDealStage(
                deals_pb2.MoveDealStageRequest(deal_id=deal_id, stage_id=world.stage(stage))
            )
        elif stage == 4:
            item = types_pb2.LineItem(
                sku="SOFA", quantity=2, unit_price=types_pb2.Money(amount_minor=45_000, currency_code="ILS")
            )
            await sales.deals.CloseDeal(
                deals_pb2.CloseDealRequest(deal_id=deal_id, outcome=deals_pb2.DEAL_OUTCOME_WON, items=[item])
            )
        elif stage == 5:
            await sales.deals.CloseDeal(
                deals_pb2.CloseDealRequest(
                    deal_id=deal_id, outcome=deals_pb2.DEAL_OUTCOME_LOST, lost_reason_code="price"
                )
            )
        world.deals[deal_id] = (title, rep, team, stage, amount, currency, close)
    return world


async def everything(sales: Sales, request: deals_pb2.ListDealsRequest, token: str = "") -> list[deals_pb2.Deal]:
    """Every page of a list from `token` on, following next_page_token."""
    found: list[deals_pb2.Deal] = []
    for _ in range(100):
        request.page_token = token
        page = await sales.deals.ListDeals(request)
        assert len(page.deals) <= (request.page_size or 50)
        found.extend(page.deals)
        token = page.next_page_token
        if not token:
            return found
    raise AssertionError("the pages never ended")


def ids(deal_list: list[deals_pb2.Deal]) -> list[str]:
    return [d.id for d in deal_list]


async def test_pages_cover_the_list_once_in_each_order(sales: Sales) -> None:
    world = await build(sales)
    mine = deals_pb2.ListDealsRequest(pipeline_id=world.pipeline.id, page_size=4)

    by_close = await everything(sales, mine)
    newest = await everything(
        sales, deals_pb2.ListDealsRequest(pipeline_id=world.pipeline.id, page_size=5, order_by="Create_Time  DESC")
    )
    closed = await everything(
        sales, deals_pb2.ListDealsRequest(pipeline_id=world.pipeline.id, page_size=1, order_by="close_time desc")
    )

    assert sorted(ids(by_close)) == sorted(ids(newest)) == sorted(world.deals)
    assert len(set(ids(by_close))) == len(by_close)
    # soonest expected close first, deals without a date last, the id breaking ties
    keys = [
        (
            d.expected_close_date.year == 0,
            (d.expected_close_date.year, d.expected_close_date.month, d.expected_close_date.day),
            d.id,
        )
        for d in by_close
    ]
    assert keys == sorted(keys)
    created = [(d.create_time.ToDatetime(), d.id) for d in newest]
    assert created == sorted(created, reverse=True)
    assert [world.deals[d.id][0] for d in closed] == ["Lost desk", "Won sofa"]
    won = next(d for d in by_close if d.status == deals_pb2.DEAL_STATUS_WON)
    assert [i.sku for i in won.items] == ["SOFA"] and won.total.amount_minor == 90_000 and won.probability == 100


async def test_a_token_belongs_to_its_order(sales: Sales) -> None:
    world = await build(sales)
    first = await sales.deals.ListDeals(deals_pb2.ListDealsRequest(pipeline_id=world.pipeline.id, page_size=2))
    for order_by, token in (
        ("create_time desc", first.next_page_token),
        ("", "bm90IGpzb24"),
        ("", first.next_page_token[:-3]),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sales.deals.ListDeals(deals_pb2.ListDealsRequest(page_token=token, order_by=order_by))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(err.value) == {"page_token"}


async def test_each_filter_narrows_the_list(sales: Sales) -> None:
    world = await build(sales)
    p = world.pipeline.id

    async def titles(**fields: object) -> set[str]:
        found = await everything(sales, deals_pb2.ListDealsRequest(pipeline_id=p, page_size=100, **fields))  # type: ignore[arg-type]
        return {world.deals[d.id][0] for d in found}

    def planned(keep: object) -> set[str]:
        return {t for t, *rest in world.deals.values() if keep(t, *rest)}  # type: ignore[operator]

    assert await titles(stage_id=world.stage(2)) == planned(lambda t, r, team, s, *_: s == 2)
    assert await titles(status=deals_pb2.DEAL_STATUS_LOST) == {"Lost desk"}
    assert await titles(owner_rep_id="rep-omer") == planned(lambda t, r, *_: r == "rep-omer")
    assert await titles(owner_team_id="team-b") == {"Lamp", "Frozen", "Table"}
    window = {
        "expected_close_from": to_date(TODAY + timedelta(days=5)),
        "expected_close_to": to_date(TODAY + timedelta(days=10)),
    }
    assert await titles(**window) == planned(lambda *row: row[6] is not None and 5 <= (row[6] - TODAY).days <= 10)
    assert await titles(amount_currency_code="usd") == {"Desk 2", "Lamp"}
    assert await titles(amount_currency_code="ILS", amount_min_minor=99_999, amount_max_minor=100_001) == {
        "ספה 100%",
        "Chair",
    }
    assert await titles(amount_currency_code="ILS", amount_min_minor=0, amount_max_minor=0) == set()
    assert await titles(close_time_from=to_timestamp(datetime.now(UTC) - timedelta(hours=1))) == {
        "Won sofa",
        "Lost desk",
    }
    # the title's own % and _ are literal characters
    assert await titles(title_contains="100%") == {"ספה 100%"}
    assert await titles(title_contains="a_1") == {"Sofa_1"}
    assert await titles(title_contains="CHAIR") == {"Chair", "Chair 2"}
    assert await titles(owner_rep_id="rep-dana", stage_id=world.stage(0)) == {"ספה 100%", "Sofa_1"}


@pytest.mark.parametrize(
    ("fields", "violated"),
    [
        ({"amount_min_minor": 5}, {"amount_currency_code"}),
        ({"amount_currency_code": "shekel"}, {"amount_currency_code"}),
        ({"amount_currency_code": "ILS", "amount_min_minor": 9, "amount_max_minor": 1}, {"amount_max_minor"}),
        ({"amount_currency_code": "ILS", "amount_min_minor": -1}, {"amount_min_minor"}),
        (
            {
                "expected_close_from": types_pb2.Date(year=2027, month=2, day=1),
                "expected_close_to": types_pb2.Date(year=2027, month=1, day=1),
            },
            {"expected_close_to"},
        ),
        ({"expected_close_from": types_pb2.Date(year=2027, month=2, day=30)}, {"expected_close_from"}),
        ({"order_by": "title"}, {"order_by"}),
        ({"title_contains": "x" * 101}, {"title_contains"}),
        ({"status": 9}, {"status"}),
        ({"page_size": -1}, {"page_size"}),
    ],
)
async def test_a_bad_filter_names_its_field(sales: Sales, fields: dict[str, object], violated: set[str]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sales.deals.ListDeals(deals_pb2.ListDealsRequest(**fields))  # type: ignore[arg-type]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == violated


async def test_the_board_sums_each_stage_per_currency_and_continues_through_list_deals(sales: Sales) -> None:
    world = await build(sales)
    board = await sales.deals.GetPipelineBoard(
        deals_pb2.GetPipelineBoardRequest(pipeline_id=world.pipeline.id, deals_per_stage=3)
    )

    assert [s.stage.id for s in board.stages] == [s.id for s in world.pipeline.stages]
    assert board.stages[2].stage.forecast_category == pipelines_pb2.FORECAST_CATEGORY_COMMIT
    for column in board.stages:
        index = [s.id for s in world.pipeline.stages].index(column.stage.id)
        planned = [row for row in world.deals.values() if row[3] == index]
        assert column.deal_count == len(planned)
        sums: dict[str, list[int]] = {}
        for *_, amount, currency, _close in planned:
            if amount is not None and index != 4:
                sums.setdefault(currency, []).append(amount)
        if index == 4:  # the won stage counts what was sold
            sums = {"ILS": [90_000]}
        probability = column.stage.probability
        expected = {c: (len(a), sum(a), (sum(a) * probability + 50) // 100) for c, a in sums.items()}
        got = {a.currency_code: (a.deal_count, a.amount_minor, a.weighted_amount_minor) for a in column.amounts}
        assert got == expected, column.stage.name
        # the first deals, then ListDeals continuing with the stage's token: the whole stage, once
        assert len(column.deals) == min(3, len(planned))
        closed = index >= 4
        continuation = deals_pb2.ListDealsRequest(
            pipeline_id=world.pipeline.id,
            stage_id=column.stage.id,
            order_by=column.order_by,
            close_time_from=board.close_time_from if closed else None,
            page_size=2,
        )
        found = list(column.deals)
        if column.next_page_token:
            found += await everything(sales, continuation, column.next_page_token)
        continuation.page_size = 100
        assert ids(found) == ids(await everything(sales, continuation)), column.stage.name
        assert len(found) == column.deal_count
    # per currency, by code
    assert [a.currency_code for a in board.stages[0].amounts] == ["EUR", "ILS"]


async def test_the_board_of_an_owner_and_its_closed_columns_window(sales: Sales) -> None:
    world = await build(sales)
    p = world.pipeline.id
    mine = await sales.deals.GetPipelineBoard(deals_pb2.GetPipelineBoardRequest(pipeline_id=p, owner_rep_id="rep-dana"))
    team_b = await sales.deals.GetPipelineBoard(
        deals_pb2.GetPipelineBoardRequest(pipeline_id=p, owner_team_id="team-b")
    )
    later = await sales.deals.GetPipelineBoard(
        deals_pb2.GetPipelineBoardRequest(
            pipeline_id=p, close_time_from=to_timestamp(datetime.now(UTC) + timedelta(minutes=5))
        )
    )

    assert {d.owner_rep_id for s in mine.stages for d in s.deals} == {"rep-dana"}
    assert sum(s.deal_count for s in mine.stages) == sum(1 for row in world.deals.values() if row[1] == "rep-dana")
    assert sum(s.deal_count for s in team_b.stages) == 3
    assert [s.deal_count for s in later.stages][4:] == [0, 0]
    assert later.stages[4].deals == [] and later.stages[4].order_by == "close_time desc"
    default = await sales.deals.GetPipelineBoard(deals_pb2.GetPipelineBoardRequest(pipeline_id=p))
    since = default.close_time_from.ToDatetime(tzinfo=UTC)
    assert abs((datetime.now(UTC) - since) - timedelta(days=30)) < timedelta(minutes=1)
    assert [s.deal_count for s in default.stages][4:] == [1, 1]


async def test_the_board_refuses_what_it_cannot_show(sales: Sales) -> None:
    for request, code, field in (
        (deals_pb2.GetPipelineBoardRequest(pipeline_id="nope"), grpc.StatusCode.NOT_FOUND, None),
        (
            deals_pb2.GetPipelineBoardRequest(pipeline_id="default", deals_per_stage=51),
            grpc.StatusCode.INVALID_ARGUMENT,
            "deals_per_stage",
        ),
        (deals_pb2.GetPipelineBoardRequest(), grpc.StatusCode.INVALID_ARGUMENT, "pipeline_id"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sales.deals.GetPipelineBoard(request)
        assert err.value.code() == code
        if field:
            assert violated_fields(err.value) == {field}


async def test_the_forecast_weights_open_deals_and_counts_won_apart(sales: Sales) -> None:
    world = await build(sales)
    by_rep = await sales.deals.GetForecast(
        deals_pb2.GetForecastRequest(group_by=deals_pb2.FORECAST_GROUP_BY_OWNER_REP, pipeline_id=world.pipeline.id)
    )
    rows = {(r.group, r.currency_code): r for r in by_rep.rows}

    dana = rows[("rep-dana", "ILS")]
    # ספה 100,001 and Sofa_1 50,000 at 20 %, Desk 200,000 at 60 % (best case); Won sofa sold 90,000
    assert (dana.open_deals, dana.pipeline_amount_minor) == (3, 350_001)
    assert dana.weighted_amount_minor == (100_001 * 20 + 50_000 * 20 + 200_000 * 60 + 50) // 100
    assert (dana.best_case_amount_minor, dana.commit_amount_minor) == (200_000, 0)
    assert (dana.won_deals, dana.closed_won_amount_minor) == (1, 90_000)
    omer_ils, omer_usd, omer_none = rows[("rep-omer", "ILS")], rows[("rep-omer", "USD")], rows[("rep-omer", "")]
    assert (omer_ils.commit_amount_minor, omer_ils.best_case_amount_minor) == (99_999, 99_999)
    assert (omer_usd.best_case_amount_minor, omer_usd.commit_amount_minor) == (30_000, 0)
    assert (omer_none.open_deals, omer_none.pipeline_amount_minor) == (1, 0)  # Chair 2 has no amount
    # Frozen is in an omitted stage: Sara's ILS has nothing but the table is EUR
    assert ("rep-sara", "ILS") not in rows
    assert rows[("rep-sara", "EUR")].pipeline_amount_minor == 1_000
    assert [r.group for r in by_rep.rows] == sorted(r.group for r in by_rep.rows)


async def test_the_forecast_by_month_holds_to_its_period(sales: Sales) -> None:
    world = await build(sales)
    start, end = TODAY + timedelta(days=1), TODAY + timedelta(days=12)
    by_month = await sales.deals.GetForecast(
        deals_pb2.GetForecastRequest(
            group_by=deals_pb2.FORECAST_GROUP_BY_MONTH,
            pipeline_id=world.pipeline.id,
            period_start=to_date(start),
            period_end=to_date(end),
        )
    )
    expected: dict[tuple[str, str], int] = {}
    for _title, _rep, _team, stage, amount, currency, close in world.deals.values():
        if stage in (0, 1, 2) and close is not None and start <= close <= end and amount is not None:
            key = (close.strftime("%Y-%m"), currency)
            expected[key] = expected.get(key, 0) + amount
    got = {(r.group, r.currency_code): r.pipeline_amount_minor for r in by_month.rows if r.open_deals}
    assert got == expected
    # the won deal closed today: outside a period that starts tomorrow
    assert sum(r.won_deals for r in by_month.rows) == 0
    today = await sales.deals.GetForecast(
        deals_pb2.GetForecastRequest(
            group_by=deals_pb2.FORECAST_GROUP_BY_MONTH,
            pipeline_id=world.pipeline.id,
            period_start=to_date(TODAY),
            period_end=to_date(TODAY),
        )
    )
    [won] = [r for r in today.rows if r.won_deals]
    assert (won.group, won.currency_code, won.closed_won_amount_minor) == (TODAY.strftime("%Y-%m"), "ILS", 90_000)


async def test_the_forecast_months_and_period_are_the_companys_calendar(sales: Sales) -> None:
    """Two deals won on either side of local midnight of 1 April 2025 in Tel Aviv (UTC+3 since 28
    March): both on 31 March in UTC, but 23:30 on 31 March and 00:30 on 1 April on the company's
    calendar — as targets vs actual in reporting counts them."""
    world = await build(sales)
    march_deal, april_deal = [d for d, plan in world.deals.items() if plan[3] in (0, 1)][:2]
    for deal_id in (march_deal, april_deal):
        item = types_pb2.LineItem(
            sku="SOFA", quantity=1, unit_price=types_pb2.Money(amount_minor=10_000, currency_code="ILS")
        )
        await sales.deals.CloseDeal(
            deals_pb2.CloseDealRequest(deal_id=deal_id, outcome=deals_pb2.DEAL_OUTCOME_WON, items=[item])
        )
    async with sales.service.db.unit_of_work() as uow:
        for deal_id, closed_at in (
            (march_deal, datetime(2025, 3, 31, 20, 30, tzinfo=UTC)),
            (april_deal, datetime(2025, 3, 31, 21, 30, tzinfo=UTC)),
        ):
            await uow.conn.execute(
                text("UPDATE deals SET closed_at = :at WHERE id = :id"), {"at": closed_at, "id": deal_id}
            )

    async def won_by_month(start: date | None, end: date | None) -> dict[str, int]:
        reply = await sales.deals.GetForecast(
            deals_pb2.GetForecastRequest(
                group_by=deals_pb2.FORECAST_GROUP_BY_MONTH,
                pipeline_id=world.pipeline.id,
                period_start=to_date(start),
                period_end=to_date(end),
            )
        )
        return {r.group: r.won_deals for r in reply.rows if r.won_deals and r.group.startswith("2025")}

    assert await won_by_month(None, None) == {"2025-03": 1, "2025-04": 1}
    assert await won_by_month(date(2025, 4, 1), date(2025, 4, 30)) == {"2025-04": 1}
    assert await won_by_month(date(2025, 3, 1), date(2025, 3, 31)) == {"2025-03": 1}


async def test_the_forecast_refuses_a_missing_grouping_or_a_backwards_period(sales: Sales) -> None:
    for request, field in (
        (deals_pb2.GetForecastRequest(), "group_by"),
        (
            deals_pb2.GetForecastRequest(
                group_by=deals_pb2.FORECAST_GROUP_BY_PIPELINE,
                period_start=types_pb2.Date(year=2027, month=3, day=1),
                period_end=types_pb2.Date(year=2027, month=2, day=1),
            ),
            "period_end",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sales.deals.GetForecast(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(err.value) == {field}


async def test_forecast_categories_default_from_probability_and_are_kept_on_replace(sales: Sales) -> None:
    world = await build(sales)
    categories = [s.forecast_category for s in world.pipeline.stages]
    assert categories == [
        pipelines_pb2.FORECAST_CATEGORY_PIPELINE,
        pipelines_pb2.FORECAST_CATEGORY_BEST_CASE,
        pipelines_pb2.FORECAST_CATEGORY_COMMIT,
        pipelines_pb2.FORECAST_CATEGORY_OMITTED,
        pipelines_pb2.FORECAST_CATEGORY_CLOSED,
        pipelines_pb2.FORECAST_CATEGORY_OMITTED,
    ]
    stages = [
        pipelines_pb2.Stage(id=s.id, name=s.name, probability=s.probability, outcome=s.outcome)
        for s in world.pipeline.stages
    ]
    stages[0].forecast_category = pipelines_pb2.FORECAST_CATEGORY_COMMIT
    replaced = await sales.pipelines.UpdatePipeline(
        pipelines_pb2.UpdatePipelineRequest(
            pipeline=pipelines_pb2.Pipeline(id=world.pipeline.id, stages=stages),
            update_mask=FieldMask(paths=["stages"]),
        )
    )
    assert [s.forecast_category for s in replaced.pipeline.stages] == [
        pipelines_pb2.FORECAST_CATEGORY_COMMIT,
        *categories[1:],
    ]
    # a lead stage in commit: Dana's 20 % deals count in commit now
    forecast = await sales.deals.GetForecast(
        deals_pb2.GetForecastRequest(
            group_by=deals_pb2.FORECAST_GROUP_BY_OWNER_REP, owner_rep_id="rep-dana", pipeline_id=world.pipeline.id
        )
    )
    [dana] = [r for r in forecast.rows if r.currency_code == "ILS"]
    assert dana.commit_amount_minor == 150_001
    stages[4].forecast_category = pipelines_pb2.FORECAST_CATEGORY_COMMIT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sales.pipelines.UpdatePipeline(
            pipelines_pb2.UpdatePipelineRequest(
                pipeline=pipelines_pb2.Pipeline(id=world.pipeline.id, stages=stages),
                update_mask=FieldMask(paths=["stages"]),
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == {"stages[4].forecast_category"}


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_the_metrics_hold_the_open_pipelines_value_and_closes_by_stage(sales: Sales) -> None:
    world = await build(sales)
    await commands.refresh_pipeline_metrics(sales.service.db)
    p = world.pipeline.id

    assert sample("crm_deals_open", pipeline=p, stage=world.stage(2)) == 3 + sum(1 for n in BULK if n % 3 == 2)
    ils = [a for _, _, _, s, a, c, _ in world.deals.values() if s == 1 and c == "ILS" and a is not None]
    assert sample("crm_deals_open_amount_minor", pipeline=p, stage=world.stage(1), currency_code="ILS") == sum(ils)
    assert (
        sample("crm_deals_open_weighted_amount_minor", pipeline=p, stage=world.stage(1), currency_code="ILS")
        == (sum(ils) * 60 + 50) // 100
    )
    # every open stage exports each price-list currency from 0, and its closes from 0
    assert sample("crm_deals_open_amount_minor", pipeline=p, stage=world.stage(3), currency_code="IRR") == 0
    assert sample("crm_deals_closed_from_stage_total", pipeline=p, stage=world.stage(0), outcome="won") == 1
    assert sample("crm_deals_closed_from_stage_total", pipeline=p, stage=world.stage(0), outcome="lost") == 1
    assert sample("crm_deals_closed_from_stage_total", pipeline=p, stage=world.stage(3), outcome="won") == 0
    # a deal that left: the next refresh no longer counts it, and its close counts from its stage
    [frozen] = [deal_id for deal_id, row in world.deals.items() if row[3] == 3]
    await sales.deals.CloseDeal(deals_pb2.CloseDealRequest(deal_id=frozen, outcome=deals_pb2.DEAL_OUTCOME_LOST))
    await commands.refresh_pipeline_metrics(sales.service.db)
    assert sample("crm_deals_open", pipeline=p, stage=world.stage(3)) == 0
    assert sample("crm_deals_open_amount_minor", pipeline=p, stage=world.stage(3), currency_code="ILS") == 0
    assert sample("crm_deals_closed_from_stage_total", pipeline=p, stage=world.stage(3), outcome="lost") == 1


async def test_the_stage_totals_follow_concurrent_changes(sales: Sales) -> None:
    """The trigger-kept totals equal a fresh count of the open deals after moves, edits and closes
    changed them at once (the board's open stages read only the totals)."""
    world = await build(sales)
    open_ids = [deal_id for deal_id, row in world.deals.items() if row[3] in (0, 1, 2)]
    changes = []
    for n, deal_id in enumerate(open_ids):
        if n % 4 == 0:
            changes.append(
                sales.deals.MoveDealStage(deals_pb2.MoveDealStageRequest(deal_id=deal_id, stage_id=world.stage(2)))
            )
        elif n % 4 == 1:
            changes.append(
                sales.deals.MoveDealStage(deals_pb2.MoveDealStageRequest(deal_id=deal_id, stage_id=world.stage(0)))
            )
        elif n % 4 == 2:
            money = types_pb2.Money(amount_minor=7_000 + n, currency_code="EUR")
            update = deals_pb2.UpdateDealRequest(
                deal=deals_pb2.Deal(id=deal_id, amount=money), update_mask=FieldMask(paths=["amount"])
            )
            changes.append(sales.deals.UpdateDeal(update))
        else:
            changes.append(
                sales.deals.CloseDeal(deals_pb2.CloseDealRequest(deal_id=deal_id, outcome=deals_pb2.DEAL_OUTCOME_LOST))
            )
    await asyncio.gather(*changes)

    async with sales.service.db.engine.connect() as conn:
        kept = await conn.execute(
            text(
                "SELECT stage_id, owner_rep_id, owner_team_id, currency_code, deals, amount_minor"
                " FROM deal_stage_totals WHERE pipeline_id = :p AND deals <> 0 ORDER BY 1, 2, 3, 4"
            ),
            {"p": world.pipeline.id},
        )
        counted = await conn.execute(
            text(
                "SELECT stage_id, coalesce(owner_rep_id, ''), coalesce(owner_team_id, ''),"
                " coalesce(amount_currency, ''), count(*), coalesce(sum(amount_minor), 0)"
                " FROM deals WHERE pipeline_id = :p AND status = 'open'"
                " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
            ),
            {"p": world.pipeline.id},
        )
        assert [tuple(r) for r in kept] == [tuple(r) for r in counted]
