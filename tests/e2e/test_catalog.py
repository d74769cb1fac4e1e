"""A sales manager's catalog through the real stack: products named in Hebrew, English and Persian
with unique SKUs, an ILS price list whose items are priced under its ETag, the VAT rates with
Israel's 2025 raise, who may change what, and every bad input a 4xx problem naming its field that
changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from crm_devstack.demo_data import DEMO_CATALOG, DEMO_PRICE_LISTS
from crm_devstack.stack import Stack

pytestmark = pytest.mark.e2e


def sku() -> str:
    return f"CAT-{uuid.uuid4().hex[:10]}"


def fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return [e["field"] for e in response.json()["errors"]]


async def test_a_manager_keeps_products_and_a_price_list_and_a_rep_reads_them(stack: Stack) -> None:
    manager_headers = stack.auth_headers("sales_manager", team_id="team-media")
    rep_headers = stack.auth_headers("sales_rep", subject="rep-sara", team_id="team-digital")
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=manager_headers) as manager,
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=rep_headers) as rep,
    ):
        desk = {
            "sku": sku(),
            "names": {"he": "שולחן עבודה", "en": "Desk", "fa": "میز کار"},
            "unit": "unit",
            "tax_class": "standard",
            "product_line": "office",
        }
        created = await manager.post("/api/v1/products", json=desk, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert created.status_code == 201, created.text
        product = created.json()
        hours = await manager.post(
            "/api/v1/products", json={"sku": sku(), "names": {"he": "שעת התקנה"}, "unit": "hour"}
        )
        assert hours.status_code == 201, hours.text
        install = hours.json()

        made = await manager.post(
            "/api/v1/price-lists",
            json={
                "name": "מחירון משרדים 2026",
                "currency_code": "ILS",
                "country_code": "IL",
                "valid_from": "2026-01-01",
                "valid_to": "2026-12-31",
                "items": [{"product_id": product["id"], "unit_price": {"amount_minor": 189_000}}],
            },
        )
        assert made.status_code == 201, made.text
        price_list = made.json()
        path = f"/api/v1/price-lists/{price_list['id']}"

        priced = await manager.put(
            f"{path}/items/{install['id']}",
            json={"unit_price": {"amount_minor": 35_000, "currency_code": "ILS"}},
            headers={"If-Match": made.headers["etag"]},
        )
        stale = await manager.put(
            f"{path}/items/{install['id']}",
            json={"unit_price": {"amount_minor": 1}},
            headers={"If-Match": made.headers["etag"]},
        )
        in_dollars = await manager.put(
            f"{path}/items/{install['id']}", json={"unit_price": {"amount_minor": 100, "currency_code": "USD"}}
        )
        unconditional = await manager.patch(path, json={"name": "x"})
        fixed_currency = await manager.patch(path, json={"currency_code": "USD"}, headers={"If-Match": "*"})
        backwards = await manager.patch(path, json={"valid_to": "2025-12-31"}, headers={"If-Match": "*"})
        read_by_rep = await rep.get(path)
        rep_writes = await rep.put(f"{path}/items/{install['id']}", json={"unit_price": {"amount_minor": 1}})
        removed = await manager.delete(f"{path}/items/{product['id']}", headers={"If-Match": priced.headers["etag"]})
        removed_again = await manager.delete(f"{path}/items/{product['id']}")
        after = (await rep.get(path)).json()
        missing = await rep.get("/api/v1/price-lists/no-such-list")

    assert [(i["product_id"], i["unit_price"]) for i in price_list["items"]] == [
        (product["id"], {"amount_minor": 189_000, "currency_code": "ILS"})
    ]
    assert priced.status_code == 200, priced.text
    assert priced.json() == {
        "product_id": install["id"],
        "unit_price": {"amount_minor": 35_000, "currency_code": "ILS"},
        "sku": install["sku"],
    }
    assert priced.headers["etag"] != made.headers["etag"]
    assert stale.status_code == 412 and stale.json()["reason"] == "STALE_ETAG"
    assert in_dollars.status_code == 422 and fields(in_dollars) == ["unit_price.currency_code"]
    assert unconditional.status_code == 428
    assert fixed_currency.status_code == 422 and fields(fixed_currency) == ["currency_code"]
    assert backwards.status_code == 422 and fields(backwards) == ["valid_to"]
    assert read_by_rep.status_code == 200
    assert rep_writes.status_code == 403
    assert (removed.status_code, removed_again.status_code) == (204, 204)
    assert removed_again.headers["etag"] == removed.headers["etag"] != priced.headers["etag"]
    # Nothing the refused calls sent landed: the install hours keep their price, the list its dates.
    assert [(i["product_id"], i["unit_price"]["amount_minor"]) for i in after["items"]] == [(install["id"], 35_000)]
    assert (after["valid_from"], after["valid_to"], after["currency_code"]) == ("2026-01-01", "2026-12-31", "ILS")
    assert missing.status_code == 404


async def test_products_have_unique_skus_names_in_a_language_and_deactivate(stack: Stack) -> None:
    headers = stack.auth_headers("sales_manager", team_id="team-media")
    desk = {"sku": sku(), "names": {"he": "שולחן עבודה", "en": "Desk", "fa": "میز کار"}, "product_line": "office"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as manager:
        created = await manager.post("/api/v1/products", json=desk)
        assert created.status_code == 201, created.text
        product = created.json()
        taken = await manager.post("/api/v1/products", json={**desk, "names": {"en": "Another desk"}})
        nameless = await manager.post("/api/v1/products", json={"sku": sku(), "names": {}})
        blank = await manager.post("/api/v1/products", json={"sku": sku(), "names": {"he": "  "}})
        unconditional = await manager.patch(f"/api/v1/products/{product['id']}", json={"active": False})
        deactivated = await manager.patch(
            f"/api/v1/products/{product['id']}", json={"active": False}, headers={"If-Match": created.headers["etag"]}
        )
        listed = await manager.get("/api/v1/products", params={"product_line": "office", "page_size": 100})
        everything = await manager.get(
            "/api/v1/products", params={"product_line": "office", "page_size": 100, "show_inactive": "true"}
        )

    assert product["names"] == {"he": "שולחן עבודה", "en": "Desk", "fa": "میز کار"}
    assert (product["unit"], product["tax_class"], created.headers["etag"]) == ("unit", "standard", product["etag"])
    assert taken.status_code == 409 and fields(taken) == ["sku"] and taken.json()["reason"] == "SKU_TAKEN"
    assert nameless.status_code == 422 and fields(nameless) == ["names"]
    assert blank.status_code == 422
    assert unconditional.status_code == 428
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    assert product["id"] not in {p["id"] for p in listed.json()["products"]}
    assert product["id"] in {p["id"] for p in everything.json()["products"]}


async def test_bad_price_lists_name_their_field_and_create_nothing(api: httpx.AsyncClient) -> None:
    product = (await api.post("/api/v1/products", json={"sku": sku(), "names": {"en": "Chair"}})).json()
    good: dict[str, Any] = {
        "name": f"bad lists {uuid.uuid4().hex[:6]}",
        "currency_code": "ILS",
        "country_code": "IL",
        "valid_from": "2026-01-01",
    }
    cases = [
        ({"currency_code": "GBP"}, ["currency_code"]),
        ({"valid_to": "2025-06-30"}, ["valid_to"]),
        (
            {"items": [{"product_id": product["id"], "unit_price": {"amount_minor": -1}}]},
            ["items.0.unit_price.amount_minor"],
        ),
        ({"items": [{"product_id": "no-such-product", "unit_price": {"amount_minor": 1}}]}, ["items[0].product_id"]),
        ({"country_code": "FR"}, ["country_code"]),
        (
            {
                "currency_code": "IRR",
                "country_code": "IR",
                "items": [{"product_id": product["id"], "unit_price": {"amount_minor": 150}}],
            },
            ["items[0].unit_price.amount_minor"],
        ),
    ]
    for change, named in cases:
        response = await api.post("/api/v1/price-lists", json={**good, **change})
        assert response.status_code == 422, (change, response.text)
        assert fields(response) == named, change
    listed = await api.get("/api/v1/price-lists", params={"page_size": 100, "show_inactive": "true"})
    assert good["name"] not in {p["name"] for p in listed.json()["price_lists"]}


async def test_vat_rates_carry_israels_2025_rate_and_only_admins_add_one(stack: Stack, api: httpx.AsyncClient) -> None:
    israel = await api.get("/api/v1/tax-rates", params={"country_code": "IL"})
    standard = [(r["rate_bp"], r["valid_from"]) for r in israel.json()["tax_rates"] if r["tax_class"] == "standard"]
    manager_headers = stack.auth_headers("sales_manager", team_id="team-media")
    rate = {"country_code": "IR", "tax_class": "standard", "rate_bp": 1000, "valid_from": "2024-03-20"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=manager_headers) as manager:
        by_manager = await manager.post("/api/v1/tax-rates", json={**rate, "valid_from": "2031-03-21"})
        read_by_manager = await manager.get("/api/v1/tax-rates", params={"country_code": "IR"})
    same_again = await api.post("/api/v1/tax-rates", json=rate)
    clash = await api.post("/api/v1/tax-rates", json={**rate, "rate_bp": 1200})
    zero_with_rate = await api.post("/api/v1/tax-rates", json={**rate, "tax_class": "zero", "valid_from": "2031-03-21"})

    assert standard == [(1700, "2015-10-01"), (1800, "2025-01-01")]
    assert by_manager.status_code == 403
    assert read_by_manager.status_code == 200
    assert same_again.status_code == 201 and same_again.json()["rate_bp"] == 1000
    assert clash.status_code == 409 and clash.json()["reason"] == "TAX_RATE_EXISTS"
    assert zero_with_rate.status_code == 422 and fields(zero_with_rate) == ["rate_bp"]


async def test_catalog_changes_are_audited_under_the_caller(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/api/v1/products", json={"sku": sku(), "names": {"fa": "صندلی"}}, headers={"X-Request-ID": "req-catalog-1"}
    )
    assert created.status_code == 201, created.text
    audit = await api.get("/api/v1/audit-records", params={"service": "sales", "record_id": created.json()["id"]})

    assert audit.status_code == 200, audit.text
    [record] = audit.json()["audit_records"]
    assert (record["action"], record["request_id"]) == ("sales.CreateProduct", "req-catalog-1")


async def test_the_demo_catalog_loads_once_in_both_currencies(stack: Stack, api: httpx.AsyncClient) -> None:
    await stack.load_demo_data()
    await stack.load_demo_data()  # idempotent: the same products and lists answer again
    products = (await api.get("/api/v1/products", params={"product_line": "furniture", "page_size": 100})).json()
    lists = (await api.get("/api/v1/price-lists", params={"page_size": 100})).json()["price_lists"]
    demo = {p["currency_code"]: p for p in lists if p["name"] in {d["name"] for d in DEMO_PRICE_LISTS}}
    ils = (await api.get(f"/api/v1/price-lists/{demo['ILS']['id']}")).json()
    irr = (await api.get(f"/api/v1/price-lists/{demo['IRR']['id']}")).json()

    skus = [p["sku"] for p in products["products"] if p["sku"] in {d["sku"] for d, _, _ in DEMO_CATALOG}]
    assert sorted(skus) == sorted(d["sku"] for d, _, _ in DEMO_CATALOG)
    assert len([p for p in lists if p["name"] in {d["name"] for d in DEMO_PRICE_LISTS}]) == 2
    sofa = {i["sku"]: i["unit_price"] for i in ils["items"]}["SOFA-3"]
    assert sofa == {"amount_minor": 459_900, "currency_code": "ILS"}
    assert all(i["unit_price"]["amount_minor"] % 100 == 0 for i in irr["items"]) and len(irr["items"]) == 5
