"""A sales manager's pipeline and a deal moving through stages, through the real stack: ETags and
If-Match on both, the stage history, and a won close still ending in an order."""

from __future__ import annotations

import uuid

import httpx
import pytest

from crm_devstack.stack import Stack

from .test_golden_path import ITEMS, capture, the_order

pytestmark = pytest.mark.e2e

STAGES = [
    {"name": "פנייה", "probability": 10},
    {"name": "הצעת מחיר", "probability": 60, "required_fields": ["amount", "expected_close_date"]},
    {"name": "Won", "probability": 100, "outcome": "won"},
    {"name": "Lost", "probability": 0, "outcome": "lost"},
]


async def test_a_manager_shapes_a_pipeline_with_etags(stack: Stack) -> None:
    headers = stack.auth_headers("sales_manager", team_id="team-media")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as manager:
        body = {"name": f"מטבחים {uuid.uuid4().hex[:6]}", "product_line": "kitchens", "stages": STAGES}
        created = await manager.post("/api/v1/pipelines", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert created.status_code == 201, created.text
        pipeline = created.json()
        path = f"/api/v1/pipelines/{pipeline['id']}"
        read = await manager.get(path)
        unconditional = await manager.patch(path, json={"name": "x"})
        renamed = await manager.patch(
            path, json={"name": body["name"] + " II"}, headers={"If-Match": read.headers["etag"]}
        )
        stale = await manager.patch(path, json={"name": "lost update"}, headers={"If-Match": read.headers["etag"]})
        after = (await manager.get(path)).json()

    assert [s["required_fields"] for s in pipeline["stages"]][:2] == [[], ["amount", "expected_close_date"]]
    assert read.headers["etag"] == pipeline["etag"]
    assert unconditional.status_code == 428
    assert renamed.status_code == 200, renamed.text
    assert renamed.headers["etag"] != read.headers["etag"]
    assert stale.status_code == 412 and stale.json()["reason"] == "STALE_ETAG"
    assert after["name"] == body["name"] + " II"


async def test_a_deal_moves_stage_by_stage_and_closes_won_into_an_order(api: httpx.AsyncClient) -> None:
    lead = await capture(api)
    converted = await api.post(f"/api/v1/leads/{lead['id']}/convert", json={"title": "מטבח חדש"})
    assert converted.status_code == 201, converted.text
    deal_path = f"/api/v1/deals/{converted.json()['id']}"
    opened = await api.get(deal_path)
    assert (opened.json()["pipeline_id"], opened.json()["stage_id"]) == ("default", "default-new")

    moved = await api.post(
        f"{deal_path}/stage", json={"stage_id": "default-qualified"}, headers={"If-Match": opened.headers["etag"]}
    )
    stale = await api.post(
        f"{deal_path}/stage", json={"stage_id": "default-proposal"}, headers={"If-Match": opened.headers["etag"]}
    )
    filled = await api.patch(
        deal_path,
        json={"amount": {"amount_minor": 2_500_000, "currency_code": "ILS"}, "expected_close_date": "2030-06-30"},
        headers={"If-Match": moved.headers["etag"]},
    )
    unknown_stage = await api.post(f"{deal_path}/stage", json={"stage_id": "no-such-stage"})
    history = await api.get(f"{deal_path}/stage-history")
    closed = await api.post(f"{deal_path}/close", json={"outcome": "won", "items": ITEMS})

    assert moved.status_code == 200, moved.text
    assert (moved.json()["stage_id"], moved.json()["probability"]) == ("default-qualified", 30)
    assert stale.status_code == 412 and stale.json()["reason"] == "STALE_ETAG"
    assert filled.status_code == 200, filled.text
    assert filled.json()["amount"] == {"amount_minor": 2_500_000, "currency_code": "ILS"}
    assert unknown_stage.status_code == 422
    assert [e["field"] for e in unknown_stage.json()["errors"]] == ["stage_id"]
    assert [(e["from_stage_id"], e["to_stage_id"]) for e in history.json()["entries"]] == [
        ("", "default-new"),
        ("default-new", "default-qualified"),
    ]
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["stage_id"]) == ("won", "default-won")
    await the_order(api, closed.json()["id"])


async def test_a_lead_converts_into_a_chosen_pipeline_whose_stage_needs_fields(api: httpx.AsyncClient) -> None:
    body = {"name": f"מטבחים {uuid.uuid4().hex[:6]}", "product_line": "kitchens", "stages": STAGES}
    pipeline = (await api.post("/api/v1/pipelines", json=body)).json()
    retired = (await api.post("/api/v1/pipelines", json={**body, "name": body["name"] + " old"})).json()
    await api.patch(f"/api/v1/pipelines/{retired['id']}", json={"active": False}, headers={"If-Match": "*"})
    lead = await capture(api)
    convert = f"/api/v1/leads/{lead['id']}/convert"

    unknown = await api.post(convert, json={"pipeline_id": "no-such-pipeline"})
    inactive = await api.post(convert, json={"pipeline_id": retired["id"]})
    still_new = await api.get(f"/api/v1/leads/{lead['id']}")
    converted = await api.post(convert, json={"title": "מטבח", "pipeline_id": pipeline["id"]})
    again = await api.post(convert, json={})
    deal_path = f"/api/v1/deals/{converted.json()['id']}"
    quote_stage = pipeline["stages"][1]["id"]
    needs_fields = await api.post(f"{deal_path}/stage", json={"stage_id": quote_stage})
    unmoved = await api.get(deal_path)

    for refused in (unknown, inactive):
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["pipeline_id"]
    assert still_new.json()["status"] != "converted"
    assert converted.status_code == 201, converted.text
    assert (converted.json()["pipeline_id"], converted.json()["stage_id"]) == (
        pipeline["id"],
        pipeline["stages"][0]["id"],
    )
    assert again.json()["pipeline_id"] == pipeline["id"]
    assert needs_fields.status_code == 409, needs_fields.text
    assert {e["field"] for e in needs_fields.json()["errors"]} == {"amount", "expected_close_date"}
    assert unmoved.json()["stage_id"] == pipeline["stages"][0]["id"]
