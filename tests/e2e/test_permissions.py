"""The permission matrix: every gateway route × every role × the caller's own / someone else's
record, against the running system. The expected outcome of each cell is written here by hand;
the table must name every route of the gateway's permission table, so a new route without a
row fails the suite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
import pytest

from crm_devstack.stack import Stack
from crm_gateway.platform.authz import POLICIES
from crm_kit.dev_issuer import DevIssuer
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e

ROLES = ("admin", "sales_manager", "sales_rep", "orders_clerk", "service_agent", "marketing")
OK, FORBIDDEN, HIDDEN = "ok", "403", "404"

ITEMS = [{"sku": "TABLE-1", "quantity": 1, "unit_price": {"amount_minor": 120000, "currency_code": "ILS"}}]
# The rule set as migration 0002 seeds it (what PUT /routing-rules puts back in the matrix).
SEEDED_ROUTING_RULES = [
    {
        "id": "rule-broadcast",
        "name": "Radio, TV and press",
        "priority": 10,
        "sources": ["radio", "tv", "press"],
        "team_id": "team-media",
    },
    {
        "id": "rule-digital",
        "name": "Web and e-mail",
        "priority": 20,
        "sources": ["website", "web_form", "email"],
        "team_id": "team-digital",
    },
    {"id": "rule-default", "name": "Everything else", "priority": 1000, "team_id": "team-media"},
]


def unique_phone() -> str:
    return f"053-{uuid.uuid4().int % 10_000_000:07d}"


def lead_body(source: str = "radio") -> dict[str, Any]:
    return {"full_name": "אורית לוי", "phone_number": unique_phone(), "source": source, "locale": "he-IL"}


@dataclass
class Records:
    """Records of team-media (owned by one rep there) the matrix acts on."""

    lead: dict[str, Any]
    lead_to_convert: dict[str, Any]
    deal: dict[str, Any]
    deal_to_close: dict[str, Any]
    order: dict[str, Any]
    customer: dict[str, Any]
    message: dict[str, Any]
    web_form_key: dict[str, Any]
    possible_duplicate: dict[str, Any]
    other_customer: dict[str, Any]
    task: dict[str, Any]
    campaign: dict[str, Any] = field(default_factory=dict)
    # a draft promotion whose audience reaches nobody: scheduling it is a 409, so is pausing a draft
    promotion: dict[str, Any] = field(default_factory=dict)
    lead_import: dict[str, Any] = field(default_factory=dict)
    audience_list: dict[str, Any] = field(default_factory=dict)
    product: dict[str, Any] = field(default_factory=dict)
    price_list: dict[str, Any] = field(default_factory=dict)
    quotes: dict[str, Any] = field(default_factory=dict)
    # team-media's targets: one to change, and one to delete per call (a second delete is 404)
    targets: dict[str, Any] = field(default_factory=dict)
    # an orders dead letter: replayed by the first allowed cell, 409 after that
    dead_letter: dict[str, Any] = field(default_factory=dict)
    # the service desk: a ticket of the customer in the billing queue (team-media's, agent-yosef a
    # member), the SLA policy and the Israeli calendar as they are (put back unchanged)
    ticket: dict[str, Any] = field(default_factory=dict)
    # the customer's contact persons and addresses: one removed per allowed call (a second is 404)
    contact_persons: list[dict[str, Any]] = field(default_factory=list)
    addresses: list[dict[str, Any]] = field(default_factory=list)
    # a file on that ticket (read by the attachment cells; each allowed upload adds another)
    attachment: dict[str, Any] = field(default_factory=dict)
    sla_policy: dict[str, Any] = field(default_factory=dict)
    calendar: dict[str, Any] = field(default_factory=dict)
    # a retention list of team-media with the matrix's customer called by the lead's rep
    retention_list: dict[str, Any] = field(default_factory=dict)
    # a saved report shared with team-media's managers and reps; and one to delete per call
    saved_report: dict[str, Any] = field(default_factory=dict)
    saved_reports: list[dict[str, Any]] = field(default_factory=list)
    # the admin's e-mail schedules of that report: one to send now, one to delete per call
    report_schedule: dict[str, Any] = field(default_factory=dict)
    report_schedules: list[dict[str, Any]] = field(default_factory=list)


async def capture_media_lead(api: httpx.AsyncClient, rep_id: str = "") -> dict[str, Any]:
    """A radio lead (team-media), retried until round-robin gives it to rep_id when asked."""
    for _ in range(10):
        response = await api.post("/api/v1/leads", json=lead_body())
        assert response.status_code == 201, response.text
        lead = dict(response.json())
        if not rep_id or lead["assignment"]["rep_id"] == rep_id:
            return lead
    raise AssertionError(f"round-robin never assigned a lead to {rep_id}")


async def quote_records(api: httpx.AsyncClient, rep_id: str) -> dict[str, Any]:
    """An open team-media deal of rep_id with a quote in each state the matrix acts on: a draft to
    change, a draft to send, a sent one to read and print, and a superseded one every allowed accept,
    reject and revise refuses (409), so the deal stays open for every cell."""
    lead = await capture_media_lead(api, rep_id)
    deal = (await api.post(f"/api/v1/leads/{lead['id']}/convert", json={})).json()
    product = await api.post("/api/v1/products", json={"sku": f"MQ-{uuid.uuid4().hex[:10]}", "names": {"he": "שולחן"}})
    assert product.status_code == 201, product.text
    items = [{"product_id": product.json()["id"], "unit_price": {"amount_minor": 10_000}}]
    price_list = await api.post("/api/v1/price-lists", json={**price_list_body(), "items": items})
    assert price_list.status_code == 201, price_list.text
    body = {"price_list_id": price_list.json()["id"], "lines": [{"product_id": product.json()["id"], "quantity": 1}]}
    made = []
    for _ in range(4):
        created = await api.post(f"/api/v1/deals/{deal['id']}/quotes", json=body)
        assert created.status_code == 201, created.text
        made.append(created.json())
    draft, to_send, sent, superseded = made
    for quote in (sent, superseded):
        assert (await api.post(f"/api/v1/quotes/{quote['id']}/send")).status_code == 200
    assert (await api.post(f"/api/v1/quotes/{superseded['id']}/revise")).status_code == 201
    return {
        "deal": deal,
        "price_list": price_list.json(),
        "draft": draft,
        "to_send": to_send,
        "sent": sent,
        "superseded": superseded,
    }


@pytest.fixture(scope="module")
async def records(stack: Stack) -> AsyncIterator[Records]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as api:
        lead = await capture_media_lead(api)
        assert lead["assignment"]["team_id"] == "team-media"
        rep = lead["assignment"]["rep_id"]
        lead_to_convert = await capture_media_lead(api, rep)
        second = await capture_media_lead(api, rep)
        deal = (await api.post(f"/api/v1/leads/{lead['id']}/convert", json={})).json()
        deal_to_close = (await api.post(f"/api/v1/leads/{second['id']}/convert", json={})).json()
        closed = await api.post(f"/api/v1/deals/{deal['id']}/close", json={"outcome": "won", "items": ITEMS})
        assert closed.status_code == 200, closed.text

        async def order() -> dict[str, Any] | None:
            orders = (await api.get("/api/v1/orders", params={"deal_id": deal["id"]})).json()["orders"]
            return orders[0] if orders else None

        the_order = await eventually(order)
        shipped = await api.post(
            f"/api/v1/orders/{the_order['id']}/ship",
            json={"carrier": "דואר ישראל", "tracking_number": "RR1", "estimated_delivery_date": "2030-01-15"},
        )
        assert shipped.status_code == 200, shipped.text

        async def customer() -> dict[str, Any] | None:
            found = (await api.get("/api/v1/customers", params={"lead_id": lead["id"]})).json()["customers"]
            return found[0] if found else None

        async def message() -> dict[str, Any] | None:
            found = (await api.get("/api/v1/messages", params={"order_id": the_order["id"]})).json()["messages"]
            return found[0] if found else None

        key = await api.post("/api/v1/web-form-keys", json={"display_name": "matrix", "source": "web_form"})
        assert key.status_code == 201, key.text
        # Every matrix lead has one name: lead_to_convert and lead are a possible-duplicate pair of
        # team-media; lead_to_convert's customer is the one merge_customers merges away.
        pair_query = {"lead_id": lead_to_convert["id"], "page_size": 100}
        pairs = await api.get("/api/v1/possible-duplicates", params=pair_query)
        assert pairs.status_code == 200, pairs.text
        [pair] = [p for p in pairs.json()["possible_duplicates"] if p["other_lead"]["id"] == lead["id"]]

        async def other_customer() -> dict[str, Any] | None:
            params = {"lead_id": lead_to_convert["id"]}
            found = (await api.get("/api/v1/customers", params=params)).json()["customers"]
            return found[0] if found else None

        matrix_task = await api.post(
            f"/api/v1/leads/{lead['id']}/activities",
            json={"kind": "task", "subject": "matrix", "due_time": "2030-01-01T09:00:00Z"},
        )
        assert matrix_task.status_code == 201, matrix_task.text
        campaign = await api.post("/api/v1/campaigns", json={"source": "radio", "name": f"matrix {uuid.uuid4()}"})
        assert campaign.status_code == 201, campaign.text
        lead_import = await api.post(
            "/api/v1/lead-imports", params={"source": "radio"}, content=csv_body(), headers=CSV_HEADERS
        )
        assert lead_import.status_code == 201, lead_import.text
        audience_list = await api.post(
            "/api/v1/audience-lists",
            params={"name": "matrix"},
            content=b"phone_number\n050-0000009\n",
            headers=CSV_HEADERS,
        )
        assert audience_list.status_code == 201, audience_list.text
        product = await api.post(
            "/api/v1/products", json={"sku": f"M-{uuid.uuid4().hex[:10]}", "names": {"he": "כיסא"}}
        )
        assert product.status_code == 201, product.text
        price_list = await api.post("/api/v1/price-lists", json=price_list_body())
        assert price_list.status_code == 201, price_list.text
        quotes = await quote_records(api, rep)
        targets = await target_records(api)
        dead_letter = await dead_letter_record(api, stack)
        the_customer = await eventually(customer)
        desk = await support_records(api, the_customer)
        details = await details_records(api, the_customer)
        promotion = await api.post("/api/v1/promotions", json=PROMOTION)
        assert promotion.status_code == 201, promotion.text
        retention_list = await retention_records(api, the_customer)
        yield Records(
            lead=lead,
            lead_to_convert=lead_to_convert,
            deal=deal,
            deal_to_close=deal_to_close,
            order=the_order,
            customer=the_customer,
            message=await eventually(message),
            web_form_key=key.json()["web_form_key"],
            possible_duplicate=pair,
            other_customer=await eventually(other_customer),
            task=matrix_task.json(),
            campaign=campaign.json(),
            promotion=promotion.json(),
            lead_import=lead_import.json(),
            audience_list=audience_list.json(),
            product=product.json(),
            price_list=price_list.json(),
            quotes=quotes,
            targets=targets,
            dead_letter=dead_letter,
            retention_list=retention_list,
            **await saved_report_records(api),
            **desk,
            **details,
        )


PROMOTION = {
    "name": "matrix",
    "channel": "sms",
    "audience": {"tags": ["matrix-nobody"]},
    "texts": [{"locale": "he-IL", "body": "פרסומת: ספות! {advertiser} {advertiser_contact}. להסרה השיבו הסר"}],
}
AUDIENCE_PREVIEW = {"channel": "sms", "audience": {"tags": ["matrix-nobody"]}}
CONTACT_PERSON = {"full_name": "יעל ברק", "role": "רכש", "phone_number": "054-1234567"}
ADDRESS = {"kind": "office", "line1": "דרך העצמאות 5", "city": "חיפה", "country_code": "IL"}


async def retention_records(api: httpx.AsyncClient, customer: dict[str, Any]) -> dict[str, Any]:
    """A retention list of team-media holding the matrix's customer, called by their lead's rep:
    the customer bought and then withdrew their marketing consent (a risk of 0.1)."""
    withdrawn = await api.post(
        f"/api/v1/customers/{customer['id']}/consents",
        json={"channel": "sms", "purpose": "marketing", "granted": False, "source": "recorded_call", "evidence": "m"},
    )
    assert withdrawn.status_code == 201, withdrawn.text

    async def listed() -> dict[str, Any] | None:
        body = {"name": "matrix", "threshold": 0.05, "control_share": 0, "team_id": "team-media"}
        made = await api.post("/api/v1/retention-lists", json=body)
        assert made.status_code == 201, made.text
        detail = (await api.get(f"/api/v1/retention-lists/{made.json()['id']}")).json()
        return made.json() if any(e["customer_id"] == customer["id"] for e in detail["entries"]) else None

    return await eventually(listed)


REPORT = {"measures": ["leads", "deals_won"], "dimensions": ["source"], "range": "last_30_days"}


async def saved_report(api: httpx.AsyncClient) -> dict[str, Any]:
    """An admin's saved report shared with team-media's managers and reps."""
    body = {
        "name": "matrix",
        "definition": REPORT,
        "shared_roles": ["sales_manager", "sales_rep"],
        "team_id": "team-media",
    }
    made = await api.post("/api/v1/saved-reports", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


SCHEDULE = {"cadence": "weekly", "weekday": 6, "hour": 8, "recipients": ["matrix@galil.example"], "locale": "he"}


async def saved_report_records(api: httpx.AsyncClient) -> dict[str, Any]:
    """The saved report the matrix reads, one for each cell of the delete route, and the admin's
    e-mail schedules of it: one to send now, one for each cell of the delete route."""
    made = [await saved_report(api) for _ in range(len(ROLES) * 2 + 1)]
    schedules = []
    for _ in range(len(ROLES) * 2 + 1):
        scheduled = await api.post(f"/api/v1/saved-reports/{made[0]['id']}/schedules", json=SCHEDULE)
        assert scheduled.status_code == 201, scheduled.text
        schedules.append(scheduled.json())
    return {
        "saved_report": made[0],
        "saved_reports": made[1:],
        "report_schedule": schedules[0],
        "report_schedules": schedules[1:],
    }


async def details_records(api: httpx.AsyncClient, customer: dict[str, Any]) -> dict[str, Any]:
    """Contact persons and addresses of the matrix's customer, one for each cell of a remove route
    (every cell takes one, allowed or not; an add past the customer's 20 addresses is a 409)."""
    made: dict[str, list[dict[str, Any]]] = {"contact_persons": [], "addresses": []}
    for _ in range(len(ROLES) * 2):
        for key, path, body in (
            ("contact_persons", "contact-persons", CONTACT_PERSON),
            ("addresses", "addresses", ADDRESS),
        ):
            created = await api.post(f"/api/v1/customers/{customer['id']}/{path}", json=body)
            assert created.status_code == 201, created.text
            made[key].append(created.json())
    return made


BILLING_QUEUE = {"strategy": "round_robin", "member_ids": ["agent-yosef"], "team_id": "team-media"}


def ticket_body(customer_id: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "kind": "billing",
        "channel": "phone",
        "category_id": "billing.refund",
        "subject": "חיוב כפול",
    }


async def support_records(api: httpx.AsyncClient, customer: dict[str, Any]) -> dict[str, Any]:
    """The billing queue worked by team-media and agent-yosef, and a ticket of the matrix's customer in it."""
    queue = await api.put("/api/v1/support/queues/billing", json=BILLING_QUEUE)
    assert queue.status_code == 200, queue.text
    ticket = await api.post("/api/v1/tickets", json=ticket_body(customer["id"]))
    assert ticket.status_code == 201, ticket.text
    attachment = await api.post(
        f"/api/v1/tickets/{ticket.json()['id']}/attachments",
        params={"filename": "matrix.txt"},
        content=b"matrix",
        headers={"Content-Type": "text/plain"},
    )
    assert attachment.status_code == 201, attachment.text
    policy = (await api.get("/api/v1/support/sla-policy")).json()
    calendars = (await api.get("/api/v1/support/sla-calendars")).json()["calendars"]
    return {
        "ticket": ticket.json(),
        "attachment": attachment.json(),
        "sla_policy": policy,
        "calendar": next(c for c in calendars if c["code"] == "IL"),
    }


def target_body(period_start: str, metric: str = "won_deals") -> dict[str, Any]:
    return {
        "subject_kind": "team",
        "subject_id": "team-media",
        "period_kind": "month",
        "period_start": period_start,
        "metric": metric,
        "count": 5,
    }


async def target_records(api: httpx.AsyncClient) -> dict[str, Any]:
    """A team-media target every allowed PATCH changes, and one per matrix cell of DELETE /targets."""
    made = []
    for month in range(13):
        created = await api.post("/api/v1/targets", json=target_body(f"{2031 + month // 12}-{month % 12 + 1:02d}-01"))
        assert created.status_code == 201, created.text
        made.append(created.json())
    return {"team": made[0], "deletable": made[1:]}


async def dead_letter_record(api: httpx.AsyncClient, stack: Stack) -> dict[str, Any]:
    """An orders dead letter: a DealClosed that is not protobuf, which the orders service gives up on."""
    event_id = str(uuid.uuid4())
    nc = await nats.connect(stack.nats_url)
    try:
        headers = {"Nats-Msg-Id": event_id, "ce-id": event_id, "ce-type": "crm.sales.v1.DealClosed"}
        await nc.jetstream().publish("crm.sales.deal_closed", b"\xff not a protobuf", headers=headers)
    finally:
        await nc.close()

    async def letter() -> dict[str, Any] | None:
        params = {"service": "orders", "consumer": "orders-deal-closed", "page_size": 100}
        found = (await api.get("/api/v1/dead-letters", params=params)).json()["dead_letters"]
        return next((d for d in found if d["event_id"] == event_id), None)

    return dict(await eventually(letter, timeout=30))


COST = {"amount_minor": 100, "currency_code": "ILS"}


def price_list_body() -> dict[str, Any]:
    return {"name": f"matrix {uuid.uuid4()}", "currency_code": "ILS", "country_code": "IL", "valid_from": "2026-01-01"}


CSV_HEADERS = {"Content-Type": "text/csv"}


def csv_body() -> bytes:
    """A one-lead CSV list (the lead import route's body)."""
    return f"full_name,phone_number\nאורית לוי,{unique_phone()}\n".encode()


def request_for(route: str, r: Records) -> tuple[str, str, Any, dict[str, str]]:
    """(method, path, JSON body, query) of one call of route on the team-media records."""
    ship = {"carrier": "UPS", "tracking_number": "1Z", "estimated_delivery_date": "2030-02-01"}
    if route == "delete_target":  # a target of its own per call: deleting one twice is 404
        return ("DELETE", f"/api/v1/targets/{r.targets['deletable'].pop()['id']}", None, {})
    customer = f"/api/v1/customers/{r.customer['id']}"
    if route == "remove_contact_person":
        return ("DELETE", f"{customer}/contact-persons/{r.contact_persons.pop()['id']}", None, {})
    if route == "remove_address":
        return ("DELETE", f"{customer}/addresses/{r.addresses.pop()['id']}", None, {})
    if route == "delete_saved_report":
        return ("DELETE", f"/api/v1/saved-reports/{r.saved_reports.pop()['id']}", None, {})
    if route == "delete_report_schedule":
        return ("DELETE", f"/api/v1/report-schedules/{r.report_schedules.pop()['id']}", None, {})
    saved = f"/api/v1/saved-reports/{r.saved_report['id']}"
    calls: dict[str, tuple[str, str, Any, dict[str, str]]] = {
        "get_me": ("GET", "/api/v1/me", None, {}),
        "capture_lead": ("POST", "/api/v1/leads", lead_body(), {}),
        "list_leads": ("GET", "/api/v1/leads", None, {}),
        "get_lead": ("GET", f"/api/v1/leads/{r.lead['id']}", None, {}),
        "convert_lead": ("POST", f"/api/v1/leads/{r.lead_to_convert['id']}/convert", {}, {}),
        "get_deal": ("GET", f"/api/v1/deals/{r.deal['id']}", None, {}),
        "close_deal": ("POST", f"/api/v1/deals/{r.deal_to_close['id']}/close", {"outcome": "won", "items": ITEMS}, {}),
        "list_sources": ("GET", "/api/v1/sources", None, {}),
        "list_orders": ("GET", "/api/v1/orders", None, {"deal_id": r.deal["id"]}),
        "get_order": ("GET", f"/api/v1/orders/{r.order['id']}", None, {}),
        "ship_order": ("POST", f"/api/v1/orders/{r.order['id']}/ship", ship, {}),
        "list_customers": ("GET", "/api/v1/customers", None, {"lead_id": r.lead["id"]}),
        "get_customer": ("GET", f"/api/v1/customers/{r.customer['id']}", None, {}),
        "list_timeline": ("GET", f"/api/v1/customers/{r.customer['id']}/timeline", None, {}),
        "search_customers": ("GET", "/api/v1/search/customers", None, {"query": r.customer["phone_number"]}),
        "log_touch": ("POST", f"/api/v1/customers/{r.customer['id']}/touches", {"kind": "note", "text": "x"}, {}),
        "list_product_suggestions": ("GET", f"/api/v1/customers/{r.customer['id']}/suggestions", None, {}),
        "get_customer_risk": ("GET", f"/api/v1/customers/{r.customer['id']}/risk", None, {}),
        "get_customer_value": ("GET", f"/api/v1/customers/{r.customer['id']}/value", None, {}),
        "create_retention_list": ("POST", "/api/v1/retention-lists", {"threshold": 1, "max_entries": 1}, {}),
        "list_retention_lists": ("GET", "/api/v1/retention-lists", None, {}),
        "get_retention_list": ("GET", f"/api/v1/retention-lists/{r.retention_list['id']}", None, {}),
        "record_retention_response": (
            "POST",
            f"/api/v1/retention-lists/{r.retention_list['id']}/entries/{r.customer['id']}/response",
            {"response": "reached"},
            {},
        ),
        "get_retention_report": ("GET", f"/api/v1/retention-lists/{r.retention_list['id']}/report", None, {}),
        "record_cross_sell_offer": (
            "POST",
            f"/api/v1/customers/{r.customer['id']}/suggestions/offers",
            {"sku": "SOFA-3", "response": "declined"},
            {},
        ),
        "list_consents": ("GET", f"/api/v1/customers/{r.customer['id']}/consents", None, {}),
        "record_consent": (
            "POST",
            f"/api/v1/customers/{r.customer['id']}/consents",
            {"channel": "phone", "purpose": "service", "granted": True, "source": "agent"},
            {},
        ),
        "update_customer": ("PATCH", f"/api/v1/customers/{r.customer['id']}", {"locale": "he-IL"}, {}),
        "list_messages": ("GET", "/api/v1/messages", None, {"order_id": r.order["id"]}),
        "get_message": ("GET", f"/api/v1/messages/{r.message['id']}", None, {}),
        "preview_message": ("POST", "/api/v1/message-previews", {"channel": "sms", "body": "שלום {name}"}, {}),
        "preview_audience": ("POST", "/api/v1/audience-previews", AUDIENCE_PREVIEW, {}),
        "create_promotion": ("POST", "/api/v1/promotions", PROMOTION, {}),
        "list_promotions": ("GET", "/api/v1/promotions", None, {}),
        "get_promotion": ("GET", f"/api/v1/promotions/{r.promotion['id']}", None, {}),
        "get_promotion_report": ("GET", f"/api/v1/promotions/{r.promotion['id']}/report", None, {}),
        "estimate_promotion": ("GET", f"/api/v1/promotions/{r.promotion['id']}/estimate", None, {}),
        "schedule_promotion": ("POST", f"/api/v1/promotions/{r.promotion['id']}/schedule", {}, {}),
        "pause_promotion": ("POST", f"/api/v1/promotions/{r.promotion['id']}/pause", None, {}),
        "resume_promotion": ("POST", f"/api/v1/promotions/{r.promotion['id']}/resume", None, {}),
        "cancel_promotion": ("POST", f"/api/v1/promotions/{r.promotion['id']}/cancel", None, {}),
        "approve_promotion": ("POST", f"/api/v1/promotions/{r.promotion['id']}/approve", None, {}),
        "import_audience_list": ("POST", "/api/v1/audience-lists", b"email\nnobody@example.com\n", {"name": "x"}),
        "get_audience_list": ("GET", f"/api/v1/audience-lists/{r.audience_list['id']}", None, {}),
        "list_audience_lists": ("GET", "/api/v1/audience-lists", None, {}),
        "source_report": ("GET", "/api/v1/reports/sources", None, {}),
        "create_web_form_key": ("POST", "/api/v1/web-form-keys", {"display_name": "x", "source": "web_form"}, {}),
        "list_web_form_keys": ("GET", "/api/v1/web-form-keys", None, {}),
        "revoke_web_form_key": ("POST", f"/api/v1/web-form-keys/{r.web_form_key['id']}/revoke", None, {}),
        "list_audit_records": ("GET", "/api/v1/audit-records", None, {"service": "leads"}),
        "list_dead_letters": ("GET", "/api/v1/dead-letters", None, {"service": "orders"}),
        "get_dead_letter": ("GET", f"/api/v1/dead-letters/orders/{r.dead_letter['id']}", None, {}),
        "replay_dead_letter": ("POST", f"/api/v1/dead-letters/orders/{r.dead_letter['id']}/replay", None, {}),
        # sources, campaigns and CSV imports
        "create_source": ("POST", "/api/v1/sources", {"code": f"s_{uuid.uuid4().hex[:12]}", "display_name": "x"}, {}),
        "create_campaign": ("POST", "/api/v1/campaigns", {"source": "radio", "name": str(uuid.uuid4())}, {}),
        "update_campaign": ("PATCH", f"/api/v1/campaigns/{r.campaign['id']}", {"actual_cost": COST}, {}),
        "list_campaigns": ("GET", "/api/v1/campaigns", None, {"source": "radio"}),
        "get_campaign": ("GET", f"/api/v1/campaigns/{r.campaign['id']}", None, {}),
        "import_leads": ("POST", "/api/v1/lead-imports", csv_body(), {"source": "radio"}),
        "get_lead_import": ("GET", f"/api/v1/lead-imports/{r.lead_import['id']}", None, {}),
        "list_lead_imports": ("GET", "/api/v1/lead-imports", None, {}),
        "campaign_report": ("GET", "/api/v1/reports/campaigns", None, {}),
        "attribution_report": ("GET", "/api/v1/reports/attribution", None, {"models": "first"}),
        "cross_sell_report": ("GET", "/api/v1/reports/cross-sell", None, {}),
        "report_catalog": ("GET", "/api/v1/reports/builder/catalog", None, {}),
        "speed_to_lead_report": ("GET", "/api/v1/reports/speed-to-lead", None, {}),
        "customer_value_report": ("GET", "/api/v1/reports/customer-value", None, {}),
        "funnel_report": ("GET", "/api/v1/reports/funnel", None, {"dimension": "source"}),
        "run_report": ("POST", "/api/v1/reports/builder/run", REPORT, {}),
        "export_report": ("POST", "/api/v1/reports/builder/export", REPORT, {"format": "csv"}),
        "create_saved_report": ("POST", "/api/v1/saved-reports", {"name": "mine", "definition": REPORT}, {}),
        "list_saved_reports": ("GET", "/api/v1/saved-reports", None, {}),
        "get_saved_report": ("GET", saved, None, {}),
        "run_saved_report": ("GET", f"{saved}/result", None, {}),
        "export_saved_report": ("GET", f"{saved}/export", None, {"format": "xlsx", "locale": "he"}),
        "create_report_schedule": ("POST", f"{saved}/schedules", SCHEDULE, {}),
        "list_report_schedules": ("GET", "/api/v1/report-schedules", None, {}),
        "send_report_schedule_now": (
            "POST",
            f"/api/v1/report-schedules/{r.report_schedule['id']}/send-now",
            None,
            {},
        ),
        # targets of team-media: created by the first allowed cell, 409 after that
        "target_report": ("GET", "/api/v1/reports/targets", None, {}),
        "list_targets": ("GET", "/api/v1/targets", None, {}),
        "create_target": ("POST", "/api/v1/targets", target_body("2030-12-01", "leads"), {}),
        "update_target": ("PATCH", f"/api/v1/targets/{r.targets['team']['id']}", {"count": 6}, {}),
        # routing and SLA: the rule set is put back as seeded; the rep's availability is unchanged
        "list_routing_rules": ("GET", "/api/v1/routing-rules", None, {}),
        "replace_routing_rules": ("PUT", "/api/v1/routing-rules", {"rules": SEEDED_ROUTING_RULES}, {}),
        "list_reps": ("GET", "/api/v1/reps", None, {}),
        "update_rep": ("PATCH", f"/api/v1/reps/{r.lead['assignment']['rep_id']}", {"away": False}, {}),
        # the sales organisation: a created rep is inactive (routing in team-media is unchanged), the
        # team keeps its seeded manager
        "create_rep": ("POST", "/api/v1/reps", {"name": "matrix", "team_id": "team-media", "active": False}, {}),
        "create_team": ("POST", "/api/v1/teams", {"name": f"matrix {uuid.uuid4()}"}, {}),
        "list_teams": ("GET", "/api/v1/teams", None, {}),
        "get_team": ("GET", "/api/v1/teams/team-media", None, {}),
        "update_team": ("PATCH", "/api/v1/teams/team-media", {"manager_id": "manager-media"}, {}),
        "list_lead_queue": ("GET", "/api/v1/lead-queue", None, {}),
        "assign_lead": (
            "POST",
            f"/api/v1/leads/{r.lead['id']}/assign",
            {"rep_id": r.lead["assignment"]["rep_id"]},
            {},
        ),
        "get_lead_routing": ("GET", f"/api/v1/leads/{r.lead['id']}/routing", None, {}),
        "get_lead_score": ("GET", f"/api/v1/leads/{r.lead['id']}/score", None, {}),
        "list_sla_breaches": ("GET", "/api/v1/sla-breaches", None, {}),
        "list_my_leads": ("GET", "/api/v1/my-leads", None, {}),
        "list_possible_duplicates": ("GET", "/api/v1/possible-duplicates", None, {}),
        "dismiss_possible_duplicate": (
            "POST",
            f"/api/v1/possible-duplicates/{r.possible_duplicate['id']}/dismiss",
            None,
            {},
        ),
        # both leads have a deal: every allowed caller gets 409, nothing is merged
        "merge_leads": (
            "POST",
            f"/api/v1/leads/{r.lead['id']}/merge",
            {"duplicate_lead_id": r.deal_to_close["lead_id"]},
            {},
        ),
        "list_incomplete_leads": ("GET", "/api/v1/incomplete-leads", None, {}),
        "merge_customers": (
            "POST",
            f"/api/v1/customers/{r.customer['id']}/merge",
            {"duplicate_customer_id": r.other_customer["id"]},
            {},
        ),
        "log_lead_activity": ("POST", f"/api/v1/leads/{r.lead['id']}/activities", {"kind": "note", "body": "x"}, {}),
        "list_lead_activities": ("GET", f"/api/v1/leads/{r.lead['id']}/activities", None, {}),
        "log_deal_activity": ("POST", f"/api/v1/deals/{r.deal['id']}/activities", {"kind": "note", "body": "x"}, {}),
        "list_deal_activities": ("GET", f"/api/v1/deals/{r.deal['id']}/activities", None, {}),
        "complete_activity": ("POST", f"/api/v1/activities/{r.task['id']}/complete", None, {}),
        "list_tasks": ("GET", "/api/v1/tasks", None, {}),
        # pipelines and deal stages: r.deal is won, so every allowed move or edit of it is a 409
        "move_deal_stage": ("POST", f"/api/v1/deals/{r.deal['id']}/stage", {"stage_id": "default-qualified"}, {}),
        "update_deal": ("PATCH", f"/api/v1/deals/{r.deal['id']}", {"title": "x"}, {}),
        "list_deal_stage_history": ("GET", f"/api/v1/deals/{r.deal['id']}/stage-history", None, {}),
        "list_pipelines": ("GET", "/api/v1/pipelines", None, {}),
        "get_pipeline": ("GET", "/api/v1/pipelines/default", None, {}),
        "create_pipeline": ("POST", "/api/v1/pipelines", {"name": f"matrix {uuid.uuid4()}", "stages": STAGES}, {}),
        "update_pipeline": ("PATCH", "/api/v1/pipelines/default", {"product_line": ""}, {}),
        "list_lost_reasons": ("GET", "/api/v1/lost-reasons", None, {}),
        # deal lists: held to the caller's deals; naming another rep (reps) or team (managers) is 403
        "list_deals": ("GET", "/api/v1/deals", None, {"owner_rep_id": r.lead["assignment"]["rep_id"]}),
        "get_pipeline_board": ("GET", "/api/v1/pipelines/default/board", None, {}),
        "get_forecast": ("GET", "/api/v1/reports/forecast", None, {"owner_team_id": "team-media"}),
        # quotes, on an open deal of the rep (r.quotes): the superseded quote is refused (409) by
        # every allowed accept, reject and revise, so the deal stays open
        "create_quote": (
            "POST",
            f"/api/v1/deals/{r.quotes['deal']['id']}/quotes",
            {"price_list_id": r.quotes["price_list"]["id"]},
            {},
        ),
        "list_quotes": ("GET", f"/api/v1/deals/{r.quotes['deal']['id']}/quotes", None, {}),
        "get_quote": ("GET", f"/api/v1/quotes/{r.quotes['sent']['id']}", None, {}),
        "render_quote_pdf": ("GET", f"/api/v1/quotes/{r.quotes['sent']['id']}.pdf", None, {}),
        "update_quote": ("PATCH", f"/api/v1/quotes/{r.quotes['draft']['id']}", {"notes": "matrix"}, {}),
        "send_quote": ("POST", f"/api/v1/quotes/{r.quotes['to_send']['id']}/send", None, {}),
        "revise_quote": ("POST", f"/api/v1/quotes/{r.quotes['superseded']['id']}/revise", None, {}),
        "accept_quote": ("POST", f"/api/v1/quotes/{r.quotes['superseded']['id']}/accept", None, {}),
        "reject_quote": ("POST", f"/api/v1/quotes/{r.quotes['superseded']['id']}/reject", None, {}),
        # the catalog: the item is set by every allowed cell and removed by every allowed cell (204
        # again once it is out); the VAT rate posted is the seeded one, so nothing changes
        "list_products": ("GET", "/api/v1/products", None, {}),
        "get_product": ("GET", f"/api/v1/products/{r.product['id']}", None, {}),
        "create_product": ("POST", "/api/v1/products", {"sku": f"M-{uuid.uuid4().hex[:10]}", "names": {"en": "x"}}, {}),
        "update_product": ("PATCH", f"/api/v1/products/{r.product['id']}", {"product_line": ""}, {}),
        "list_price_lists": ("GET", "/api/v1/price-lists", None, {}),
        "get_price_list": ("GET", f"/api/v1/price-lists/{r.price_list['id']}", None, {}),
        "create_price_list": ("POST", "/api/v1/price-lists", price_list_body(), {}),
        "update_price_list": ("PATCH", f"/api/v1/price-lists/{r.price_list['id']}", {"active": True}, {}),
        "set_price_list_item": (
            "PUT",
            f"/api/v1/price-lists/{r.price_list['id']}/items/{r.product['id']}",
            {"unit_price": {"amount_minor": 4990}},
            {},
        ),
        "remove_price_list_item": (
            "DELETE",
            f"/api/v1/price-lists/{r.price_list['id']}/items/{r.product['id']}",
            None,
            {},
        ),
        "list_tax_rates": ("GET", "/api/v1/tax-rates", None, {"country_code": "IL"}),
        "create_tax_rate": (
            "POST",
            "/api/v1/tax-rates",
            {"country_code": "IL", "tax_class": "standard", "rate_bp": 1800, "valid_from": "2025-01-01"},
            {},
        ),
        # the service desk: a new ticket per allowed cell; the status moved by the first allowed cell
        # (new → open), 409 after that; the queue, policy and calendar put back as they were (a
        # policy edited from an older version is 409)
        "list_consent_records": ("GET", "/api/v1/consent-records", None, {"page_size": "5"}),
        "export_consent_records": (
            "GET",
            "/api/v1/consent-records/export",
            None,
            {"from_time": "2030-01-01T00:00:00Z"},
        ),
        "list_contact_persons": ("GET", f"{customer}/contact-persons", None, {}),
        "add_contact_person": ("POST", f"{customer}/contact-persons", CONTACT_PERSON, {}),
        "list_addresses": ("GET", f"{customer}/addresses", None, {}),
        "add_address": ("POST", f"{customer}/addresses", ADDRESS, {}),
        "get_customer_summary": ("GET", f"/api/v1/customers/{r.customer['id']}/summary", None, {}),
        "open_ticket": ("POST", "/api/v1/tickets", ticket_body(r.customer["id"]), {}),
        "list_tickets": ("GET", "/api/v1/tickets", None, {"customer_id": r.customer["id"]}),
        "get_ticket": ("GET", f"/api/v1/tickets/{r.ticket['id']}", None, {}),
        "list_ticket_messages": ("GET", f"/api/v1/tickets/{r.ticket['id']}/messages", None, {}),
        "add_ticket_message": (
            "POST",
            f"/api/v1/tickets/{r.ticket['id']}/messages",
            {"visibility": "internal_note", "body": "matrix"},
            {},
        ),
        "add_ticket_attachment": (
            "POST",
            f"/api/v1/tickets/{r.ticket['id']}/attachments",
            b"matrix",
            {"filename": "matrix.txt"},
        ),
        "list_ticket_attachments": ("GET", f"/api/v1/tickets/{r.ticket['id']}/attachments", None, {}),
        "get_ticket_attachment": (
            "GET",
            f"/api/v1/tickets/{r.ticket['id']}/attachments/{r.attachment['id']}",
            None,
            {},
        ),
        "change_ticket_status": ("POST", f"/api/v1/tickets/{r.ticket['id']}/status", {"status": "open"}, {}),
        "assign_ticket": ("POST", f"/api/v1/tickets/{r.ticket['id']}/assign", {}, {}),
        "list_ticket_categories": ("GET", "/api/v1/support/categories", None, {}),
        "list_support_queues": ("GET", "/api/v1/support/queues", None, {}),
        "update_support_queue": ("PUT", "/api/v1/support/queues/billing", BILLING_QUEUE, {}),
        "get_sla_policy": ("GET", "/api/v1/support/sla-policy", None, {}),
        "update_sla_policy": (
            "PUT",
            "/api/v1/support/sla-policy",
            {
                "targets": r.sla_policy["targets"],
                "warn_before_minutes": r.sla_policy["warn_before_minutes"],
                "escalate_after_minutes": r.sla_policy["escalate_after_minutes"],
                "reassign_on_breach": r.sla_policy["reassign_on_breach"],
                "based_on_version": r.sla_policy["version"],
            },
            {},
        ),
        "list_sla_calendars": ("GET", "/api/v1/support/sla-calendars", None, {}),
        "put_sla_calendar": (
            "PUT",
            "/api/v1/support/sla-calendars/IL",
            {k: r.calendar[k] for k in ("name", "time_zone", "weekly", "holidays")},
            {},
        ),
        "support_report": ("GET", "/api/v1/support/report", None, {}),
    }
    return calls[route]


STAGES = [
    {"name": "Open", "probability": 20},
    {"name": "Won", "probability": 100, "outcome": "won"},
    {"name": "Lost", "probability": 0, "outcome": "lost"},
]
# Headers a route's call needs: a pipeline change must name the version it was decided on (* is any).
HEADERS: dict[str, dict[str, str]] = {
    "update_pipeline": {"If-Match": "*"},
    "update_quote": {"If-Match": "*"},
    "update_product": {"If-Match": "*"},
    "update_price_list": {"If-Match": "*"},
    "update_team": {"If-Match": "*"},
    "update_customer": {"If-Match": "*"},
    # a bytes body is sent with CSV_HEADERS unless its route names its own type
    "add_ticket_attachment": {"Content-Type": "text/plain"},
}


def row(admin: str, manager: str, rep: str, clerk: str, agent: str, marketing: str) -> dict[str, str]:
    """Expected outcomes per role; "404/ok" style cells are (someone else's record / own record)."""
    return dict(zip(ROLES, (admin, manager, rep, clerk, agent, marketing), strict=True))


OWNED = f"{HIDDEN}/{OK}"  # someone else's record is hidden; their own is fine
# Written by hand from the product's rules (docs/security.md), not derived from POLICIES.
MATRIX: dict[str, dict[str, str]] = {
    "get_me": row(OK, OK, OK, OK, OK, OK),
    "capture_lead": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "list_leads": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_lead": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "convert_lead": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_deal": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "close_deal": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_sources": row(OK, OK, OK, OK, OK, OK),
    "list_orders": row(OK, OWNED, OWNED, OK, OK, FORBIDDEN),
    "get_order": row(OK, OWNED, OWNED, OK, OK, FORBIDDEN),
    "ship_order": row(OK, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, FORBIDDEN),
    "list_customers": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "get_customer": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "list_timeline": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "get_customer_summary": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "list_contact_persons": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "add_contact_person": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "remove_contact_person": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "list_addresses": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "add_address": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "remove_address": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "list_consent_records": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "export_consent_records": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # a rep's search answers 200 with only their own customers (test_a_rep_finds_only_their_own_customers)
    "search_customers": row(OK, OK, OK, OK, OK, FORBIDDEN),
    "update_customer": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "list_consents": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "log_touch": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "list_product_suggestions": row(OK, OK, OWNED, FORBIDDEN, OK, FORBIDDEN),
    "get_customer_risk": row(OK, OK, OWNED, FORBIDDEN, OK, FORBIDDEN),
    "get_customer_value": row(OK, OK, OWNED, FORBIDDEN, OK, FORBIDDEN),
    "create_retention_list": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_retention_lists": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_retention_list": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "record_retention_response": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_retention_report": row(OK, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "record_cross_sell_offer": row(OK, OK, OWNED, FORBIDDEN, OK, FORBIDDEN),
    "record_consent": row(OK, OK, OWNED, OK, OK, FORBIDDEN),
    "list_messages": row(OK, FORBIDDEN, FORBIDDEN, OK, OK, FORBIDDEN),
    "get_message": row(OK, FORBIDDEN, FORBIDDEN, OK, OK, FORBIDDEN),
    "preview_message": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    # promotions: marketing sends; a sales manager approves a large one (not their own) and reads
    # results; scheduling the matrix's draft is a 409 (its audience reaches nobody), so is pausing,
    # resuming or approving a draft, and cancelling it again once the first allowed cell did
    "preview_audience": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "create_promotion": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "list_promotions": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "get_promotion": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "get_promotion_report": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "estimate_promotion": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "schedule_promotion": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "pause_promotion": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "resume_promotion": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "cancel_promotion": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "approve_promotion": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # static audience lists: counts and line errors only, marketing's and admins'
    "import_audience_list": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "get_audience_list": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "list_audience_lists": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "source_report": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "create_web_form_key": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "list_web_form_keys": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "revoke_web_form_key": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "list_audit_records": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # events the services gave up on: admins only; replayed by the first admin cell, 409 after that
    "list_dead_letters": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_dead_letter": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "replay_dead_letter": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "create_source": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "create_campaign": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "update_campaign": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "list_campaigns": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "get_campaign": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "import_leads": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "get_lead_import": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "list_lead_imports": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "campaign_report": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "attribution_report": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "cross_sell_report": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    # the report builder: everyone who reports, each in their reach (a rep's own facts); the saved
    # report is shared with team-media's managers and reps (marketing has no team: not shared)
    "report_catalog": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "speed_to_lead_report": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "customer_value_report": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "funnel_report": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "run_report": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "export_report": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "create_saved_report": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "list_saved_reports": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "get_saved_report": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, HIDDEN),
    "run_saved_report": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, HIDDEN),
    "export_saved_report": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, HIDDEN),
    # only its owner (the admin who saved it) or an admin deletes it; those it is shared with get 403
    "delete_saved_report": row(OK, f"{HIDDEN}/{FORBIDDEN}", f"{HIDDEN}/{FORBIDDEN}", FORBIDDEN, FORBIDDEN, HIDDEN),
    # e-mail schedules: of reports one can open (shared with team-media's managers and reps, not
    # marketing); the admin's schedule is theirs alone (anyone else: as if it did not exist)
    "create_report_schedule": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, HIDDEN),
    "list_report_schedules": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "delete_report_schedule": row(OK, HIDDEN, HIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN),
    "send_report_schedule_now": row(OK, HIDDEN, HIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN),
    # targets: reps read their own, managers set their team's, marketing reads sources'
    "target_report": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "list_targets": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK),
    "create_target": row(OK, f"{FORBIDDEN}/{OK}", FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "update_target": row(OK, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "delete_target": row(OK, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_routing_rules": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "replace_routing_rules": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_reps": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "update_rep": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # admins create, move and deactivate; a manager reads their own team
    "create_rep": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "create_team": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_teams": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_team": row(OK, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "update_team": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_lead_queue": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "assign_lead": row(OK, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_lead_routing": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_lead_score": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_sla_breaches": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_my_leads": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_possible_duplicates": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # dismissed by the first allowed cell, 409 after that: still "allowed"
    "dismiss_possible_duplicate": row(OK, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "merge_leads": row(OK, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_incomplete_leads": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # managers use the company's customer directory; merged by the first allowed cell, then 409
    "merge_customers": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "log_lead_activity": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_lead_activities": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "log_deal_activity": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_deal_activities": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # a task completed by an earlier cell answers 409: still "allowed"
    "complete_activity": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_tasks": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "move_deal_stage": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "update_deal": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_deal_stage_history": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # whoever works deals reads the sales processes; admins and managers shape them
    "list_pipelines": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_pipeline": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "create_pipeline": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "update_pipeline": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_lost_reasons": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # a rep filtering by another rep, a manager by another team: 403 (the scope is never widened)
    "list_deals": row(OK, OK, f"{FORBIDDEN}/{OK}", FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_pipeline_board": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_forecast": row(OK, f"{FORBIDDEN}/{OK}", OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # quotes go with their deal: reps their own deals', managers their team's
    "create_quote": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_quotes": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_quote": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "render_quote_pdf": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "update_quote": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "send_quote": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "revise_quote": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "accept_quote": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "reject_quote": row(OK, OWNED, OWNED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # the catalog: every sales role reads prices for quotes; admins and managers keep it; VAT: admins
    "list_products": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_product": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "create_product": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "update_product": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_price_lists": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_price_list": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "create_price_list": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "update_price_list": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "set_price_list_item": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "remove_price_list_item": row(OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_tax_rates": row(OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "create_tax_rate": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # the service desk: agents work their queues (agent-yosef is in billing's), managers their
    # team's queues (billing is team-media's), reps read their customers' tickets; any manager may
    # open a ticket for a customer of the company's directory
    "open_ticket": row(OK, OK, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    "list_tickets": row(OK, OK, OWNED, FORBIDDEN, OK, FORBIDDEN),
    "get_ticket": row(OK, OWNED, OWNED, FORBIDDEN, OK, FORBIDDEN),
    "list_ticket_messages": row(OK, OWNED, OWNED, FORBIDDEN, OK, FORBIDDEN),
    "add_ticket_message": row(OK, OWNED, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    "add_ticket_attachment": row(OK, OWNED, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    "list_ticket_attachments": row(OK, OWNED, OWNED, FORBIDDEN, OK, FORBIDDEN),
    "get_ticket_attachment": row(OK, OWNED, OWNED, FORBIDDEN, OK, FORBIDDEN),
    "change_ticket_status": row(OK, OWNED, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    "assign_ticket": row(OK, OWNED, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    "list_ticket_categories": row(OK, OK, OK, FORBIDDEN, OK, FORBIDDEN),
    "list_support_queues": row(OK, OK, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    "update_support_queue": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "get_sla_policy": row(OK, OK, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    "update_sla_policy": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "list_sla_calendars": row(OK, OK, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    "put_sla_calendar": row(OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "support_report": row(OK, OK, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
}


def test_the_matrix_has_a_row_for_every_route() -> None:
    assert set(MATRIX) == set(POLICIES)


def expected(cell: str, own: bool) -> str:
    if "/" in cell:
        other, mine = cell.split("/")
        return mine if own else other
    return cell


def outcome(status: int) -> str:
    if status in (403, 404):
        return str(status)
    # Allowed: the request reached the business logic (it may still conflict: 409, e.g. already shipped).
    assert status in (200, 201, 202, 204, 409), status
    return OK


@pytest.mark.parametrize("own", [True, False], ids=["own", "other"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(MATRIX))
async def test_permission(stack: Stack, records: Records, route: str, role: str, own: bool) -> None:
    owner = records.lead["assignment"]
    if own:
        subject, team = (owner["rep_id"], owner["team_id"]) if role == "sales_rep" else ("", owner["team_id"])
    else:
        subject, team = ("rep-sara", "team-digital") if role == "sales_rep" else ("", "team-digital")
    if role not in ("sales_rep", "sales_manager"):
        team = ""
    method, path, body, query = request_for(route, records)
    headers = stack.auth_headers(role, subject=subject, team_id=team)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as http:
        if isinstance(body, bytes):  # the CSV upload, a ticket attachment
            response = await http.request(
                method, path, content=body, params=query, headers=HEADERS.get(route, CSV_HEADERS)
            )
        else:
            response = await http.request(method, path, json=body, params=query, headers=HEADERS.get(route))

    want = expected(MATRIX[route][role], own)
    assert outcome(response.status_code) == want, (route, role, own, response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_rep_lists_only_their_own_leads(stack: Stack, records: Records) -> None:
    owner = records.lead["assignment"]["rep_id"]
    headers = stack.auth_headers("sales_rep", subject=owner, team_id="team-media")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as http:
        mine = await http.get("/api/v1/leads", params={"page_size": 100})
        others = await http.get("/api/v1/leads", params={"rep_id": "rep-sara"})

    assert mine.status_code == 200
    assert mine.json()["leads"]
    assert {lead["assignment"]["rep_id"] for lead in mine.json()["leads"]} == {owner}
    assert others.status_code == 403


async def test_a_rep_finds_only_their_own_customers(stack: Stack, records: Records) -> None:
    """A search never tells a rep that someone else's customer exists: same answer as no match."""
    owner = records.lead["assignment"]["rep_id"]
    query = {"query": records.customer["phone_number"]}
    found: dict[str, list[str]] = {}
    for rep in (owner, "rep-sara"):
        headers = stack.auth_headers("sales_rep", subject=rep, team_id="team-media")
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as http:
            response = await http.get("/api/v1/search/customers", params=query)
        assert response.status_code == 200, response.text
        found[rep] = [m["customer"]["id"] for m in response.json()["matches"]]
    assert found == {owner: [records.customer["id"]], "rep-sara": []}


async def test_a_manager_lists_only_their_team(stack: Stack, records: Records) -> None:
    headers = stack.auth_headers("sales_manager", team_id="team-digital")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as http:
        captured = await http.post("/api/v1/leads", json=lead_body("website"))
        listed = await http.get("/api/v1/leads", params={"page_size": 100})
        other_team = await http.get("/api/v1/leads", params={"team_id": "team-media"})

    assert captured.status_code == 201
    teams = {lead["assignment"]["team_id"] for lead in listed.json()["leads"]}
    assert teams == {"team-digital"}
    assert captured.json()["id"] in {lead["id"] for lead in listed.json()["leads"]}
    assert other_team.status_code == 403


@pytest.mark.parametrize(
    ("roles", "team_id"), [(["sales_rep"], "team-media"), (["sales_manager"], "")], ids=["rep", "manager"]
)
async def test_a_token_naming_no_rep_or_team_sees_nobody_s_records(
    stack: Stack, records: Records, roles: list[str], team_id: str
) -> None:
    """An empty rep_id claim (and a manager's missing team) fails closed: 403 on every scoped list,
    404 on a record — never the whole company's (the backends read an empty filter as none)."""
    issuer = DevIssuer.load_or_create(stack.dev_issuer_key_file)
    token = issuer.mint("user-without-rep", roles, team_id=team_id, extra={"rep_id": ""})
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as http:
        lists = {
            path: (await http.get(path)).status_code
            for path in (
                "/api/v1/leads",
                "/api/v1/incomplete-leads",
                "/api/v1/tasks",
                "/api/v1/reps",
                "/api/v1/my-leads",
            )
        }
        lead = await http.get(f"/api/v1/leads/{records.lead['id']}")

    assert lists == dict.fromkeys(lists, 403)
    assert lead.status_code == 404


async def test_changes_are_audited_with_the_actor_and_request_id(stack: Stack, records: Records) -> None:
    owner = records.lead["assignment"]["rep_id"]
    rep = stack.auth_headers("sales_rep", subject=owner, team_id="team-media")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as admin:
        lead = await capture_media_lead(admin, owner)
        converted = await admin.post(
            f"/api/v1/leads/{lead['id']}/convert",
            json={"title": "audit me"},
            headers={**rep, "X-Request-ID": "req-audit-1"},
        )
        assert converted.status_code == 201, converted.text
        assert converted.headers["x-request-id"] == "req-audit-1"
        # Leads records the conversion on the lead; sales opens the deal: both under the caller.
        conversion = await admin.get("/api/v1/audit-records", params={"service": "leads", "record_id": lead["id"]})
        opening = await admin.get(
            "/api/v1/audit-records", params={"service": "sales", "record_id": converted.json()["id"]}
        )

    assert (conversion.status_code, opening.status_code) == (200, 200), conversion.text + opening.text
    [converting] = [r for r in conversion.json()["audit_records"] if r["action"] == "leads.ConvertLead"]
    [opened] = opening.json()["audit_records"]
    for record, action in ((converting, "leads.ConvertLead"), (opened, "sales.OpenDeal")):
        assert (record["actor"], record["action"], record["request_id"]) == (owner, action, "req-audit-1")


# ---------------------------------------------------------------- capture, replay and import paths


@pytest.mark.parametrize(
    ("role", "subject", "team"),
    [("sales_rep", "rep-sara", "team-digital"), ("sales_manager", "", "team-digital"), ("marketing", "", "")],
    ids=["rep of another team", "manager of another team", "marketing"],
)
async def test_capturing_someone_elses_lead_again_reveals_and_changes_nothing(
    stack: Stack, records: Records, role: str, subject: str, team: str
) -> None:
    """The person is team-media's lead: a caller who may not read it learns only that the capture
    was a duplicate (no id, owner or fields), and fills none of its empty fields."""
    lead = records.lead_to_convert
    city = f"עיר {uuid.uuid4().hex[:6]}"
    body = {
        "full_name": "Someone",
        "phone_number": lead["phone_number"],
        "email": f"planted-{uuid.uuid4().hex[:8]}@example.com",
        "city": city,
        "source": "website",
    }
    headers = stack.auth_headers(role, subject=subject, team_id=team)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as http:
        captured = await http.post("/api/v1/leads", json=body)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as admin:
        after = (await admin.get(f"/api/v1/leads/{lead['id']}")).json()

    assert captured.status_code == 200, captured.text
    assert captured.json() == {"duplicate": True}
    assert lead["id"] not in captured.text and lead["assignment"]["rep_id"] not in captured.text
    # the touch is counted on the person's one lead, and nothing else about it changed
    assert after["touch_count"] > lead["touch_count"]
    assert (after["email"], after["city"]) == (lead["email"], lead["city"]) == ("", "")


async def test_the_leads_own_rep_capturing_it_again_gets_it_and_fills_it(stack: Stack, records: Records) -> None:
    owner = records.lead["assignment"]
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as admin:
        lead = await capture_media_lead(admin, owner["rep_id"])
    headers = stack.auth_headers("sales_rep", subject=owner["rep_id"], team_id=owner["team_id"])
    email = f"own-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as http:
        captured = await http.post(
            "/api/v1/leads",
            json={"full_name": "x", "phone_number": lead["phone_number"], "email": email, "source": "tv"},
        )

    assert captured.status_code == 200, captured.text
    body = captured.json()
    assert (body["id"], body["duplicate"], body["matched_on"]) == (lead["id"], True, "phone_number")
    assert body["email"] == email


async def test_another_caller_replaying_a_request_id_gets_nothing_of_the_first_callers_lead(
    stack: Stack, records: Records
) -> None:
    request_id = f"replay-{uuid.uuid4()}"
    first_headers = stack.auth_headers("sales_manager", team_id="team-media")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=first_headers) as first:
        original = await first.post("/api/v1/leads", json={**lead_body(), "request_id": request_id})
        replayed = await first.post("/api/v1/leads", json={**lead_body(), "request_id": request_id})
    assert original.status_code == 201, original.text
    assert replayed.json()["id"] == original.json()["id"]  # the caller's own retry is a replay

    for role, subject, team in (("marketing", "", ""), ("sales_manager", "manager-of-digital", "team-digital")):
        headers = stack.auth_headers(role, subject=subject, team_id=team)
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as other:
            in_body = await other.post("/api/v1/leads", json={**lead_body("website"), "request_id": request_id})
            as_key = await other.post(
                "/api/v1/leads", json=lead_body("website"), headers={"Idempotency-Key": request_id}
            )
        # Their own capture (then their own replay of it), never the first caller's lead.
        assert in_body.status_code == as_key.status_code == 201, (in_body.text, as_key.text)
        assert in_body.json()["id"] == as_key.json()["id"] != original.json()["id"]
        assert original.json()["phone_number"] not in in_body.text + as_key.text


async def test_replaying_its_own_request_id_tells_marketing_nothing_of_the_lead_now(stack: Stack) -> None:
    """Marketing captures for the reps and may not read leads: the first answer is the lead its
    request made; a later repeat of the request id must not become a way to read that lead's
    status, owner or the fields a rep added since."""
    request_id = f"mkt-{uuid.uuid4()}"
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers("marketing")
    ) as marketing:
        first = await marketing.post("/api/v1/leads", json={**lead_body(), "request_id": request_id})
        again = await marketing.post("/api/v1/leads", json={**lead_body(), "request_id": request_id})
        lead = first.json()
        forbidden = await marketing.get(f"/api/v1/leads/{lead['id']}")

    assert first.status_code == 201, first.text
    assert forbidden.status_code in (403, 404)
    assert again.status_code == 201
    assert again.json() == {"id": lead["id"], "duplicate": False, "replayed": True}


async def test_an_import_rows_request_id_cannot_be_claimed(stack: Stack, records: Records) -> None:
    """A row used to be captured as `import:<import id>:<row>` company-wide: knowing an import's id,
    anyone could replay a row and read its lead. A row's id is the import's own now."""
    import_id = records.lead_import["id"]
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as admin:

        async def imported() -> dict[str, Any] | None:
            got = (await admin.get(f"/api/v1/lead-imports/{import_id}")).json()
            return got if got["status"] == "completed" else None

        assert (await eventually(imported))["rows_imported"] == 1
        for role in ("marketing", "sales_rep", "admin"):
            headers = stack.auth_headers(role, subject="rep-sara" if role == "sales_rep" else "")
            body = {**lead_body(), "request_id": f"import:{import_id}:1"}
            claimed = await admin.post("/api/v1/leads", json=body, headers=headers)
            # A new lead from what this caller sent, not the import row's lead.
            assert claimed.status_code == 201, claimed.text
            assert claimed.json()["phone_number"].endswith(body["phone_number"][-7:])
