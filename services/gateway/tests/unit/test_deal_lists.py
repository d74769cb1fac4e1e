"""Deal lists, a pipeline's board and the forecast through the gateway: query parameters become the
sales request, each caller is held to their own deals (the filter is forced, another's is 403), and
bad parameters are a 422 naming them before any backend is asked."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crm.sales.v1 import deals_pb2
from crm_kit.dev_issuer import DevIssuer

from .conftest import bearer

pytestmark = pytest.mark.unit


def as_(issuer: DevIssuer, role: str, **claims: Any) -> dict[str, str]:
    return bearer(issuer, role, **claims)


async def test_the_filters_become_the_list_request(client: httpx.AsyncClient, backend) -> None:
    params = {
        "pipeline_id": "default",
        "stage_id": "default-new",
        "status": "open",
        "owner_team_id": "team-north",
        "expected_close_from": "2027-01-01",
        "expected_close_to": "2027-03-31",
        "amount_currency_code": "ILS",
        "amount_min_minor": 0,
        "amount_max_minor": 500_000,
        "close_time_from": "2027-01-01T00:00:00",
        "title_contains": "ספה",
        "order_by": "create_time desc",
        "page_size": 500,
        "page_token": "p1",
    }

    response = await client.get("/api/v1/deals", params=params)

    assert response.status_code == 200, response.text
    assert [d["id"] for d in response.json()["deals"]] == ["deal-1", "deal-2"]
    assert response.json()["next_page_token"] == "p2"
    [sent] = backend.recorder.requests("ListDeals")
    assert (sent.pipeline_id, sent.stage_id, sent.status) == ("default", "default-new", deals_pb2.DEAL_STATUS_OPEN)
    assert (sent.owner_rep_id, sent.owner_team_id) == ("", "team-north")
    assert (sent.expected_close_from.year, sent.expected_close_to.month) == (2027, 3)
    assert sent.amount_currency_code == "ILS"
    assert sent.HasField("amount_min_minor") and sent.amount_min_minor == 0 and sent.amount_max_minor == 500_000
    assert sent.close_time_from.ToSeconds() == 1798761600  # no zone: UTC
    assert (sent.title_contains, sent.order_by, sent.page_size, sent.page_token) == (
        "ספה",
        "create_time desc",
        100,
        "p1",
    )


async def test_unset_filters_stay_unset(client: httpx.AsyncClient, backend) -> None:
    response = await client.get("/api/v1/deals")

    assert response.status_code == 200, response.text
    [sent] = backend.recorder.requests("ListDeals")
    assert sent.status == deals_pb2.DEAL_STATUS_UNSPECIFIED
    assert not sent.HasField("amount_min_minor") and not sent.HasField("expected_close_from")
    assert sent.order_by == "expected_close_date"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"amount_min_minor": -1}, "amount_min_minor"),
        ({"amount_currency_code": "ils"}, "amount_currency_code"),
        ({"status": "archived"}, "status"),
        ({"order_by": "title"}, "order_by"),
        ({"expected_close_from": "31/01/2027"}, "expected_close_from"),
        ({"title_contains": "x" * 101}, "title_contains"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_it(
    client: httpx.AsyncClient, backend, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/v1/deals", params=params)

    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert backend.recorder.requests("ListDeals") == []


@pytest.mark.parametrize("path", ["/api/v1/deals", "/api/v1/pipelines/default/board", "/api/v1/reports/forecast"])
async def test_a_rep_gets_their_own_and_a_manager_their_teams(
    client: httpx.AsyncClient, backend, issuer: DevIssuer, path: str
) -> None:
    rep = await client.get(path, headers=as_(issuer, "sales_rep", subject="rep-7", team_id="team-north"))
    manager = await client.get(path, headers=as_(issuer, "sales_manager", team_id="team-north"))
    admin = await client.get(path, params={"owner_rep_id": "rep-9"})

    assert (rep.status_code, manager.status_code, admin.status_code) == (200, 200, 200)
    sent = [r for m in ("ListDeals", "GetPipelineBoard", "GetForecast") for r in backend.recorder.requests(m)]
    assert [(r.owner_rep_id, r.owner_team_id) for r in sent] == [("rep-7", ""), ("", "team-north"), ("rep-9", "")]


@pytest.mark.parametrize("path", ["/api/v1/deals", "/api/v1/pipelines/default/board", "/api/v1/reports/forecast"])
async def test_asking_for_anothers_deals_is_403(
    client: httpx.AsyncClient, backend, issuer: DevIssuer, path: str
) -> None:
    rep = await client.get(
        path, params={"owner_rep_id": "rep-8"}, headers=as_(issuer, "sales_rep", subject="rep-7", team_id="t")
    )
    manager = await client.get(
        path, params={"owner_team_id": "team-south"}, headers=as_(issuer, "sales_manager", team_id="team-north")
    )

    assert (rep.status_code, manager.status_code) == (403, 403)
    assert rep.headers["content-type"] == "application/problem+json"
    assert backend.recorder.calls == []


async def test_the_board_maps_each_stage_and_a_missing_pipeline_is_404(client: httpx.AsyncClient, backend) -> None:
    response = await client.get(
        "/api/v1/pipelines/default/board", params={"deals_per_stage": 5, "close_time_from": "2027-01-01T00:00:00Z"}
    )
    missing = await client.get("/api/v1/pipelines/nope/board")
    too_many = await client.get("/api/v1/pipelines/default/board", params={"deals_per_stage": 51})

    assert response.status_code == 200, response.text
    [column] = response.json()["stages"]
    assert column["stage"]["forecast_category"] == "pipeline"
    assert (column["deal_count"], column["next_page_token"], column["order_by"]) == (
        2,
        "next-of-new",
        "expected_close_date",
    )
    assert column["amounts"] == [
        {"currency_code": "ILS", "deal_count": 1, "amount_minor": 1_000, "weighted_amount_minor": 100}
    ]
    assert [d["id"] for d in column["deals"]] == ["deal-1"]
    assert response.json()["close_time_from"].startswith("2023-11-14")
    [sent, _] = backend.recorder.requests("GetPipelineBoard")
    assert (sent.pipeline_id, sent.deals_per_stage, sent.close_time_from.ToSeconds()) == ("default", 5, 1798761600)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert too_many.status_code == 422


async def test_the_forecast_maps_its_grouping_and_period(client: httpx.AsyncClient, backend) -> None:
    response = await client.get(
        "/api/v1/reports/forecast",
        params={"group_by": "owner_team", "period_start": "2027-01-01", "period_end": "2027-03-31"},
    )
    default = await client.get("/api/v1/reports/forecast")
    bad = await client.get("/api/v1/reports/forecast", params={"group_by": "source"})

    assert response.status_code == 200, response.text
    [row] = response.json()["rows"]
    assert (row["group"], row["weighted_amount_minor"], row["closed_won_amount_minor"]) == ("rep-1", 900, 5_000)
    first, second = backend.recorder.requests("GetForecast")
    assert first.group_by == deals_pb2.FORECAST_GROUP_BY_OWNER_TEAM
    assert (first.period_start.month, first.period_end.day) == (1, 31)
    assert second.group_by == deals_pb2.FORECAST_GROUP_BY_MONTH and not second.HasField("period_start")
    assert default.status_code == 200
    assert bad.status_code == 422
