"""Demo data loaded by ``make run``: Hebrew and Persian leads from every kind of source."""

# Hebrew letters look like Latin ones to ruff's confusables check; here they are meant.

from __future__ import annotations

import asyncio
from typing import Any

import httpx


def _lead(
    number: int, full_name: str, phone: str, email: str, source: str, campaign: str, locale: str
) -> dict[str, str]:
    return {
        "full_name": full_name,
        "phone_number": phone,
        "email": email,
        "source": source,
        "campaign": campaign,
        "locale": locale,
        "request_id": f"demo-lead-{number:02d}",
    }


def _campaign(source: str, name: str, budget_ils: int, cost_ils: int, starts_on: str, ends_on: str) -> dict[str, Any]:
    return {
        "source": source,
        "name": name,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "budget": {"amount_minor": budget_ils * 100, "currency_code": "ILS"},
        "actual_cost": {"amount_minor": cost_ils * 100, "currency_code": "ILS"},
    }


# Every campaign DEMO_LEADS names: a capture may only name a campaign of the catalogue.
DEMO_CAMPAIGNS: tuple[dict[str, Any], ...] = (
    _campaign("radio", "radio-spring", 40_000, 31_500, "2026-03-01", "2026-05-31"),
    _campaign("tv", "tv-prime-time", 250_000, 240_000, "2026-01-01", "2026-12-31"),
    _campaign("website", "site-organic", 12_000, 9_000, "2026-01-01", "2026-12-31"),
    _campaign("web_form", "nowruz-sale", 15_000, 14_200, "2026-03-10", "2026-04-02"),
    _campaign("referral", "friend-brings-friend", 5_000, 1_200, "2026-01-01", "2026-12-31"),
    _campaign("exhibition", "furniture-expo", 60_000, 58_000, "2026-02-15", "2026-02-18"),
    _campaign("press", "press-hamshahri", 20_000, 20_000, "2026-03-01", "2026-03-31"),
    _campaign("telemarketing", "outbound-q1", 30_000, 27_000, "2026-01-01", "2026-03-31"),
    _campaign("email", "newsletter-march", 2_000, 1_500, "2026-03-01", "2026-03-31"),
    _campaign("import", "legacy-import", 0, 0, "2026-01-01", "2026-01-01"),
)


async def create_demo_campaigns(client: httpx.AsyncClient) -> None:
    """Create DEMO_CAMPAIGNS through the gateway (idempotent: an existing one is 409)."""
    for campaign in DEMO_CAMPAIGNS:
        response = await client.post("/api/v1/campaigns", json=campaign)
        if response.status_code not in (201, 409):
            raise RuntimeError(f"create demo campaign {campaign['name']}: {response.status_code} {response.text}")


DEMO_LEADS: tuple[dict[str, str], ...] = (
    _lead(1, "דנה לוי", "050-1234567", "dana.levi@example.co.il", "radio", "radio-spring", "he-IL"),
    _lead(2, "יוסי כהן", "052-7654321", "yossi.cohen@example.co.il", "tv", "tv-prime-time", "he-IL"),
    _lead(3, "مریم احمدی", "0912 345 6789", "maryam.ahmadi@example.ir", "website", "site-organic", "fa-IR"),
    _lead(4, "علی رضایی", "0935 123 4567", "ali.rezaei@example.ir", "web_form", "nowruz-sale", "fa-IR"),
    _lead(
        5,
        "נועה מזרחי",
        "054-2223344",
        "noa.mizrahi@example.co.il",
        "referral",
        "friend-brings-friend",
        "he-IL",
    ),
    _lead(6, "אבי פרץ", "053-9876543", "avi.peretz@example.co.il", "exhibition", "furniture-expo", "he-IL"),
    _lead(7, "زهرا محمدی", "0901 234 5678", "zahra.mohammadi@example.ir", "press", "press-hamshahri", "fa-IR"),
    _lead(8, "רונית ביטון", "058-4445566", "ronit.biton@example.co.il", "telemarketing", "outbound-q1", "he-IL"),
    _lead(9, "حسین کریمی", "0919 876 5432", "hossein.karimi@example.ir", "email", "newsletter-march", "fa-IR"),
    _lead(10, "מיכל אברהם", "050-7778899", "michal.avraham@example.co.il", "import", "legacy-import", "he-IL"),
    _lead(11, "فاطمه حسینی", "0921 555 1234", "fatemeh.hosseini@example.ir", "radio", "radio-spring", "fa-IR"),
    _lead(12, "עומר שפירא", "052-1112233", "omer.shapira@example.co.il", "website", "site-organic", "he-IL"),
)
DEMO_CONVERSIONS: tuple[tuple[int, str], ...] = (
    (0, "ספה לסלון — דנה לוי"),
    (2, "مبلمان پذیرایی — مریم احمدی"),
)
"""(index into DEMO_LEADS, deal title) of the leads converted to deals; the first deal is won."""
DEMO_WON_DEAL: dict[str, Any] = {
    "outcome": "won",
    "items": [
        {
            "sku": "SOFA-3",
            "description": "ספה תלת-מושבית",
            "quantity": 1,
            "unit_price": {"amount_minor": 459900, "currency_code": "ILS"},
        }
    ],
}


def _product(sku: str, he: str, en: str, fa: str, unit: str = "unit") -> dict[str, Any]:
    return {
        "sku": sku,
        "names": {"he": he, "en": en, "fa": fa},
        "unit": unit,
        "tax_class": "standard",
        "product_line": "furniture",
        "request_id": f"demo-product-{sku}",
    }


# (product, price in ILS agorot, price in IRR minor units: whole rials × 100).
DEMO_CATALOG: tuple[tuple[dict[str, Any], int, int], ...] = (
    (_product("SOFA-3", "ספה תלת-מושבית", "Three-seat sofa", "مبل سه‌نفره"), 459_900, 95_000_000_000),
    (_product("ARMCHAIR-1", "כורסה", "Armchair", "مبل تک‌نفره"), 189_900, 38_000_000_000),
    (
        _product("DINING-6", "שולחן אוכל לשישה", "Six-seat dining table", "میز ناهارخوری شش‌نفره"),
        329_000,
        64_000_000_000,
    ),
    (_product("DELIVERY", "משלוח והרכבה", "Delivery and assembly", "ارسال و نصب"), 35_000, 6_500_000_000),
    (
        _product("DESIGN-HOUR", "שעת ייעוץ עיצוב", "Interior design hour", "ساعت مشاوره طراحی", "hour"),
        25_000,
        4_000_000_000,
    ),
)
# Open-ended from 2025 on, so a quote dated today is priced whatever day the demo runs.
DEMO_PRICE_LISTS: tuple[dict[str, Any], ...] = (
    {"name": "מחירון ריהוט", "currency_code": "ILS", "country_code": "IL", "valid_from": "2025-01-01"},
    {"name": "فهرست قیمت مبلمان", "currency_code": "IRR", "country_code": "IR", "valid_from": "2025-01-01"},
)


async def create_demo_catalog(client: httpx.AsyncClient) -> None:
    """Create the demo products and an ILS and an IRR price list through the gateway (idempotent:
    each carries a request_id, so a second run answers the first records)."""
    product_ids: list[str] = []
    for product, _, _ in DEMO_CATALOG:
        response = await client.post("/api/v1/products", json=product)
        if response.status_code != 201:
            raise RuntimeError(f"create demo product {product['sku']}: {response.status_code} {response.text}")
        product_ids.append(str(response.json()["id"]))
    for column, price_list in enumerate(DEMO_PRICE_LISTS, start=1):
        items = [
            {"product_id": product_id, "unit_price": {"amount_minor": prices[column]}}
            for product_id, prices in zip(product_ids, DEMO_CATALOG, strict=True)
        ]
        body = {**price_list, "items": items, "request_id": f"demo-price-list-{price_list['currency_code']}"}
        response = await client.post("/api/v1/price-lists", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"create demo price list {price_list['name']}: {response.status_code} {response.text}")


# The demo company printed on quotes (sales' CRM_COMPANY_* settings); a value set in the shell wins.
DEMO_COMPANY: dict[str, str] = {
    "CRM_COMPANY_NAME": "רהיטי הגליל בע״מ",
    "CRM_COMPANY_ADDRESS": "רחוב הרצל 12, תל אביב-יפו 6578901",
    "CRM_COMPANY_TAX_ID": "515123456",
    "CRM_COMPANY_PHONE": "+972 3-555-1234",
    "CRM_COMPANY_EMAIL": "sales@galil.example",
    # Scheduled reports go to the company's own addresses only.
    "CRM_REPORT_MAIL_DOMAINS": "galil.example",
}


# The service desk: the demo agent (agent-yosef) works every queue of the demo service team, whose
# manager sees them (a sales_manager token with team_id team-service: `make token ROLE=sales_manager
# AS=manager-service TEAM=team-service`). Queues start empty on a real install.
DEMO_SERVICE_TEAM = "team-service"
DEMO_QUEUES: tuple[tuple[str, str], ...] = (
    ("general", "round_robin"),
    ("complaints", "least_loaded"),
    ("billing", "round_robin"),
)
# (index into DEMO_LEADS, request id, the ticket): a Persian customer's complaint about her order.
DEMO_TICKETS: tuple[tuple[int, dict[str, Any]], ...] = (
    (
        2,
        {
            "kind": "complaint",
            "channel": "phone",
            "priority": "high",
            "category_id": "product.delivery",
            "subject": "ارسال مبل دیر شده است",
            "description": "مشتری تماس گرفت: تحویل دو روز عقب افتاده.",
            "request_id": "demo-ticket-1",
        },
    ),
    (
        1,
        {
            "kind": "question",
            "channel": "email",
            "priority": "normal",
            "category_id": "product.warranty",
            "subject": "כמה שנות אחריות יש על הספה?",
            "request_id": "demo-ticket-2",
        },
    ),
)


async def create_demo_service_desk(client: httpx.AsyncClient, lead_ids: list[str]) -> None:
    """Put the demo agent in every queue, then open DEMO_TICKETS for their customers (idempotent:
    a ticket's request id opens it once). A customer is made from the lead's event, so it is
    waited for a few seconds."""
    for queue_id, strategy in DEMO_QUEUES:
        body = {"strategy": strategy, "member_ids": ["agent-yosef"], "team_id": DEMO_SERVICE_TEAM}
        response = await client.put(f"/api/v1/support/queues/{queue_id}", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"set up demo queue {queue_id}: {response.status_code} {response.text}")
    for lead_index, ticket in DEMO_TICKETS:
        customer_id = await _customer_of(client, lead_ids[lead_index])
        response = await client.post("/api/v1/tickets", json={**ticket, "customer_id": customer_id})
        if response.status_code != 201:
            raise RuntimeError(f"open demo ticket {ticket['request_id']}: {response.status_code} {response.text}")


async def _customer_of(client: httpx.AsyncClient, lead_id: str) -> str:
    for _ in range(100):
        found = (await client.get("/api/v1/customers", params={"lead_id": lead_id})).json().get("customers", [])
        if found:
            return str(found[0]["id"])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the customer of demo lead {lead_id} was not made within 10 s")


# Demo customers who said yes to advertising on a recorded call (lead index, channel): Dana, who
# bought the sofa, so a promotion to sofa buyers (README step 16) reaches someone.
DEMO_MARKETING_CONSENTS: tuple[tuple[int, str], ...] = ((0, "sms"), (0, "email"))


async def create_demo_consents(client: httpx.AsyncClient, lead_ids: list[str]) -> None:
    """Record DEMO_MARKETING_CONSENTS, each only while not in force (a second start adds nothing)."""
    for lead_index, channel in DEMO_MARKETING_CONSENTS:
        customer_id = await _customer_of(client, lead_ids[lead_index])
        states = (await client.get(f"/api/v1/customers/{customer_id}/consents")).json().get("states", [])
        if any(s["channel"] == channel and s["purpose"] == "marketing" and s["granted"] for s in states):
            continue
        body = {
            "channel": channel,
            "purpose": "marketing",
            "granted": True,
            "source": "recorded_call",
            "evidence": f"demo-call-{lead_index + 1:04d}.ogg",
        }
        response = await client.post(f"/api/v1/customers/{customer_id}/consents", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"record demo consent {channel}: {response.status_code} {response.text}")
