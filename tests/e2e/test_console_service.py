"""The service desk in a real browser against the whole system: a service agent opens a complaint
from the customer's page, replies, waits for the customer and resolves it; the ticket page shows
its SLA clocks and the conversation, the list shows the ticket; the customer answers the survey
from the SMS link (no sign-in); a manager of the service team sees the CSAT in the support report.
axe-core on every screen; screenshots in Hebrew and Persian."""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
import uuid
from typing import Any

import httpx
import nats
import pytest

from crm.support.v1.events_pb2 import TicketResolved
from crm_console.api import operations
from crm_console.session import SESSION_COOKIE, Sealer, Session
from crm_devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SERVICE_TEAM = "team-service"


async def staff_the_queues(stack: Stack) -> None:
    """The demo agent in the queues the test's categories route to, the queues in the service team
    (queues start without members)."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        # The routes as the console calls them (its copy of the gateway's spec, by operationId).
        queues = (await api.get(operations()["listSupportQueues"].path)).json()["queues"]
        update = operations()["updateSupportQueue"].path
        for queue in (q for q in queues if q["id"] in ("general", "complaints")):
            body = {
                "strategy": queue["strategy"] if queue["strategy"] != "unspecified" else "round_robin",
                "member_ids": sorted({*queue["member_ids"], "agent-yosef"}),
                "team_id": SERVICE_TEAM,
                "calendar_code": queue["calendar_code"],
            }
            answer = await api.put(update.format(queue_id=queue["id"]), json=body)
            assert answer.status_code == 200, answer.text


async def captured_lead(stack: Stack, name: str) -> str:
    """A new lead (an admin captures it); the customers service makes its customer from the event."""
    phone = f"05{random.randint(0, 9)}{random.randint(1_000_000, 9_999_999)}"
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        captured = await api.post("/api/v1/leads", json={"full_name": name, "phone_number": phone, "source": "website"})
    assert captured.status_code == 201, captured.text
    return str(captured.json()["id"])


async def survey_token(stack: Stack, ticket_id: str) -> str:
    """The survey link's token travels only in the TicketResolved event: read it from JetStream
    with a consumer of this test's own, removed afterwards."""
    durable = f"e2e-console-service-{uuid.uuid4().hex[:12]}"
    nc = await nats.connect(stack.nats_url)
    js = nc.jetstream()
    try:
        subscription = await js.pull_subscribe("crm.support.ticket_resolved", durable=durable, stream="CRM")
        for _ in range(40):
            try:
                messages = await subscription.fetch(100, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for message in messages:
                await message.ack()
                event = TicketResolved()
                event.ParseFromString(message.data)
                if event.ticket_id == ticket_id:
                    return event.survey_token
        raise AssertionError(f"no TicketResolved for {ticket_id}")
    finally:
        await js.delete_consumer("CRM", durable)
        await nc.close()


async def check(console: Any, page: Any, name: str) -> None:
    await console.shot(page, name)
    await console.no_serious_axe_violations(page, name)


async def to_persian(page: Any) -> None:
    await page.get_by_role("link", name="فارسی").click()
    await page.locator("html[lang=fa]").wait_for()


async def open_complaint(console: Any, page: Any, lead_id: str, name: str, subject: str) -> str:
    """From the customer's page, as the agent: the new ticket's page address."""
    await console.sign_in(page, "service_agent", f"/leads/{lead_id}/customer")
    await console.reload_until(page, page.get_by_role("heading", level=1, name=re.compile(re.escape(name))))
    await page.get_by_role("link", name="פתיחת פנייה").click()
    await page.get_by_label("סוג", exact=True).select_option("complaint")
    await page.get_by_label("ערוץ", exact=True).select_option("phone")
    await page.get_by_label("עדיפות", exact=True).select_option("high")
    await page.get_by_label("קטגוריה", exact=True).select_option("product.damage")
    await page.get_by_label("נושא", exact=True).fill(subject)
    await page.get_by_label("תיאור", exact=True).fill("הספה הגיעה עם רגל שבורה.")
    await page.get_by_role("button", name="פתיחת פנייה").click()
    await page.wait_for_url(re.compile(r"/service/tickets/[^/#?]+$"))
    assert await page.locator("dd.ticket-status").get_attribute("data-status") == "new"
    return str(page.url)


async def send(page: Any, visibility: str, text: str) -> None:
    await page.get_by_label(visibility, exact=True).check()
    await page.get_by_label("תוכן ההודעה").fill(text)
    await page.get_by_role("button", name="שליחה").click()
    await page.wait_for_url(re.compile(r"#conversation$"))


async def move(page: Any, button: str, status: str) -> None:
    await page.get_by_role("button", name=button).click()
    await page.wait_for_url(re.compile(r"#status$"))
    assert await page.locator("dd.ticket-status").get_attribute("data-status") == status


async def work_the_ticket(page: Any) -> None:
    """A public reply, an internal note, then waiting for the customer (the resolution clock
    pauses), then resolved."""
    await send(page, "תשובה ללקוח", "שלום, נשלח טכנאי מחר בבוקר.")
    await send(page, "הערה פנימית", "לבדוק מלאי רגליים במחסן.")
    visibilities = await page.locator(".conversation li").evaluate_all("items => items.map(i => i.dataset.visibility)")
    assert visibilities == ["public_reply", "internal_note"]
    assert "פנימי" in await page.locator(".conversation li[data-visibility=internal_note] .msg-label").inner_text()
    await move(page, "המתנה ללקוח", "pending_customer")
    assert await page.locator("tr[data-metric=resolution]").get_attribute("data-state") == "paused"
    assert await page.locator("tr[data-metric=first_response]").get_attribute("data-state") == "met"
    await move(page, "סימון כנפתרה", "resolved")
    assert await page.get_by_role("button", name="פתיחה מחדש").count() == 1


async def the_customer_answers(console: Any, stack: Stack, token: str) -> None:
    """The survey link from the SMS, no sign-in: Persian and Hebrew, one tap on 5, thanks; a
    made-up link is "not valid"."""
    customer = await console.page(width=400)
    await customer.goto(f"{stack.console_url}/s/{token}?lang=fa")
    await customer.get_by_text("از نحوه‌ی رسیدگی به درخواستتان چقدر راضی هستید؟").wait_for()
    await check(console, customer, "service-survey-fa")
    await customer.goto(f"{stack.console_url}/s/{token}?lang=he")
    await customer.get_by_text("עד כמה אתם מרוצים מהטיפול בפנייה שלכם?").wait_for()
    await check(console, customer, "service-survey-he")
    await customer.get_by_role("button", name="ציון 5 מתוך 5").click()
    await customer.get_by_text("תודה! התשובה שלכם נשמרה.").wait_for()
    await check(console, customer, "service-survey-thanks-he")
    await customer.goto(f"{stack.console_url}/s/{'x' * 24}?lang=he")
    await customer.get_by_role("button", name="ציון 3 מתוך 5").click()
    await customer.get_by_text("הקישור הזה אינו תקף.").wait_for()


async def service_manager_page(console: Any, stack: Stack) -> Any:
    """A page signed in as a manager of the service team. The development sign-in offers only the
    demo manager (team-media), so the test seals the console session for a service-team token
    with the stack's console key."""
    page = await console.page()
    session = Session(
        token=stack.token("sales_manager", team_id=SERVICE_TEAM),
        subject="manager-media",
        name="manager-media",
        roles=("sales_manager",),
        expires_at=time.time() + 3600,
        csrf=secrets.token_urlsafe(24),
    )
    key = (await asyncio.to_thread(stack.console_session_key_file.read_text)).strip()
    sealed = Sealer(key).seal_session(session)
    await page.context.add_cookies([{"name": SESSION_COOKIE, "value": sealed, "url": stack.console_url}])
    return page


async def test_an_agent_works_a_complaint_and_the_customer_answers_the_survey(console: Any, stack: Stack) -> None:
    await staff_the_queues(stack)
    name = f"מיכל אברהם {random.randint(1000, 9999)}"
    lead_id = await captured_lead(stack, name)
    subject = f"רגל הספה נשברה {random.randint(1000, 9999)}"

    page = await console.page()
    ticket_url = await open_complaint(console, page, lead_id, name, subject)
    ticket_id = ticket_url.rsplit("/", 1)[1]
    await work_the_ticket(page)
    await check(console, page, "service-ticket-he")

    # The list shows it, and so does the customer's page.
    await page.goto(f"{stack.console_url}/service/tickets")
    assert subject in await page.locator(f"tr[data-ticket='{ticket_id}']").inner_text()
    await check(console, page, "service-tickets-he")
    await page.get_by_role("link", name=subject).click()
    await page.locator(".ticket-facts a[href^='/customers/']").click()
    assert await page.locator(f"#tickets tr[data-ticket='{ticket_id}']").count() == 1

    await to_persian(page)
    await page.goto(ticket_url)
    await page.get_by_role("heading", level=2, name="گفتگو").wait_for()
    await check(console, page, "service-ticket-fa")
    await page.goto(f"{stack.console_url}/service/tickets")
    await check(console, page, "service-tickets-fa")

    await the_customer_answers(console, stack, await survey_token(stack, ticket_id))

    manager = await service_manager_page(console, stack)
    await manager.goto(f"{stack.console_url}/service/report")
    complaints = manager.locator("tr[data-key=complaints]")
    await complaints.wait_for()
    assert (await complaints.locator(".csat").inner_text()).strip() == "5.0"
    assert await manager.locator("svg > title").text_content() == "עמידה ביעדי SLA"
    await check(console, manager, "service-report-he")
    await to_persian(manager)
    await manager.get_by_role("heading", level=1, name="گزارش پشتیبانی").wait_for()
    assert (await manager.locator("tr[data-key=complaints] .csat").inner_text()).strip() == "۵٫۰"
    await check(console, manager, "service-report-fa")
