"""Pipelines, lost reasons and a deal's moves through the gateway: bodies, ETags and If-Match,
and the sales service's errors as the client sees them."""

from __future__ import annotations

import httpx
import pytest

from crm.sales.v1 import pipelines_pb2
from crm_gateway.app import create_app

from .conftest import bearer, running_gateway

pytestmark = pytest.mark.unit

STAGES = [
    {"name": "חדש", "probability": 10},
    {"name": "Proposal", "probability": 60, "required_fields": ["amount", "expected_close_date"]},
    {"name": "Won", "probability": 100, "outcome": "won"},
    {"name": "Lost", "probability": 0, "outcome": "lost"},
]


async def test_create_pipeline_sends_its_stages_and_the_idempotency_key(client: httpx.AsyncClient, backend) -> None:
    body = {"name": "Kitchens", "product_line": "kitchens", "stages": STAGES}

    response = await client.post("/api/v1/pipelines", json=body, headers={"Idempotency-Key": "pipe-key-1"})

    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    created = response.json()
    assert (created["id"], created["etag"], created["active"]) == ("pipe-1", '"1"', True)
    assert [(s["name"], s["outcome"], s["required_fields"]) for s in created["stages"]] == [
        ("חדש", "open", []),
        ("Proposal", "open", ["amount", "expected_close_date"]),
        ("Won", "won", []),
        ("Lost", "lost", []),
    ]
    [sent] = backend.recorder.requests("CreatePipeline")
    assert sent.request_id == "pipe-key-1"
    assert sent.pipeline.stages[2].outcome == pipelines_pb2.STAGE_OUTCOME_WON


async def test_a_bad_stage_is_a_422_naming_it_and_nothing_is_created(client: httpx.AsyncClient, backend) -> None:
    stages = [{**STAGES[0], "probability": 120}, {**STAGES[1], "required_fields": ["colour"]}]

    response = await client.post("/api/v1/pipelines", json={"name": "x", "stages": stages})

    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"stages.0.probability", "stages.1.required_fields.0"} <= fields
    assert backend.recorder.requests("CreatePipeline") == []


async def test_list_and_get_pipelines(client: httpx.AsyncClient, backend) -> None:
    listed = await client.get("/api/v1/pipelines", params={"show_inactive": "true", "page_size": 500})
    one = await client.get("/api/v1/pipelines/default")
    missing = await client.get("/api/v1/pipelines/nope")

    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["pipelines"]] == ["default"]
    [sent] = backend.recorder.requests("ListPipelines")
    assert (sent.show_inactive, sent.page_size) == (True, 100)
    assert (one.status_code, one.headers["etag"], one.json()["stages"][1]["outcome"]) == (200, '"5"', "won")
    assert missing.status_code == 404


async def test_updating_a_pipeline_requires_if_match(client: httpx.AsyncClient, backend) -> None:
    response = await client.patch("/api/v1/pipelines/default", json={"name": "Furniture"})

    assert response.status_code == 428
    assert response.headers["content-type"] == "application/problem+json"
    assert backend.recorder.requests("UpdatePipeline") == []


async def test_updating_a_pipeline_with_its_etag_changes_the_fields_sent(client: httpx.AsyncClient, backend) -> None:
    response = await client.patch("/api/v1/pipelines/default", json={"name": "Furniture"}, headers={"If-Match": '"5"'})

    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.headers["etag"]) == ("Furniture", '"6"')
    [sent] = backend.recorder.requests("UpdatePipeline")
    assert (list(sent.update_mask.paths), sent.etag, sent.pipeline.id) == (["name"], '"5"', "default")


async def test_a_stale_if_match_is_412_and_a_star_changes_whatever_is_there(client: httpx.AsyncClient, backend) -> None:
    stale = await client.patch("/api/v1/pipelines/default", json={"active": False}, headers={"If-Match": '"4"'})
    star = await client.patch("/api/v1/pipelines/default", json={"active": False}, headers={"If-Match": "*"})

    assert stale.status_code == 412
    assert stale.json()["reason"] == "STALE_ETAG"
    assert star.status_code == 200
    assert [r.etag for r in backend.recorder.requests("UpdatePipeline")] == ['"4"', ""]


async def test_a_pipeline_update_naming_no_field_is_refused(client: httpx.AsyncClient, backend) -> None:
    response = await client.patch("/api/v1/pipelines/default", json={}, headers={"If-Match": '"5"'})

    assert response.status_code == 422
    assert backend.recorder.requests("UpdatePipeline") == []


async def test_lost_reasons_carry_their_names_per_language(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/lost-reasons")

    assert response.status_code == 200
    assert response.json() == {
        "lost_reasons": [{"code": "price", "names": {"he": "מחיר", "en": "Price", "fa": "قیمت"}}]
    }


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [("sales_rep", "POST", "/api/v1/pipelines"), ("sales_rep", "PATCH", "/api/v1/pipelines/default")],
)
async def test_reps_read_pipelines_but_do_not_shape_them(backend, settings, issuer, role, method, path) -> None:
    headers = bearer(issuer, role, subject="rep-1", team_id="team-north")
    async with running_gateway(create_app(settings), headers) as http:
        read = await http.get("/api/v1/pipelines")
        write = await http.request(method, path, json={"name": "x", "stages": STAGES}, headers={"If-Match": "*"})

    assert (read.status_code, write.status_code) == (200, 403)


# ---------------------------------------------------------------- a deal's stage, edits and history


async def test_get_deal_shows_its_stage_and_etag(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/deals/deal-1")

    assert response.status_code == 200
    assert response.headers["etag"] == '"3"'
    deal = response.json()
    assert (deal["pipeline_id"], deal["stage_id"], deal["probability"], deal["etag"]) == (
        "default",
        "default-new",
        10,
        '"3"',
    )
    assert (deal["amount"], deal["expected_close_date"], deal["lost_reason_code"]) == (None, None, "")


async def test_move_deal_stage_sends_if_match_and_answers_the_new_etag(client: httpx.AsyncClient, backend) -> None:
    response = await client.post(
        "/api/v1/deals/deal-1/stage", json={"stage_id": "default-qualified"}, headers={"If-Match": '"3"'}
    )

    assert response.status_code == 200, response.text
    assert (response.json()["stage_id"], response.headers["etag"]) == ("default-qualified", '"4"')
    [sent] = backend.recorder.requests("MoveDealStage")
    assert (sent.deal_id, sent.stage_id, sent.etag) == ("deal-1", "default-qualified", '"3"')


async def test_a_stage_whose_required_fields_are_empty_is_409_naming_each(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/deals/deal-1/stage", json={"stage_id": "needs-amount"})

    assert response.status_code == 409
    problem = response.json()
    assert problem["reason"] == "REQUIRED_FIELDS_MISSING"
    assert [e["field"] for e in problem["errors"]] == ["amount"]


async def test_a_move_without_a_stage_is_422_naming_it(client: httpx.AsyncClient, backend) -> None:
    response = await client.post("/api/v1/deals/deal-1/stage", json={})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["stage_id"]
    assert backend.recorder.requests("MoveDealStage") == []


async def test_update_deal_sends_only_the_fields_in_the_body(client: httpx.AsyncClient, backend) -> None:
    body = {"amount": {"amount_minor": 1_250_000, "currency_code": "ILS"}, "expected_close_date": "2030-03-31"}

    response = await client.patch("/api/v1/deals/deal-1", json=body, headers={"If-Match": '"3"'})

    assert response.status_code == 200, response.text
    deal = response.json()
    assert (deal["amount"], deal["expected_close_date"]) == (body["amount"], "2030-03-31")
    assert response.headers["etag"] == '"4"'
    [sent] = backend.recorder.requests("UpdateDeal")
    assert (list(sent.update_mask.paths), sent.etag) == (["amount", "expected_close_date"], '"3"')
    assert (sent.deal.expected_close_date.year, sent.deal.amount.amount_minor) == (2030, 1_250_000)


async def test_update_deal_null_clears_and_bad_fields_are_named(client: httpx.AsyncClient, backend) -> None:
    cleared = await client.patch("/api/v1/deals/deal-1", json={"amount": None})
    bad = await client.patch("/api/v1/deals/deal-1", json={"expected_close_date": 20300331, "title": ""})
    empty = await client.patch("/api/v1/deals/deal-1", json={})

    assert cleared.status_code == 200
    [sent] = backend.recorder.requests("UpdateDeal")
    assert (list(sent.update_mask.paths), sent.deal.HasField("amount")) == (["amount"], False)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"expected_close_date", "title"}
    assert empty.status_code == 422


async def test_stage_history_lists_each_entry_with_time_in_stage(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/deals/deal-1/stage-history")

    assert response.status_code == 200
    entries = response.json()["entries"]
    assert [(e["from_stage_id"], e["to_stage_id"], e["seconds_in_previous_stage"]) for e in entries] == [
        ("", "default-new", 0),
        ("default-new", "default-qualified", 600),
    ]
    assert entries[1]["move_time"] == "2023-11-14T22:23:20Z"


async def test_close_lost_sends_the_reason_code_and_if_match(client: httpx.AsyncClient, backend) -> None:
    response = await client.post(
        "/api/v1/deals/deal-1/close",
        json={"outcome": "lost", "lost_reason": "cheaper elsewhere", "lost_reason_code": "price"},
        headers={"If-Match": '"3"'},
    )

    assert response.status_code == 200
    [sent] = backend.recorder.requests("CloseDeal")
    assert (sent.lost_reason_code, sent.lost_reason, sent.etag) == ("price", "cheaper elsewhere", '"3"')


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/deals/deal-1/stage", {"stage_id": "default-qualified"}),
        ("PATCH", "/api/v1/deals/deal-1", {"title": "x"}),
        ("GET", "/api/v1/deals/deal-1/stage-history", None),
    ],
)
async def test_another_teams_rep_gets_404_and_changes_nothing(backend, settings, issuer, method, path, body) -> None:
    headers = bearer(issuer, "sales_rep", subject="rep-9", team_id="team-south")
    async with running_gateway(create_app(settings), headers) as http:
        response = await http.request(method, path, json=body)

    assert response.status_code == 404
    assert [name for name, _, _ in backend.recorder.calls] == ["GetDeal"]
