"""Deal lists, a pipeline's board and the forecast through the real stack: filters, keyset pages
across the whole list without a duplicate or a gap, the board's sums per stage and currency and its
continuation through GET /deals, commit and best case, and each caller held to their own deals."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack

from .test_golden_path import ITEMS, capture

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date()
STAGES = [
    {"name": "פנייה", "probability": 20},
    {"name": "הצעה", "probability": 60},
    {"name": "חתימה", "probability": 90},
    {"name": "Won", "probability": 100, "outcome": "won"},
    {"name": "Lost", "probability": 0, "outcome": "lost"},
]
# (source: radio goes to team-media, website to team-digital; stage index; amount; currency; days
# to the expected close or None); stage 3 is won.
PLAN: list[tuple[str, int, int | None, str, int | None]] = [
    ("radio", 0, 100_000, "ILS", 10),
    ("radio", 0, 40_000, "ILS", None),
    ("radio", 1, 250_000, "ILS", 35),
    ("radio", 2, 80_000, "USD", 20),
    ("radio", 3, None, "ILS", 5),
    ("website", 0, 10_000, "ILS", 3),
    ("website", 1, 70_000, "ILS", 50),
    ("website", 1, 5_000, "EUR", 50),
    ("website", 2, 120_001, "ILS", 15),
    ("website", 2, None, "", 15),
    ("website", 0, 30_000, "ILS", 75),
    ("radio", 1, 60_000, "USD", None),
]


@dataclass
class Pipeline:
    id: str
    stage_ids: list[str]
    deals: dict[str, dict[str, Any]]  # id → the deal as last read


@pytest.fixture(scope="module")
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as api:
        body = {"name": f"מטבחים {uuid.uuid4().hex[:6]}", "product_line": "kitchens", "stages": STAGES}
        created = await api.post("/api/v1/pipelines", json=body)
        assert created.status_code == 201, created.text
        stage_ids = [s["id"] for s in created.json()["stages"]]
        made = Pipeline(created.json()["id"], stage_ids, {})
        for n, (source, stage, amount, currency, days) in enumerate(PLAN):
            lead = await capture(api, source=source)
            converted = await api.post(
                f"/api/v1/leads/{lead['id']}/convert", json={"title": f"מטבח {n:02d}", "pipeline_id": made.id}
            )
            assert converted.status_code == 201, converted.text
            path = f"/api/v1/deals/{converted.json()['id']}"
            change: dict[str, Any] = {"expected_close_date": str(TODAY + timedelta(days=days)) if days else None}
            if amount is not None:
                change["amount"] = {"amount_minor": amount, "currency_code": currency}
            assert (await api.patch(path, json=change)).status_code == 200
            if stage in (1, 2):
                assert (await api.post(f"{path}/stage", json={"stage_id": stage_ids[stage]})).status_code == 200
            if stage == 3:
                assert (await api.post(f"{path}/close", json={"outcome": "won", "items": ITEMS})).status_code == 200
            deal = (await api.get(path)).json()
            made.deals[deal["id"]] = deal
        yield made


async def every_page(http: httpx.AsyncClient, params: dict[str, Any], token: str = "") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(100):
        response = await http.get("/api/v1/deals", params={**params, "page_token": token} if token else params)
        assert response.status_code == 200, response.text
        found += response.json()["deals"]
        token = response.json()["next_page_token"]
        if not token:
            return found
    raise AssertionError("the pages never ended")


def value(deal: dict[str, Any]) -> tuple[str, int] | None:
    """What the board counts a deal for: a won deal's total, else its amount."""
    money = deal["total"] if deal["status"] == "won" else deal["amount"]
    return (money["currency_code"], money["amount_minor"]) if money else None


async def test_pages_walk_the_whole_list_once_in_order(api: httpx.AsyncClient, pipeline: Pipeline) -> None:
    listed = await every_page(api, {"pipeline_id": pipeline.id, "page_size": 5})
    newest = await every_page(api, {"pipeline_id": pipeline.id, "page_size": 4, "order_by": "create_time desc"})

    assert len(listed) == len({d["id"] for d in listed}) == len(PLAN)
    assert {d["id"] for d in listed} == {d["id"] for d in newest} == set(pipeline.deals)
    dates = [d["expected_close_date"] or "9999" for d in listed]
    assert dates == sorted(dates)
    assert [d["create_time"] for d in newest] == sorted((d["create_time"] for d in newest), reverse=True)
    stale = await api.get("/api/v1/deals", params={"page_token": "not a token"})
    assert stale.status_code == 422 and "page_token" in stale.text


async def test_each_filter_narrows_the_list(api: httpx.AsyncClient, pipeline: Pipeline) -> None:
    async def titles(**params: Any) -> set[str]:
        return {d["title"] for d in await every_page(api, {"pipeline_id": pipeline.id, "page_size": 100, **params})}

    def planned(keep: Any) -> set[str]:
        return {d["title"] for d in pipeline.deals.values() if keep(d)}

    assert await titles(stage_id=pipeline.stage_ids[1]) == planned(lambda d: d["stage_id"] == pipeline.stage_ids[1])
    assert await titles(status="won") == planned(lambda d: d["status"] == "won")
    assert await titles(owner_team_id="team-digital") == planned(lambda d: d["owner_team_id"] == "team-digital")
    soon = {"expected_close_from": str(TODAY), "expected_close_to": str(TODAY + timedelta(days=15))}
    assert await titles(**soon) == planned(
        lambda d: d["expected_close_date"] and d["expected_close_date"] <= str(TODAY + timedelta(days=15))
    )
    assert await titles(amount_currency_code="ILS", amount_min_minor=70_000, amount_max_minor=120_001) == {
        "מטבח 00",
        "מטבח 06",
        "מטבח 08",
    }
    assert await titles(title_contains="ח 1") == {"מטבח 10", "מטבח 11"}
    bad = await api.get("/api/v1/deals", params={"amount_min_minor": 5})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert "amount_currency_code" in bad.text


async def test_the_board_sums_each_stage_and_continues_through_the_list(
    api: httpx.AsyncClient, pipeline: Pipeline
) -> None:
    response = await api.get(f"/api/v1/pipelines/{pipeline.id}/board", params={"deals_per_stage": 2})
    assert response.status_code == 200, response.text
    board = response.json()

    assert [s["stage"]["id"] for s in board["stages"]] == pipeline.stage_ids
    assert [s["stage"]["forecast_category"] for s in board["stages"]] == [
        "pipeline",
        "best_case",
        "commit",
        "closed",
        "omitted",
    ]
    for column in board["stages"]:
        stage = column["stage"]
        planned = [d for d in pipeline.deals.values() if d["stage_id"] == stage["id"]]
        sums: dict[str, list[int]] = {}
        for deal in planned:
            if (money := value(deal)) is not None:
                sums.setdefault(money[0], []).append(money[1])
        expected = {c: [len(a), sum(a), (sum(a) * stage["probability"] + 50) // 100] for c, a in sums.items()}
        got = {
            a["currency_code"]: [a["deal_count"], a["amount_minor"], a["weighted_amount_minor"]]
            for a in column["amounts"]
        }
        assert (column["deal_count"], got) == (len(planned), expected), stage["name"]
        params = {"pipeline_id": pipeline.id, "stage_id": stage["id"], "order_by": column["order_by"], "page_size": 1}
        if stage["outcome"] in ("won", "lost"):
            params["close_time_from"] = board["close_time_from"]
        rest = await every_page(api, params, column["next_page_token"]) if column["next_page_token"] else []
        assert [d["id"] for d in column["deals"] + rest] == [d["id"] for d in await every_page(api, params)]
        assert {d["id"] for d in column["deals"] + rest} == {d["id"] for d in planned}
    missing = await api.get("/api/v1/pipelines/no-such-pipeline/board")
    assert missing.status_code == 404


async def test_the_forecast_weights_each_team_per_currency(api: httpx.AsyncClient, pipeline: Pipeline) -> None:
    response = await api.get("/api/v1/reports/forecast", params={"group_by": "owner_team", "pipeline_id": pipeline.id})
    assert response.status_code == 200, response.text
    rows = {(r["group"], r["currency_code"]): r for r in response.json()["rows"]}
    probability = [s["probability"] for s in STAGES]
    category = ["pipeline", "best_case", "commit"]

    expected: dict[tuple[str, str], dict[str, int]] = {}
    for deal in pipeline.deals.values():
        stage = pipeline.stage_ids.index(deal["stage_id"])
        money = value(deal) or ("", 0)
        row = expected.setdefault(
            (deal["owner_team_id"], money[0]),
            dict.fromkeys(
                (
                    "open_deals",
                    "pipeline_amount_minor",
                    "weighted",
                    "best_case_amount_minor",
                    "commit_amount_minor",
                    "won_deals",
                    "closed_won_amount_minor",
                ),
                0,
            ),
        )
        if deal["status"] == "won":
            row["won_deals"] += 1
            row["closed_won_amount_minor"] += money[1]
            continue
        row["open_deals"] += 1
        row["pipeline_amount_minor"] += money[1]
        row["weighted"] += money[1] * probability[stage]
        row["best_case_amount_minor"] += money[1] if category[stage] in ("best_case", "commit") else 0
        row["commit_amount_minor"] += money[1] if category[stage] == "commit" else 0
    for key, want in expected.items():
        got = rows[key]
        want["weighted_amount_minor"] = (want.pop("weighted") + 50) // 100
        assert {k: got[k] for k in want} == want, key
    assert set(rows) == set(expected)
    backwards = await api.get(
        "/api/v1/reports/forecast", params={"period_start": "2027-02-01", "period_end": "2027-01-01"}
    )
    assert backwards.status_code == 422 and "period_end" in backwards.text


async def test_each_caller_sees_only_their_deals(stack: Stack, pipeline: Pipeline) -> None:
    rep = next(d["owner_rep_id"] for d in pipeline.deals.values() if d["owner_team_id"] == "team-media")
    others = {d["owner_rep_id"] for d in pipeline.deals.values()} - {rep}
    as_rep = stack.auth_headers("sales_rep", subject=rep, team_id="team-media")
    as_manager = stack.auth_headers("sales_manager", team_id="team-digital")
    params = {"pipeline_id": pipeline.id, "page_size": 100}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=as_rep) as http:
        mine = await every_page(http, params)
        asked_other = await http.get("/api/v1/deals", params={"owner_rep_id": sorted(others)[0]})
        board = (await http.get(f"/api/v1/pipelines/{pipeline.id}/board")).json()
        forecast = (
            await http.get("/api/v1/reports/forecast", params={"group_by": "owner_rep", "pipeline_id": pipeline.id})
        ).json()
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=as_manager) as http:
        team = await every_page(http, params)
        other_team = await http.get("/api/v1/deals", params={"owner_team_id": "team-media"})
        team_board = (await http.get(f"/api/v1/pipelines/{pipeline.id}/board")).json()

    own = {d["id"] for d in pipeline.deals.values() if d["owner_rep_id"] == rep}
    assert {d["id"] for d in mine} == own and own
    assert asked_other.status_code == 403
    assert {d["owner_rep_id"] for s in board["stages"] for d in s["deals"]} <= {rep}
    assert sum(s["deal_count"] for s in board["stages"]) == len(own)
    assert {r["group"] for r in forecast["rows"]} == {rep}
    digital = {d["id"] for d in pipeline.deals.values() if d["owner_team_id"] == "team-digital"}
    assert {d["id"] for d in team} == digital
    assert other_team.status_code == 403
    assert sum(s["deal_count"] for s in team_board["stages"]) == len(digital)
