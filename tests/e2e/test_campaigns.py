"""Sources, campaigns and CSV lead imports through the gateway, on the running system: a marketing
user creates a campaign with its cost, imports its Hebrew and Persian lead list, and every lead is
routed to a rep; a broken list is reported row by row and creates nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e

CSV = {"Content-Type": "text/csv; charset=utf-8"}


def phone(prefix: str = "054") -> str:
    return f"{prefix}-{uuid.uuid4().int % 10_000_000:07d}"


def iranian_phone() -> str:
    digits = f"{uuid.uuid4().int % 10_000_000:07d}"
    return f"0912 {digits[:3]} {digits[3:]}"


@pytest.fixture
async def marketing(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = stack.auth_headers("marketing", subject="maya-marketing")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30, headers=headers) as client:
        yield client


async def create_campaign(client: httpx.AsyncClient, source: str = "radio", **extra: Any) -> dict[str, Any]:
    body = {
        "source": source,
        "name": f"גלי צה״ל — {uuid.uuid4().hex[:6]}",
        "starts_on": "2026-12-01",
        "ends_on": "2027-01-31",
        "budget": {"amount_minor": 4_500_000, "currency_code": "ILS"},
        **extra,
    }
    response = await client.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def finished(client: httpx.AsyncClient, import_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        response = await client.get(f"/api/v1/lead-imports/{import_id}")
        assert response.status_code == 200, response.text
        body = dict(response.json())
        return body if body["status"] in ("completed", "rejected") else None

    result: dict[str, Any] = await eventually(done, timeout=60)
    return result


async def test_marketing_imports_a_campaigns_hebrew_and_persian_list_and_every_lead_is_routed(
    marketing: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    campaign = await create_campaign(marketing)
    cost = await marketing.patch(
        f"/api/v1/campaigns/{campaign['id']}", json={"actual_cost": {"amount_minor": 3_900_000, "currency_code": "ILS"}}
    )
    assert cost.status_code == 200, cost.text
    assert cost.json()["actual_cost"] == {"amount_minor": 3_900_000, "currency_code": "ILS"}
    assert cost.json()["budget"]["amount_minor"] == 4_500_000

    people = [
        ("דנה כהן", phone("050"), "תל אביב", "he-IL"),
        ("יוסי לוי", phone("052"), "חיפה", "he-IL"),
        ("مریم احمدی", iranian_phone(), "تهران", "fa-IR"),
        ('علی "رضایی"', iranian_phone(), "اصفهان\nمرکز", "fa-IR"),
    ]

    def quoted(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    lines = ["full_name,phone_number,city,locale"] + [",".join(quoted(v) for v in person) for person in people]
    body = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
    key = str(uuid.uuid4())
    uploaded = await marketing.post(
        "/api/v1/lead-imports",
        params={"source": "radio", "campaign": campaign["name"], "file_name": "רשימה.csv"},
        content=body,
        headers={**CSV, "Idempotency-Key": key},
    )
    assert uploaded.status_code == 201, uploaded.text
    report = uploaded.json()
    assert (report["rows_read"], report["rows_valid"], report["error_count"]) == (4, 4, 0)
    assert report["campaign_id"] == campaign["id"] and report["create_actor"] == "maya-marketing"
    # A list this size is routed within the upload's own request.
    assert report["status"] == "completed"
    assert (report["rows_imported"], report["duplicates"]) == (4, 0)
    assert (await finished(marketing, report["id"]))["rows_imported"] == 4

    again = await marketing.post(
        "/api/v1/lead-imports", params={"source": "radio"}, content=b"whatever", headers={**CSV, "Idempotency-Key": key}
    )
    assert again.status_code == 201 and again.json()["id"] == report["id"]

    listed = await api.get("/api/v1/leads", params={"campaign_id": campaign["id"], "page_size": 100})
    assert listed.status_code == 200, listed.text
    leads = listed.json()["leads"]
    assert sorted(lead["full_name"] for lead in leads) == sorted(p[0] for p in people)
    assert all(lead["assignment"]["rep_id"] and lead["campaign"] == campaign["name"] for lead in leads)
    assert {lead["locale"] for lead in leads} == {"he-IL", "fa-IR"}
    imports = (await marketing.get("/api/v1/lead-imports")).json()["lead_imports"]
    assert report["id"] in {i["id"] for i in imports}

    # What the campaign cost and returned: one imported lead becomes a won deal.
    deal = await api.post(f"/api/v1/leads/{leads[0]['id']}/convert", json={})
    assert deal.status_code == 201, deal.text
    won = {
        "outcome": "won",
        "items": [{"sku": "SOFA", "quantity": 1, "unit_price": {"amount_minor": 7_800_000, "currency_code": "ILS"}}],
    }
    closed = await api.post(f"/api/v1/deals/{deal.json()['id']}/close", json=won)
    assert closed.status_code == 200, closed.text

    async def reported() -> dict[str, Any] | None:
        response = await marketing.get("/api/v1/reports/campaigns", params={"source": "radio"})
        assert response.status_code == 200, response.text
        rows = [r for r in response.json()["rows"] if r["campaign_id"] == campaign["id"]]
        return rows[0] if rows and rows[0]["won_deals"] == 1 and rows[0]["leads"] == 4 else None

    row = await eventually(reported, timeout=30)
    assert row["cost"] == {"amount_minor": 3_900_000, "currency_code": "ILS"}
    assert row["revenue"] == [{"amount_minor": 7_800_000, "currency_code": "ILS"}]
    assert row["cost_per_lead"] == {"amount_minor": 975_000, "currency_code": "ILS"}
    assert row["return_on_cost"] == 2.0


async def test_a_list_with_bad_rows_reports_each_row_and_line_and_creates_nothing(
    marketing: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    campaign = await create_campaign(marketing, source="press")
    body = (f'full_name,phone_number,email\nשרה,{phone()},\n"",12,"a\nb"\nמשה,{phone()},\nרק שם,,\n').encode()
    uploaded = await marketing.post(
        "/api/v1/lead-imports", params={"source": "press", "campaign": campaign["id"]}, content=body, headers=CSV
    )
    assert uploaded.status_code == 201, uploaded.text
    report = uploaded.json()
    assert report["status"] == "rejected" and report["rows_imported"] == 0
    cells = {(e["row_number"], e["line_number"], e["field"]) for e in report["errors"]}
    assert {(2, 3, "full_name"), (2, 3, "phone_number"), (2, 3, "email"), (4, 6, "phone_number")} <= cells
    assert report["error_count"] == len(report["errors"])
    fetched = await marketing.get(f"/api/v1/lead-imports/{report['id']}")
    assert fetched.json()["errors"] == report["errors"]
    listed = await api.get("/api/v1/leads", params={"campaign_id": campaign["id"]})
    assert listed.json()["leads"] == []


async def test_a_bad_header_or_encoding_is_rejected_and_the_global_body_cap_does_not_apply(
    marketing: httpx.AsyncClient,
) -> None:
    unknown = await marketing.post(
        "/api/v1/lead-imports", params={"source": "radio"}, content="name,tel\nדנה,050\n".encode(), headers=CSV
    )
    assert unknown.status_code == 201 and unknown.json()["status"] == "rejected"
    assert "'name'" in unknown.json()["reject_reason"] and "'tel'" in unknown.json()["reject_reason"]
    latin = await marketing.post(
        "/api/v1/lead-imports",
        params={"source": "radio"},
        content="full_name,phone_number\nדנה,050\n".encode("cp1255"),
        headers=CSV,
    )
    assert latin.json()["status"] == "rejected" and "UTF-8" in latin.json()["reject_reason"]
    # Over the 1 MiB cap of JSON bodies: blank lines, then one bad row, far down the file.
    big = b"full_name,phone_number\n" + b"\n" * 1_200_000 + "דנה,12\n".encode()
    response = await marketing.post("/api/v1/lead-imports", params={"source": "radio"}, content=big, headers=CSV)
    assert response.status_code == 201, response.text
    assert [(e["row_number"], e["line_number"]) for e in response.json()["errors"]] == [(1, 1_200_002)]
    not_csv = await marketing.post("/api/v1/lead-imports", params={"source": "radio"}, json={"a": 1})
    assert not_csv.status_code == 415


async def test_unknown_campaigns_and_sources_are_422_naming_the_field(
    marketing: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    capture = {"full_name": "דנה", "phone_number": phone(), "source": "radio", "campaign": "אין כזה"}
    response = await marketing.post("/api/v1/leads", json=capture)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["campaign"]

    upload = await marketing.post(
        "/api/v1/lead-imports", params={"source": "radio", "campaign": "אין כזה"}, content=b"x", headers=CSV
    )
    assert upload.status_code == 422 and "campaign" in {e["field"] for e in upload.json()["errors"]}

    code = f"podcast_{uuid.uuid4().hex[:8]}"
    unknown_source = await api.post("/api/v1/leads", json={**capture, "source": code, "campaign": ""})
    assert unknown_source.status_code == 422
    assert [e["field"] for e in unknown_source.json()["errors"]] == ["source"]
    assert (await marketing.post("/api/v1/sources", json={"code": code, "display_name": "פודקאסט"})).status_code == 403
    created = await api.post("/api/v1/sources", json={"code": code, "display_name": "פודקאסט"})
    assert created.status_code == 201, created.text
    assert (await api.post("/api/v1/sources", json={"code": code, "display_name": "x"})).status_code == 409
    assert code in {s["code"] for s in (await marketing.get("/api/v1/sources")).json()["sources"]}
    captured = await api.post("/api/v1/leads", json={**capture, "source": code, "campaign": ""})
    assert captured.status_code == 201, captured.text

    campaign = await create_campaign(marketing, source=code)
    duplicate = await marketing.post("/api/v1/campaigns", json={"source": code, "name": campaign["name"]})
    assert duplicate.status_code == 409
    listed = await marketing.get("/api/v1/campaigns", params={"source": code})
    assert [c["id"] for c in listed.json()["campaigns"]] == [campaign["id"]]
    assert (await marketing.get(f"/api/v1/campaigns/{uuid.uuid4()}")).status_code == 404


async def test_the_demo_data_names_only_campaigns_of_the_catalogue(stack: Stack, api: httpx.AsyncClient) -> None:
    await stack.load_demo_data()
    await stack.load_demo_data()  # idempotent: `make run` loads it on every start
    campaigns = (await api.get("/api/v1/campaigns", params={"source": "radio", "page_size": 100})).json()["campaigns"]
    [spring] = [c for c in campaigns if c["name"] == "radio-spring"]
    listed = (await api.get("/api/v1/leads", params={"campaign_id": spring["id"]})).json()["leads"]
    assert {lead["full_name"] for lead in listed} >= {"דנה לוי", "فاطمه حسینی"}
