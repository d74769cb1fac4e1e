"""Quotes at the gateway's edge, before any backend call: the body's rules as 422 problems naming
the field, If-Match required on a draft's change, and the PDF's file name made header-safe."""

from __future__ import annotations

import httpx
import pytest

from crm_gateway.features.quotes.routes import _safe_file_name

pytestmark = pytest.mark.unit


async def test_a_discount_over_100_percent_is_a_422_naming_it(client: httpx.AsyncClient, backend) -> None:
    body = {
        "price_list_id": "pl-1",
        "lines": [{"product_id": "p-1", "quantity": 1, "discount_bp": 10_001}, {"product_id": "p-2", "quantity": 0}],
        "discount_bp": 20_000,
        "locale": "de",
    }

    response = await client.post("/api/v1/deals/deal-1/quotes", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"lines.0.discount_bp", "lines.1.quantity", "discount_bp", "locale"}


async def test_a_draft_change_names_its_version_and_a_field(client: httpx.AsyncClient, backend) -> None:
    unconditional = await client.patch("/api/v1/quotes/q-1", json={"notes": "x"})
    empty = await client.patch("/api/v1/quotes/q-1", json={}, headers={"If-Match": "*"})
    unknown = await client.patch("/api/v1/quotes/q-1", json={"status": "accepted"}, headers={"If-Match": "*"})

    assert unconditional.status_code == 428
    assert empty.status_code == 422
    assert unknown.status_code == 422 and [e["field"] for e in unknown.json()["errors"]] == ["status"]


def test_the_pdf_file_name_is_safe_in_a_header() -> None:
    assert _safe_file_name("Q-000042-v2.pdf") == "Q-000042-v2.pdf"
    assert _safe_file_name('Q"; x\r\n.pdf') == "Q___x__.pdf"
    assert _safe_file_name("../../etc/passwd") == "quote.pdf"
    assert _safe_file_name("") == "quote.pdf"


async def test_the_document_url_is_only_the_document(client: httpx.AsyncClient, backend) -> None:
    """/quotes/{id}.pdf and /quotes/{id} never match the same URL: the document is GET only."""
    spec = (await client.get("/openapi.json")).json()
    changed = await client.patch("/api/v1/quotes/q-1.pdf", json={"notes": "x"}, headers={"If-Match": "*"})

    assert set(spec["paths"]["/api/v1/quotes/{quote_id}.pdf"]) == {"get"}
    assert set(spec["paths"]["/api/v1/quotes/{quote_id}"]) == {"get", "patch"}
    assert changed.status_code == 405 and changed.headers["allow"] == "GET, HEAD"
