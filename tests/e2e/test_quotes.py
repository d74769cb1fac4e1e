"""A quote through the real stack: a lead converted to a deal, products and an ILS price list, a
Hebrew quote with discounts sent and printed, accepted — the deal won with the quote's lines for
its net total, the order created, shipped and the SMS sent; and what may not happen (a hidden
deal's quote, an over-100 % discount, a superseded or changed-since quote) refused, changing nothing."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

from .test_golden_path import capture, sms_for, the_order

pytestmark = pytest.mark.e2e


def fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return [e["field"] for e in response.json().get("errors") or []]


async def catalog(manager: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Two products and an ILS price list in force since last month (the catalog's own routes)."""
    made = []
    for names, tax_class in (
        ({"he": "כיסא ארגונומי", "en": "Ergonomic chair", "fa": "صندلی ارگونومیک"}, "standard"),
        ({"he": "ספר הוראות", "en": "Manual"}, "zero"),
    ):
        body = {"sku": f"Q-{uuid.uuid4().hex[:10]}", "names": names, "unit": "unit", "tax_class": tax_class}
        created = await manager.post("/api/v1/products", json=body)
        assert created.status_code == 201, created.text
        made.append(created.json())
    chair, manual = made
    since = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    price_list = await manager.post(
        "/api/v1/price-lists",
        json={
            "name": f"מחירון הצעות {uuid.uuid4().hex[:6]}",
            "currency_code": "ILS",
            "country_code": "IL",
            "valid_from": since,
            "items": [
                {"product_id": chair["id"], "unit_price": {"amount_minor": 129_900}},
                {"product_id": manual["id"], "unit_price": {"amount_minor": 4_990}},
            ],
        },
    )
    assert price_list.status_code == 201, price_list.text
    return chair, manual, price_list.json()


def pdf_text(pdf: bytes) -> str:
    """The PDF's text layer in logical order (poppler's pdftotext; the PDF tests require it too)."""
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


async def test_an_accepted_hebrew_quote_wins_the_deal_and_ends_in_an_order_and_an_sms(
    api: httpx.AsyncClient, sms: httpx.AsyncClient, stack: Stack
) -> None:
    lead = await capture(api)
    converted = await api.post(f"/api/v1/leads/{lead['id']}/convert", json={"title": "ריהוט לסטודיו"})
    assert converted.status_code == 201, converted.text
    deal = converted.json()
    chair, manual, price_list = await catalog(api)

    lines = [
        {"product_id": chair["id"], "quantity": 3, "discount_bp": 1000},
        {"product_id": manual["id"], "quantity": 1},
    ]
    body = {"price_list_id": price_list["id"], "lines": lines, "discount_bp": 500, "bill_to": {"tax_id": "515123456"}}
    created = await api.post(
        f"/api/v1/deals/{deal['id']}/quotes", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert created.status_code == 201, created.text
    quote = created.json()
    assert (quote["status"], quote["version"], quote["locale"], quote["currency_code"]) == ("draft", 1, "he", "ILS")
    assert quote["bill_to"]["name"] == "ריהוט לסטודיו" and quote["lines"][0]["description"] == "כיסא ארגונומי"
    # 3 × 1299.00 less 10 % = 3507.30; the manual 49.90; 5 % off the 3557.20 = 177.86.
    assert (quote["subtotal"]["amount_minor"], quote["discount"]["amount_minor"]) == (355_720, 17_786)
    assert quote["net_total"]["amount_minor"] == 337_934

    path = f"/api/v1/quotes/{quote['id']}"
    sent = await api.post(f"{path}/send", headers={"If-Match": created.headers["etag"]})
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "sent"
    assert sent.json()["quote_date"] == datetime.now(ZoneInfo("Asia/Jerusalem")).date().isoformat()

    pdf = await api.get(f"{path}.pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'inline; filename="{quote["number"]}-v1.pdf"'
    assert pdf.content.startswith(b"%PDF")
    text = pdf_text(pdf.content)
    assert "הצעת מחיר" in text and "כיסא ארגונומי" in text and chair["sku"] in text

    accepted = await api.post(f"{path}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    won = (await api.get(f"/api/v1/deals/{deal['id']}")).json()
    assert won["status"] == "won" and won["total"] == {"amount_minor": 337_934, "currency_code": "ILS"}
    assert sum(i["quantity"] * i["unit_price"]["amount_minor"] for i in won["items"]) == 337_934
    assert {i["sku"] for i in won["items"]} == {chair["sku"], manual["sku"]}

    # The existing order flow: one order from DealClosed, shipped, one SMS.
    order = await the_order(api, deal["id"])
    assert {line["sku"] for line in order["lines"]} == {chair["sku"], manual["sku"]}
    eta = (datetime.now(UTC) + timedelta(days=4)).date().isoformat()
    shipped = await api.post(
        f"/api/v1/orders/{order['id']}/ship",
        json={"carrier": "דואר ישראל", "tracking_number": "RR987654321IL", "estimated_delivery_date": eta},
    )
    assert shipped.status_code == 200, shipped.text
    messages = await eventually(lambda: sms_for(sms, lead["phone_number"]), timeout=30)
    assert len(messages) == 1

    # Accepting again changes nothing; the quote is the same and there is still one order.
    again = await api.post(f"{path}/accept")
    assert again.status_code == 200 and again.json()["etag"] == accepted.json()["etag"]
    assert len((await api.get("/api/v1/orders", params={"deal_id": deal["id"]})).json()["orders"]) == 1


async def test_refused_quote_changes_are_problems_naming_the_rule_and_change_nothing(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    lead = await capture(api)
    deal = (await api.post(f"/api/v1/leads/{lead['id']}/convert", json={"title": "הצעה שנדחתה"})).json()
    chair, _, price_list = await catalog(api)
    base = {"price_list_id": price_list["id"], "lines": [{"product_id": chair["id"], "quantity": 1}]}
    created = await api.post(f"/api/v1/deals/{deal['id']}/quotes", json=base)
    assert created.status_code == 201, created.text
    quote = created.json()
    path = f"/api/v1/quotes/{quote['id']}"

    over_100 = await api.post(
        f"/api/v1/deals/{deal['id']}/quotes", json={**base, "lines": [{**base["lines"][0], "discount_bp": 10_001}]}
    )
    unconditional = await api.patch(path, json={"notes": "x"})
    changed = await api.patch(path, json={"notes": "first"}, headers={"If-Match": created.headers["etag"]})
    stale = await api.patch(path, json={"notes": "lost update"}, headers={"If-Match": created.headers["etag"]})
    sent = await api.post(f"{path}/send")
    immutable = await api.patch(path, json={"notes": "x"}, headers={"If-Match": "*"})
    revised = await api.post(f"{path}/revise")
    superseded = await api.post(f"{path}/accept")
    past = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    expired_date = await api.patch(
        f"/api/v1/quotes/{revised.json()['id']}", json={"valid_until": past}, headers={"If-Match": "*"}
    )
    listed = (await api.get(f"/api/v1/deals/{deal['id']}/quotes")).json()["quotes"]

    assert over_100.status_code == 422 and fields(over_100) == ["lines.0.discount_bp"]
    assert unconditional.status_code == 428
    assert changed.status_code == 200 and changed.json()["notes"] == "first"
    assert stale.status_code == 412 and stale.json()["reason"] == "STALE_ETAG"
    assert sent.status_code == 200 and sent.json()["notes"] == "first"
    assert immutable.status_code == 409 and immutable.json()["reason"] == "QUOTE_NOT_DRAFT"
    assert revised.status_code == 201 and revised.json()["version"] == 2
    assert superseded.status_code == 409 and superseded.json()["reason"] == "QUOTE_SUPERSEDED"
    assert expired_date.status_code == 422 and fields(expired_date) == ["valid_until"]
    assert [(q["version"], q["status"], q["notes"]) for q in listed] == [
        (2, "draft", "first"),
        (1, "superseded", "first"),
    ]
    assert (await api.get(f"/api/v1/deals/{deal['id']}")).json()["status"] == "open"


async def test_a_quote_is_visible_with_its_deal_only(api: httpx.AsyncClient, stack: Stack) -> None:
    lead = await capture(api)  # a radio lead: team-media
    deal = (await api.post(f"/api/v1/leads/{lead['id']}/convert", json={})).json()
    chair, _, price_list = await catalog(api)
    body = {"price_list_id": price_list["id"], "lines": [{"product_id": chair["id"], "quantity": 2}]}
    quote = (await api.post(f"/api/v1/deals/{deal['id']}/quotes", json=body)).json()
    owner = stack.auth_headers("sales_rep", subject=lead["assignment"]["rep_id"], team_id="team-media")
    stranger = stack.auth_headers("sales_rep", subject="rep-sara", team_id="team-digital")
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=owner) as mine,
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stranger) as theirs,
    ):
        own = await mine.get(f"/api/v1/quotes/{quote['id']}")
        hidden = [
            await theirs.get(f"/api/v1/quotes/{quote['id']}"),
            await theirs.get(f"/api/v1/quotes/{quote['id']}.pdf"),
            await theirs.post(f"/api/v1/quotes/{quote['id']}/send"),
            await theirs.get(f"/api/v1/deals/{deal['id']}/quotes"),
        ]
        unknown_id = str(uuid.uuid4())
        missing = await mine.get(f"/api/v1/quotes/{unknown_id}")

    assert own.status_code == 200 and own.json()["id"] == quote["id"]
    assert [r.status_code for r in hidden] == [404, 404, 404, 404]
    # The same answer as for a quote that does not exist: nothing of it shows.
    assert missing.status_code == 404
    assert hidden[0].json() == {**missing.json(), "detail": missing.json()["detail"].replace(unknown_id, quote["id"])}
    assert quote["number"] not in "".join(r.text for r in hidden)
    assert (await api.get(f"/api/v1/quotes/{quote['id']}")).json()["status"] == "draft"
    assert date.fromisoformat(quote["valid_until"]) > datetime.now(UTC).date()
