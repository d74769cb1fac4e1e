"""The service desk end to end, as separate processes: an agent finds a customer by a misspelt
Persian name, opens a complaint about their order, answers it within its SLA and resolves it; the
customer is texted the survey and scores it with one tap; the service team's manager sees SLA
attainment and satisfaction; a withdrawn consent shows in the profile and stops the next survey."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually
from crm_support.seed import SLA_POLICY_V1

pytestmark = pytest.mark.e2e

ITEMS = [{"sku": "SOFA-3", "quantity": 1, "unit_price": {"amount_minor": 459900, "currency_code": "ILS"}}]
COMPLAINTS = {"strategy": "least_loaded", "member_ids": ["agent-yosef"], "team_id": "team-service"}
PERSIAN_LETTERS = "بپتجچخدرزسشفقگلمنهو"


def persian_customer() -> tuple[str, str]:
    """A Persian name no other test uses, and the same name as a keyboard set to Arabic types it
    (ك for ک, ي for ی): the spelling an agent gets from a customer on the phone."""
    suffix = "".join(PERSIAN_LETTERS[b % len(PERSIAN_LETTERS)] for b in uuid.uuid4().bytes[:3])
    name = f"مریم کاظمی{suffix}"
    return name, name.replace("ک", "ك").replace("ی", "ي")


def unique_phone() -> str:
    return f"+98912{uuid.uuid4().int % 10_000_000:07d}"


async def sms_for(sms: httpx.AsyncClient, phone: str) -> list[dict[str, Any]]:
    return [m for m in (await sms.get("/messages")).json() if m["to"] == phone]


def clock(ticket: dict[str, Any], metric: str) -> dict[str, Any]:
    return next(c for c in ticket["sla"] if c["metric"] == metric)


async def a_customer_with_an_order(
    api: httpx.AsyncClient, name: str, phone: str, email: str | None = None
) -> tuple[str, dict[str, Any]]:
    person = {"full_name": name, "phone_number": phone, "source": "radio", "locale": "fa-IR"}
    lead = await api.post("/api/v1/leads", json={**person, **({"email": email} if email else {})})
    assert lead.status_code == 201, lead.text
    deal = await api.post(f"/api/v1/leads/{lead.json()['id']}/convert", json={"title": "مبل"})
    assert deal.status_code == 201, deal.text
    won = await api.post(f"/api/v1/deals/{deal.json()['id']}/close", json={"outcome": "won", "items": ITEMS})
    assert won.status_code == 200, won.text

    async def order() -> dict[str, Any] | None:
        found = (await api.get("/api/v1/orders", params={"deal_id": deal.json()["id"]})).json()["orders"]
        return found[0] if found else None

    async def customer() -> str | None:
        found = (await api.get("/api/v1/customers", params={"lead_id": lead.json()["id"]})).json()["customers"]
        return found[0]["id"] if found else None

    return await eventually(customer, timeout=30), await eventually(order, timeout=30)


async def finds_her_by_what_she_quotes(
    agent: httpx.AsyncClient, stack: Stack, ticket: dict[str, Any], order: dict[str, Any], customer_id: str
) -> None:
    # Quoting the ticket's number or the order's id on the phone finds her too, first.
    for quoted, how in ((f"#{ticket['number']}", "ticket_number"), (order["id"], "order")):
        response = await agent.get("/api/v1/search/customers", params={"query": quoted})
        assert response.status_code == 200, response.text
        assert (response.json()["matches"][0]["customer"]["id"], response.json()["matches"][0]["match"]) == (
            customer_id,
            how,
        )
    other_rep = stack.auth_headers("sales_rep", subject="rep-sara", team_id="team-digital")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=other_rep) as rep:
        hidden = await rep.get("/api/v1/search/customers", params={"query": f"#{ticket['number']}"})
        assert hidden.status_code == 200 and hidden.json()["matches"] == []


async def the_profile_adds_it_up(agent: httpx.AsyncClient, customer_id: str) -> None:
    # The profile's figures add it all up.
    summary = await agent.get(f"/api/v1/customers/{customer_id}/summary")
    assert summary.status_code == 200, summary.text
    figures = summary.json()
    assert figures["lifetime_value"] == [{"amount_minor": 459900, "currency_code": "ILS"}]
    assert (figures["deals_won"], figures["tickets_opened"], figures["open_tickets"]) == (1, 1, 0)
    assert (figures["surveys_answered"], figures["satisfaction_average"]) == (1, 5.0)
    assert figures["open_deals"] == [] and figures["last_contact_time"]


async def the_shipped_policy_in_force(api: httpx.AsyncClient) -> None:
    """The SLA policy as a new install ships it: other tests of the shared stack (the schema fuzzer,
    the permission matrix) publish versions of their own."""
    current = (await api.get("/api/v1/support/sla-policy")).json()
    body = {
        "targets": SLA_POLICY_V1["targets"],
        "warn_before_minutes": SLA_POLICY_V1["warn_before_minutes"],
        "escalate_after_minutes": SLA_POLICY_V1["escalate_after_minutes"],
        "reassign_on_breach": SLA_POLICY_V1["reassign_on_breach"],
        "based_on_version": current["version"],
    }
    response = await api.put("/api/v1/support/sla-policy", json=body)
    assert response.status_code == 200, response.text


async def radio_complaints(api: httpx.AsyncClient, since: datetime) -> int | None:
    """Complaints opened since `since` by customers whose first lead came from the radio."""
    response = await api.get("/api/v1/reports/sources", params={"start_time": since.isoformat()})
    assert response.status_code == 200, response.text
    row = next((r for r in response.json()["rows"] if r["source"] == "radio"), None)
    return row["complaints"] if row and row["complaints"] else None


async def test_a_complaint_from_search_to_survey_and_the_manager_s_report(api, sms, stack: Stack) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    assert (await api.put("/api/v1/support/queues/complaints", json=COMPLAINTS)).status_code == 200
    await the_shipped_policy_in_force(api)
    name, misspelt = persian_customer()
    phone = unique_phone()
    customer_id, order = await a_customer_with_an_order(api, name, phone)
    agent = httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers("service_agent"))
    manager_headers = stack.auth_headers("sales_manager", subject="manager-service", team_id="team-service")
    manager = httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=manager_headers)
    async with agent, manager:
        # The agent finds her by the name as the customer spelt it on the phone.
        async def found() -> list[str] | None:
            response = await agent.get("/api/v1/search/customers", params={"query": misspelt})
            assert response.status_code == 200, response.text
            ids = [m["customer"]["id"] for m in response.json()["matches"]]
            return ids if customer_id in ids else None

        assert (await eventually(found, timeout=30))[0] == customer_id

        opened = await agent.post(
            "/api/v1/tickets",
            json={
                "customer_id": customer_id,
                "order_id": order["id"],
                "kind": "complaint",
                "channel": "phone",
                "priority": "high",
                "category_id": "product.damage",
                "subject": "پایه مبل شکسته رسید",
            },
        )
        assert opened.status_code == 201, opened.text
        ticket = opened.json()
        assert (ticket["queue_id"], ticket["assignee_id"], ticket["order_id"]) == (
            "complaints",
            "agent-yosef",
            order["id"],
        )
        assert clock(ticket, "first_response")["target_seconds"] == 3600
        await finds_her_by_what_she_quotes(agent, stack, ticket, order, customer_id)

        replied = await agent.post(
            f"/api/v1/tickets/{ticket['id']}/messages",
            json={"visibility": "public_reply", "body": "همکار ما فردا پایه را تعویض می‌کند."},
        )
        assert replied.status_code == 201, replied.text
        assert clock(replied.json()["ticket"], "first_response")["state"] == "met"

        read = await agent.get(f"/api/v1/tickets/{ticket['id']}")
        resolved = await agent.post(
            f"/api/v1/tickets/{ticket['id']}/status",
            json={"status": "resolved", "note": "پایه تعویض شد"},
            headers={"If-Match": read.headers["ETag"]},
        )
        assert resolved.status_code == 200, resolved.text
        assert clock(resolved.json(), "resolution")["state"] == "met"

        # The customer is texted the survey in Persian, and scores it with one tap.
        texts = await eventually(lambda: sms_for(sms, phone), timeout=30)
        assert len(texts) == 1 and "?lang=fa" in texts[0]["body"]
        token = re.search(r"/s/([A-Za-z0-9_-]+)\?lang=fa", texts[0]["body"]).group(1)  # type: ignore[union-attr]
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15) as anonymous:
            answered = await anonymous.post(f"/api/v1/public/support/surveys/{token}", json={"score": 5})
            assert answered.status_code == 200, answered.text
            assert answered.json() == {"score": 5, "ticket_number": ticket["number"]}
            forged = await anonymous.post(f"/api/v1/public/support/surveys/{'x' * 32}", json={"score": 1})
            assert forged.status_code == 404

        # The service team's manager sees the attainment and the satisfaction.
        report = await manager.get(
            "/api/v1/support/report", params={"group_by": "agent", "from_time": started.isoformat()}
        )
        assert report.status_code == 200, report.text
        row = next(r for r in report.json()["rows"] if r["key"] == "agent-yosef")
        assert (row["opened"], row["resolved"], row["survey_answers"], row["csat_average"]) == (1, 1, 1, 5.0)
        attainment = {a["metric"]: (a["met"], a["breached"]) for a in row["sla"]}
        assert attainment["first_response"] == (1, 0) and attainment["resolution"] == (1, 0)

        # The profile's timeline shows the ticket and the answer.
        async def desk_entries() -> list[str] | None:
            entries = (await agent.get(f"/api/v1/customers/{customer_id}/timeline")).json()["entries"]
            kinds = [e["kind"] for e in entries if e["kind"] in ("ticket_opened", "ticket_resolved", "survey_answered")]
            return kinds if len(kinds) == 3 else None

        assert await eventually(desk_entries, timeout=30) == ["ticket_opened", "ticket_resolved", "survey_answered"]

        # Reporting has the complaint too, under the source of the lead that made her (radio).
        assert await eventually(lambda: radio_complaints(api, started), timeout=30) == 1
        await the_profile_adds_it_up(agent, customer_id)


async def test_a_withdrawn_consent_shows_in_the_profile_and_stops_the_next_survey(api, sms, stack: Stack) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    assert (await api.put("/api/v1/support/queues/complaints", json=COMPLAINTS)).status_code == 200
    name, _ = persian_customer()
    phone = unique_phone()
    customer_id, _order = await a_customer_with_an_order(api, name, phone)
    agent = httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers("service_agent"))
    async with agent:
        for granted, source, evidence in ((True, "recorded_call", "call-2291.ogg"), (False, "agent", "")):
            body = {
                "channel": "sms",
                "purpose": "marketing",
                "granted": granted,
                "source": source,
                "evidence": evidence,
            }
            given = await agent.post(f"/api/v1/customers/{customer_id}/consents", json=body)
            assert given.status_code == 201, given.text
        withdrawn = await agent.post(
            f"/api/v1/customers/{customer_id}/consents",
            json={"channel": "sms", "purpose": "service", "granted": False, "source": "agent"},
        )
        assert withdrawn.status_code == 201, withdrawn.text
        consents = (await agent.get(f"/api/v1/customers/{customer_id}/consents")).json()
        states = {(s["channel"], s["purpose"]): s["granted"] for s in consents["states"]}
        assert states[("sms", "marketing")] is False and states[("sms", "service")] is False
        assert [r["granted"] for r in consents["records"]] == [False, False, True]  # newest first

        opened = await agent.post(
            "/api/v1/tickets",
            json={
                "customer_id": customer_id,
                "kind": "question",
                "channel": "sms",
                "category_id": "product.delivery",
                "subject": "زمان تحویل؟",
            },
        )
        assert opened.status_code == 201, opened.text
        resolved = await agent.post(f"/api/v1/tickets/{opened.json()['id']}/status", json={"status": "resolved"})
        assert resolved.status_code == 200, resolved.text

    async def suppressed() -> dict[str, Any] | None:
        messages = (await api.get("/api/v1/messages", params={"page_size": 100})).json()["messages"]
        return next((m for m in messages if m["recipient"] == phone and m["status"] == "suppressed"), None)

    message = await eventually(suppressed, timeout=30)
    assert message["last_error"] == "no consent"
    assert await sms_for(sms, phone) == []

    # The regulator's export has the whole story, oldest first, with the customer's name.
    export = await api.get("/api/v1/consent-records/export", params={"from_time": started.isoformat()})
    assert export.status_code == 200, export.text
    assert export.headers["content-type"].startswith("text/csv")
    assert export.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    mine = [(r["channel"], r["purpose"], r["granted"], r["source"]) for r in rows if r["customer_id"] == customer_id]
    assert mine == [
        ("sms", "marketing", "yes", "recorded_call"),
        ("sms", "marketing", "no", "agent"),
        ("sms", "service", "no", "agent"),
    ]
    assert {r["full_name"] for r in rows if r["customer_id"] == customer_id} == {name}
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers("service_agent")
    ) as agent_again:
        assert (await agent_again.get("/api/v1/consent-records/export")).status_code == 403


async def resolve_a_question(agent: httpx.AsyncClient, customer_id: str, subject: str) -> None:
    opened = await agent.post(
        "/api/v1/tickets",
        json={
            "customer_id": customer_id,
            "kind": "question",
            "channel": "email",
            "category_id": "product.delivery",
            "subject": subject,
        },
    )
    assert opened.status_code == 201, opened.text
    resolved = await agent.post(f"/api/v1/tickets/{opened.json()['id']}/status", json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text


async def test_a_customer_who_allows_only_e_mail_gets_the_survey_by_e_mail(api, sms, stack: Stack) -> None:
    """Service SMS withdrawn, service e-mail allowed: the survey arrives by e-mail at the SMTP
    relay (the stack's sink) in Persian, right to left, and its link scores the ticket; once
    service e-mail is withdrawn too, the next survey is suppressed."""
    assert (await api.put("/api/v1/support/queues/complaints", json=COMPLAINTS)).status_code == 200
    name, _ = persian_customer()
    phone, email = unique_phone(), f"survey-{uuid.uuid4().hex[:10]}@example.com"
    customer_id, _order = await a_customer_with_an_order(api, name, phone, email)
    agent = httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers("service_agent"))
    mail = httpx.AsyncClient(base_url=stack.mail_url, timeout=15)
    async with agent, mail:
        no_sms = {"channel": "sms", "purpose": "service", "granted": False, "source": "agent"}
        assert (await agent.post(f"/api/v1/customers/{customer_id}/consents", json=no_sms)).status_code == 201
        await resolve_a_question(agent, customer_id, "رسید پرداخت را ایمیل کنید")

        async def mails() -> list[dict[str, Any]] | None:
            found = [m for m in (await mail.get("/messages")).json() if m["rcpt_to"] == [email]]
            return found or None

        [received] = await eventually(mails, timeout=30)
        assert "رسیدگی شد" in received["subject"] and name in received["text"]
        assert '<html lang="fa" dir="rtl">' in received["html"]
        token = re.search(r"/s/([A-Za-z0-9_-]+)\?lang=fa", received["text"]).group(1)  # type: ignore[union-attr]
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15) as anonymous:
            answered = await anonymous.post(f"/api/v1/public/support/surveys/{token}", json={"score": 4})
            assert answered.status_code == 200, answered.text
        assert await sms_for(sms, phone) == []

        no_email = {**no_sms, "channel": "email"}
        assert (await agent.post(f"/api/v1/customers/{customer_id}/consents", json=no_email)).status_code == 201
        await resolve_a_question(agent, customer_id, "سؤال دوم")

        async def suppressed() -> list[dict[str, Any]] | None:
            messages = (await api.get("/api/v1/messages", params={"page_size": 100})).json()["messages"]
            found = [m for m in messages if m["recipient"] == phone and m["status"] == "suppressed"]
            return found or None

        assert [m["last_error"] for m in await eventually(suppressed, timeout=30)] == ["no consent"]
        assert len(await mails() or []) == 1
