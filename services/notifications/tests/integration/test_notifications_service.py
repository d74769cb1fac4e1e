"""The notifications service in process against real PostgreSQL, NATS JetStream and the real
fake SMS provider (served by uvicorn); a tiny customers server stands in at the gRPC edge."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import nats
import pytest
from sqlalchemy import func, select

from crm.common.v1 import types_pb2
from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm.notifications.v1 import events_pb2 as notification_events
from crm.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from crm.orders.v1 import events_pb2 as order_events
from crm.reporting.v1 import events_pb2 as reporting_events
from crm.support.v1 import events_pb2 as support_events
from crm_devstack.mail_sink import SinkState, smtp_controller
from crm_kit.service import Service
from crm_kit.testing import (
    eventually,
    field_violations,
    free_port,
    local_channel,
    publish_event,
    reset_stream,
    running_service,
)
from crm_kit.testing_tls import issue, make_ca, write
from crm_notifications.db import messaging
from crm_notifications.main import MIGRATIONS_DIR, NotificationsSettings, setup

pytestmark = pytest.mark.integration

HEBREW_TEXT = "שלום דנה כהן, ההזמנה שלך נשלחה עם דואר ישראל (מעקב RR{n}IL). מועד מסירה משוער: 3.12.2026."


@dataclass
class Meeting:
    """Calls that must all be waiting at once before any is answered; one that waited in vain
    (the others never came while it was held) sets `missed`."""

    size: int
    arrived: int = 0
    everyone: asyncio.Event = field(default_factory=asyncio.Event)
    missed: bool = False

    async def join(self) -> bool:
        self.arrived += 1
        if self.arrived >= self.size:
            self.everyone.set()
        try:
            # Shorter than the gRPC client's 5 s deadline: a handler running shipments one at a
            # time leaves the first one alone here, and that must show as `missed`.
            await asyncio.wait_for(self.everyone.wait(), timeout=3)
        except TimeoutError:
            self.missed = True
            return False
        return True


@dataclass
class FakeCustomers(customers_pb2_grpc.CustomersServiceServicer):
    """Answers GetContactInfo for known lead ids; a lead in `late` is unknown for its first n calls;
    the calls for a lead in `meetings` are answered only once its meeting is full."""

    contacts: dict[str, customers_pb2.GetContactInfoResponse] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    meetings: dict[str, Meeting] = field(default_factory=dict)

    def add(
        self,
        lead_id: str,
        *,
        locale: str = "he-IL",
        phone: str = "+972501234567",
        allowed: bool = True,
        email: str = "",
        email_allowed: bool = False,
    ) -> str:
        name = "علی رضایی" if locale == "fa-IR" else "דנה כהן"
        self.contacts[lead_id] = customers_pb2.GetContactInfoResponse(
            customer_id=f"c-{lead_id}",
            full_name=name,
            phone_number=phone,
            locale=locale,
            transactional_sms_allowed=allowed,
            email=email,
            transactional_email_allowed=email_allowed,
        )
        return lead_id

    async def GetContactInfo(
        self, request: customers_pb2.GetContactInfoRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.GetContactInfoResponse:
        key = request.lead_id or request.customer_id  # a survey asks by customer, a shipment by lead
        meeting = self.meetings.get(key)
        if meeting is not None and not await meeting.join():
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the other shipments never came")
        if self.late.get(key, 0) > 0:
            self.late[key] -= 1
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no customer for {key}")
        if key not in self.contacts:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no customer for {key}")
        return self.contacts[key]


@dataclass
class Harness:
    api: notifications_pb2_grpc.NotificationsServiceStub
    sms: httpx.AsyncClient
    customers: FakeCustomers
    nats_url: str
    service: Service
    mail: SinkState

    async def sms_sent(self) -> list[dict[str, str]]:
        response = await self.sms.get("/messages")
        response.raise_for_status()
        return list(response.json())

    async def messages_of(self, order_id: str) -> list[notifications_pb2.Message]:
        return list((await self.api.ListMessages(notifications_pb2.ListMessagesRequest(order_id=order_id))).messages)

    async def settled(self, order_id: str) -> notifications_pb2.Message | None:
        """The order's message once it left pending."""
        found = await self.messages_of(order_id)
        if found and found[0].status != notifications_pb2.MESSAGE_STATUS_PENDING:
            return found[0]
        return None

    async def drained(self) -> bool | None:
        """Every OrderShipped delivered to notifications was acked and what it recorded relayed:
        nothing is still in flight that could yet send or announce something."""
        nc = await nats.connect(self.nats_url)
        try:
            info = await nc.jetstream().consumer_info(
                self.service.settings.stream_name, self.service.bus.consumer_for(order_events.OrderShipped)
            )
        finally:
            await nc.close()
        if info.num_pending or info.num_ack_pending:
            return None
        async with self.service.db.unit_of_work() as uow:
            unrelayed = (await uow.conn.execute(select(func.count()).select_from(messaging.outbox))).scalar_one()
        return unrelayed == 0 or None


SMTP_USER, SMTP_PASSWORD = "crm-relay", "relay-secret-for-tests"


@dataclass
class Relay:
    state: SinkState
    port: int
    ca_file: str


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    """The SMTP sink as a relay that offers STARTTLS (a certificate from a CA made here) and wants
    a login after it."""
    ca = make_ca("test relay CA")
    cert, key = write(tmp_path, "relay", issue(ca, "localhost", server=True))
    ca_file, _ = write(tmp_path, "ca", ca)
    state, port = SinkState(), free_port()
    controller = smtp_controller(
        state, host="127.0.0.1", port=port, user=SMTP_USER, password=SMTP_PASSWORD, tls_cert=cert, tls_key=key
    )
    controller.start()
    yield Relay(state, port, ca_file)
    controller.stop()


@pytest.fixture
async def customers() -> AsyncIterator[tuple[FakeCustomers, str]]:
    servicer = FakeCustomers()
    server = grpc.aio.server()
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.fixture
async def harness(fresh_database, nats_server, sms_base_url, customers, relay: Relay) -> AsyncIterator[Harness]:
    await reset_stream(nats_server)
    servicer, customers_addr = customers
    port = free_port()
    settings = NotificationsSettings(
        database_url=await fresh_database("notifications"),
        nats_url=nats_server,
        grpc_port=port,
        metrics_port=free_port(),
        customers_addr=customers_addr,
        sms_base_url=sms_base_url,
        consumer_backoff_seconds=[0.1],
        consumer_max_deliver=3,
        smtp_host="localhost",
        smtp_port=relay.port,
        smtp_security="starttls",
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_from_address="service@crm.example",
        smtp_ca_file=relay.ca_file,
    )
    async with (
        running_service(settings, messaging, MIGRATIONS_DIR, setup) as service,
        httpx.AsyncClient(base_url=sms_base_url) as sms,
    ):
        ch = local_channel(port)
        yield Harness(
            notifications_pb2_grpc.NotificationsServiceStub(ch), sms, servicer, nats_server, service, relay.state
        )
        await ch.close()


def shipped(lead_id: str, n: int = 123) -> order_events.OrderShipped:
    return order_events.OrderShipped(
        order_id=f"o-{uuid.uuid4().hex[:8]}",
        deal_id="d-1",
        lead_id=lead_id,
        carrier="דואר ישראל",
        tracking_number=f"RR{n}IL",
        estimated_delivery_date=types_pb2.Date(year=2026, month=12, day=3),
    )


async def published(nats_url: str, subject: str, message_cls: type, until: Collection[str] = ()) -> list:
    """Every event on subject, in stream order, until one for each order in `until` was seen;
    with `until` empty, every event the stream holds (the caller waited until drained)."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe(subject, durable=f"test-{uuid.uuid4().hex[:8]}")
        seen: list = []
        while not until or not set(until) <= {e.order_id for e in seen}:
            try:
                msgs = await sub.fetch(1, timeout=10 if until else 1)
            except (nats.errors.TimeoutError, TimeoutError):
                if until:
                    raise
                break
            seen.extend(message_cls.FromString(m.data) for m in msgs)
        return seen
    finally:
        await nc.close()


async def test_order_shipped_sends_one_hebrew_sms_even_when_redelivered(harness: Harness) -> None:
    lead = harness.customers.add(f"l-{uuid.uuid4().hex[:8]}")
    event = shipped(lead)
    event_id = await publish_event(harness.nats_url, event)

    message = await eventually(lambda: harness.settled(event.order_id))
    sms = await harness.sms_sent()
    assert [(s["to"], s["body"], s["sender"]) for s in sms] == [("+972501234567", HEBREW_TEXT.format(n=123), "CRM")]
    assert message.status == notifications_pb2.MESSAGE_STATUS_SENT
    assert (message.recipient, message.locale, message.channel) == ("+972501234567", "he-IL", "sms")
    assert message.provider_message_id == sms[0]["id"] and message.attempts == 1
    assert message.idempotency_key == f"order-shipped:{event.order_id}" == sms[0]["idempotency_key"]

    # Same event id, a new Nats-Msg-Id: JetStream delivers it again and only the inbox can stop it.
    await publish_event(harness.nats_url, event, event_id=event_id, **{"Nats-Msg-Id": f"again-{event_id}"})
    marker = shipped(lead, n=456)
    await publish_event(harness.nats_url, marker)
    await eventually(lambda: harness.settled(marker.order_id))
    await eventually(harness.drained)  # shipments run side by side: the redelivery may finish last

    assert [s["body"] for s in await harness.sms_sent()] == [HEBREW_TEXT.format(n=123), HEBREW_TEXT.format(n=456)]
    assert len(await harness.messages_of(event.order_id)) == 1
    sent_events = await published(
        harness.nats_url, "crm.notifications.notification_sent", notification_events.NotificationSent
    )
    assert [(e.order_id, e.message_id) for e in sent_events] == [
        (event.order_id, message.id),
        (marker.order_id, (await harness.settled(marker.order_id)).id),
    ]
    first = sent_events[0]
    assert (first.channel, first.recipient, first.lead_id, first.body) == (
        "sms",
        "+972501234567",
        lead,
        HEBREW_TEXT.format(n=123),
    )
    assert first.send_time.seconds > 0


async def test_shipments_are_handled_side_by_side_and_each_texted_once(harness: Harness) -> None:
    # Four shipments are answered by customers only once all four are asking at the same time:
    # a notifier that took one shipment after another would leave the first one waiting alone.
    meeting = Meeting(size=4)
    leads = [harness.customers.add(f"l-{uuid.uuid4().hex[:8]}") for _ in range(4)]
    harness.customers.meetings.update(dict.fromkeys(leads, meeting))
    events = [shipped(lead, n=i) for i, lead in enumerate(leads)]
    for e in events:
        await publish_event(harness.nats_url, e)

    messages = [await eventually(lambda e=e: harness.settled(e.order_id)) for e in events]
    await eventually(harness.drained)
    assert not meeting.missed
    assert [m.status for m in messages] == [notifications_pb2.MESSAGE_STATUS_SENT] * 4
    sms = await harness.sms_sent()
    assert sorted(s["body"] for s in sms) == sorted(HEBREW_TEXT.format(n=i) for i in range(4))
    sent = await published(
        harness.nats_url, "crm.notifications.notification_sent", notification_events.NotificationSent
    )
    assert sorted(e.order_id for e in sent) == sorted(e.order_id for e in events)


async def test_overlapping_deliveries_of_one_shipment_send_one_sms(harness: Harness) -> None:
    lead = harness.customers.add(f"l-{uuid.uuid4().hex[:8]}")
    meeting = harness.customers.meetings[lead] = Meeting(size=3)
    event = shipped(lead)
    # Three deliveries of one shipment in flight together: the event, its redelivery, and a second
    # OrderShipped for the same order under a new event id, which only the intent key can stop.
    event_id = await publish_event(harness.nats_url, event)
    await publish_event(harness.nats_url, event, event_id=event_id, **{"Nats-Msg-Id": f"again-{event_id}"})
    await publish_event(harness.nats_url, event)

    message = await eventually(lambda: harness.settled(event.order_id))
    await eventually(harness.drained)
    assert not meeting.missed
    assert message.status == notifications_pb2.MESSAGE_STATUS_SENT
    assert len(await harness.messages_of(event.order_id)) == 1
    sms = await harness.sms_sent()
    assert [(s["idempotency_key"], s["id"]) for s in sms] == [(message.idempotency_key, message.provider_message_id)]
    sent = await published(
        harness.nats_url, "crm.notifications.notification_sent", notification_events.NotificationSent
    )
    assert [(e.order_id, e.message_id) for e in sent] == [(event.order_id, message.id)]


async def test_provider_failures_are_retried_into_one_sms(harness: Harness) -> None:
    lead = harness.customers.add(f"l-{uuid.uuid4().hex[:8]}")

    await harness.sms.post("/control/fail-next", json={"count": 2, "status": 503})
    within_one_delivery = shipped(lead)
    await publish_event(harness.nats_url, within_one_delivery)
    message = await eventually(lambda: harness.settled(within_one_delivery.order_id))
    assert message.status == notifications_pb2.MESSAGE_STATUS_SENT and message.attempts == 3

    # Four failures outlast one delivery's three attempts: the chassis redelivers and the
    # pending intent is resumed with the same idempotency key.
    await harness.sms.post("/control/fail-next", json={"count": 4, "status": 503})
    across_deliveries = shipped(lead, n=789)
    await publish_event(harness.nats_url, across_deliveries)
    message = await eventually(lambda: harness.settled(across_deliveries.order_id))
    assert message.status == notifications_pb2.MESSAGE_STATUS_SENT and message.attempts == 5

    assert [s["body"] for s in await harness.sms_sent()] == [HEBREW_TEXT.format(n=123), HEBREW_TEXT.format(n=789)]


async def test_customer_without_consent_or_phone_gets_no_sms(harness: Harness) -> None:
    opted_out = harness.customers.add(f"l-{uuid.uuid4().hex[:8]}", allowed=False)
    no_phone = harness.customers.add(f"l-{uuid.uuid4().hex[:8]}", phone="")
    first, second = shipped(opted_out), shipped(no_phone)
    await publish_event(harness.nats_url, first)
    await publish_event(harness.nats_url, second)

    suppressed = [await eventually(lambda e=e: harness.settled(e.order_id)) for e in (first, second)]
    assert [m.status for m in suppressed] == [notifications_pb2.MESSAGE_STATUS_SUPPRESSED] * 2
    assert [m.last_error for m in suppressed] == ["no consent", "no phone"]
    assert await harness.sms_sent() == []
    failed = await published(
        harness.nats_url,
        "crm.notifications.notification_failed",
        notification_events.NotificationFailed,
        {first.order_id, second.order_id},
    )
    # Handled side by side: either may be announced first.
    assert sorted((e.order_id, e.reason) for e in failed) == sorted(
        [(first.order_id, "no consent"), (second.order_id, "no phone")]
    )


async def test_persian_customer_gets_persian_text(harness: Harness) -> None:
    lead = harness.customers.add(f"l-{uuid.uuid4().hex[:8]}", locale="fa-IR", phone="+989123456789")
    event = shipped(lead)
    event.carrier = "پست ایران"
    await publish_event(harness.nats_url, event)

    message = await eventually(lambda: harness.settled(event.order_id))
    expected = "سلام علی رضایی، سفارش شما با پست ایران ارسال شد (کد رهگیری RR123IL). تاریخ تقریبی تحویل: ۱۴۰۵/۰۹/۱۲."
    assert (message.locale, message.body) == ("fa-IR", expected)
    # 100 characters of Persian: UCS-2, two parts of 67 (what the provider charges for).
    assert (len(expected), message.sms_parts) == (100, 2)
    assert [(s["to"], s["body"]) for s in await harness.sms_sent()] == [("+989123456789", expected)]


async def test_provider_rejection_fails_the_message_once(harness: Harness) -> None:
    lead = harness.customers.add(f"l-{uuid.uuid4().hex[:8]}")
    await harness.sms.post("/control/fail-next", json={"count": 1, "status": 422})
    event = shipped(lead)
    event_id = await publish_event(harness.nats_url, event)
    message = await eventually(lambda: harness.settled(event.order_id))
    assert message.status == notifications_pb2.MESSAGE_STATUS_FAILED and "422" in message.last_error

    await publish_event(harness.nats_url, event, event_id=event_id, **{"Nats-Msg-Id": f"again-{event_id}"})
    marker = shipped(lead, n=456)
    await publish_event(harness.nats_url, marker)
    await eventually(lambda: harness.settled(marker.order_id))
    await eventually(harness.drained)
    assert [s["body"] for s in await harness.sms_sent()] == [HEBREW_TEXT.format(n=456)]
    assert (await harness.settled(event.order_id)).status == notifications_pb2.MESSAGE_STATUS_FAILED
    failed = await published(
        harness.nats_url, "crm.notifications.notification_failed", notification_events.NotificationFailed
    )
    assert [(e.order_id, e.reason) for e in failed] == [(event.order_id, "provider rejected")]


async def test_a_lead_customers_does_not_know_yet_is_retried(harness: Harness) -> None:
    lead = harness.customers.add(f"l-{uuid.uuid4().hex[:8]}")
    # Unknown for more tries than consumer_max_deliver (3): customers may lag behind for long (e.g.
    # restarted with unacked LeadCaptured events held until AckWait); the SMS waits, no dead letter.
    harness.customers.late[lead] = 6
    event = shipped(lead)
    await publish_event(harness.nats_url, event)
    message = await eventually(lambda: harness.settled(event.order_id))
    assert message.status == notifications_pb2.MESSAGE_STATUS_SENT
    assert harness.customers.late[lead] == 0
    assert len(await harness.sms_sent()) == 1


async def test_get_and_list_messages(harness: Harness) -> None:
    lead = harness.customers.add(f"l-{uuid.uuid4().hex[:8]}")
    events = [shipped(lead, n=i) for i in range(3)]
    for e in events:
        await publish_event(harness.nats_url, e)
    for e in events:
        await eventually(lambda e=e: harness.settled(e.order_id))

    page1 = await harness.api.ListMessages(notifications_pb2.ListMessagesRequest(lead_id=lead, page_size=2))
    page2 = await harness.api.ListMessages(
        notifications_pb2.ListMessagesRequest(lead_id=lead, page_size=2, page_token=page1.next_page_token)
    )
    assert len(page1.messages) == 2 and len(page2.messages) == 1 and page2.next_page_token == ""
    listed = [*page1.messages, *page2.messages]
    assert {m.order_id for m in listed} == {e.order_id for e in events}
    other = await harness.api.ListMessages(notifications_pb2.ListMessagesRequest(lead_id="l-nobody"))
    assert list(other.messages) == []

    got = await harness.api.GetMessage(notifications_pb2.GetMessageRequest(message_id=listed[0].id))
    assert got.message == listed[0]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await harness.api.GetMessage(notifications_pb2.GetMessageRequest(message_id="no-such-message"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_resolved_ticket_texts_one_survey_link_and_none_without_consent(harness: Harness) -> None:
    customer = harness.customers.add(f"c-{uuid.uuid4().hex[:8]}", phone="+972507654321")
    opted_out = harness.customers.add(f"c-{uuid.uuid4().hex[:8]}", allowed=False)
    resolved = support_events.TicketResolved(
        ticket_id=f"t-{uuid.uuid4().hex[:8]}", number=1042, customer_id=customer, survey_token="tok_" + "a" * 30
    )
    event_id = await publish_event(harness.nats_url, resolved)
    await publish_event(harness.nats_url, resolved, event_id=event_id, **{"Nats-Msg-Id": f"{event_id}-again"})
    silent = support_events.TicketResolved(
        ticket_id=f"t-{uuid.uuid4().hex[:8]}", number=1043, customer_id=opted_out, survey_token="tok_" + "b" * 30
    )
    await publish_event(harness.nats_url, silent)

    async def both_settled() -> list[notifications_pb2.Message] | None:
        found = list((await harness.api.ListMessages(notifications_pb2.ListMessagesRequest())).messages)
        settled = [m for m in found if m.status != notifications_pb2.MESSAGE_STATUS_PENDING]
        return settled if len(settled) == 2 else None

    messages = {m.recipient: m for m in await eventually(both_settled)}
    text = "שלום דנה כהן, פנייה 1042 טופלה. איך היה? דרגו בלחיצה אחת: http://localhost:8081/s/{}?lang=he"
    # The customer gets the link; anyone reading the message through the API sees no token.
    assert messages["+972507654321"].body == text.format("…")
    assert messages["+972501234567"].status == notifications_pb2.MESSAGE_STATUS_SUPPRESSED
    assert await eventually(harness.drained)
    assert [(s["to"], s["body"]) for s in await harness.sms_sent()] == [
        ("+972507654321", text.format("tok_" + "a" * 30))
    ]


def survey(customer_id: str, number: int, token_letter: str) -> support_events.TicketResolved:
    return support_events.TicketResolved(
        ticket_id=f"t-{uuid.uuid4().hex[:8]}",
        number=number,
        customer_id=customer_id,
        survey_token="tok_" + token_letter * 30,
    )


async def test_a_customer_who_allows_only_e_mail_gets_the_survey_once_by_e_mail(harness: Harness) -> None:
    """No service SMS, service e-mail allowed: the survey goes by e-mail, over STARTTLS with the
    relay's login, in Persian and right to left, once however often the event is delivered."""
    customer = harness.customers.add(
        f"c-{uuid.uuid4().hex[:8]}", locale="fa-IR", allowed=False, email="ali@example.com", email_allowed=True
    )
    resolved = survey(customer, 1042, "e")
    event_id = await publish_event(harness.nats_url, resolved)
    await publish_event(harness.nats_url, resolved, event_id=event_id, **{"Nats-Msg-Id": f"{event_id}-again"})

    async def sent() -> list[notifications_pb2.Message] | None:
        found = list((await harness.api.ListMessages(notifications_pb2.ListMessagesRequest())).messages)
        return found if found and found[0].status == notifications_pb2.MESSAGE_STATUS_SENT else None

    [message] = await eventually(sent)
    assert (message.channel, message.recipient) == ("email", "ali@example.com")
    assert "/s/…" in message.body and "tok_" not in message.body
    [mail] = harness.mail.messages
    assert (mail.tls, mail.login, mail.rcpt_to) == (True, SMTP_USER, ["ali@example.com"])
    assert mail.subject == "درخواست 1042 رسیدگی شد: نظرتان چیست؟"
    link = "http://localhost:8081/s/tok_" + "e" * 30 + "?lang=fa"
    assert link in mail.text and f'href="{link}"' in mail.html
    assert '<html lang="fa" dir="rtl">' in mail.html
    assert mail.headers["Auto-Submitted"] == "auto-generated"
    assert mail.headers["Message-ID"].endswith("@crm.example>")
    assert await eventually(harness.drained)
    assert len(harness.mail.messages) == 1 and await harness.sms_sent() == []


async def test_sms_comes_first_and_no_channel_means_suppressed(harness: Harness) -> None:
    both = harness.customers.add(
        f"c-{uuid.uuid4().hex[:8]}", phone="+972521112233", email="d@example.com", email_allowed=True
    )
    neither = harness.customers.add(f"c-{uuid.uuid4().hex[:8]}", allowed=False, email="n@example.com")
    await publish_event(harness.nats_url, survey(both, 2001, "f"))
    await publish_event(harness.nats_url, survey(neither, 2002, "g"))

    async def settled() -> dict[str, notifications_pb2.Message] | None:
        found = list((await harness.api.ListMessages(notifications_pb2.ListMessagesRequest())).messages)
        done = {m.recipient: m for m in found if m.status != notifications_pb2.MESSAGE_STATUS_PENDING}
        return done if len(done) == 2 else None

    messages = await eventually(settled)
    assert messages["+972521112233"].channel == "sms"
    assert messages["+972501234567"].status == notifications_pb2.MESSAGE_STATUS_SUPPRESSED
    assert harness.mail.messages == []


async def test_a_relay_that_says_later_is_tried_again_and_one_that_refuses_fails_the_message(harness: Harness) -> None:
    later = harness.customers.add(
        f"c-{uuid.uuid4().hex[:8]}", allowed=False, email="later@example.com", email_allowed=True
    )
    with harness.mail.lock:
        harness.mail.fail_remaining, harness.mail.fail_code = 1, 451
    await publish_event(harness.nats_url, survey(later, 3001, "h"))
    assert await eventually(lambda: asyncio.sleep(0, result=len(harness.mail.messages) == 1))

    refused = harness.customers.add(
        f"c-{uuid.uuid4().hex[:8]}", allowed=False, email="gone@example.com", email_allowed=True
    )
    with harness.mail.lock:
        harness.mail.fail_remaining, harness.mail.fail_code = 1, 550
    await publish_event(harness.nats_url, survey(refused, 3002, "i"))

    async def failed() -> notifications_pb2.Message | None:
        found = list((await harness.api.ListMessages(notifications_pb2.ListMessagesRequest())).messages)
        gone = [
            m
            for m in found
            if m.recipient == "gone@example.com" and m.status == notifications_pb2.MESSAGE_STATUS_FAILED
        ]
        return gone[0] if gone else None

    message = await eventually(failed)
    assert "550" in message.last_error
    assert [m.rcpt_to for m in harness.mail.messages] == [["later@example.com"]]


async def test_a_preview_shows_the_text_its_cost_and_what_the_advertising_rules_miss(harness: Harness) -> None:
    """Through the running service: the sample recipient's text, the SMS parts, the Israeli rules
    (the default) applied to an advertising SMS, and nothing sent or recorded."""
    before = len(await harness.sms_sent())
    shown = await harness.api.PreviewMessage(
        notifications_pb2.PreviewMessageRequest(
            channel="sms", advertising=True, locale="fa-IR", body="تخفیف ویژه تا {date:long}، {name}!"
        )
    )
    assert shown.rules_country == "IL" and shown.body.startswith("تخفیف ویژه تا ") and "علی رضایی" in shown.body
    assert (shown.encoding, shown.sms_parts) == ("ucs-2", 1)
    assert sorted(v.rule for v in shown.violations) == ["advertiser_identity", "advertising_marker", "opt_out"]
    ok = await harness.api.PreviewMessage(
        notifications_pb2.PreviewMessageRequest(
            channel="sms",
            advertising=True,
            locale="he-IL",
            body="פרסומת: {advertiser} {advertiser_contact} להסרה השב הסר",
        )
    )
    assert list(ok.violations) == [] and ok.body == "פרסומת: CRM Demo Ltd. 03-5550123 להסרה השב הסר"
    assert len(await harness.sms_sent()) == before

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await harness.api.PreviewMessage(
            notifications_pb2.PreviewMessageRequest(channel="fax", locale="de-DE", body="", subject="x" * 400)
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(bad.value)) == {"channel", "locale", "body"}
    with pytest.raises(grpc.aio.AioRpcError) as no_subject:
        await harness.api.PreviewMessage(
            notifications_pb2.PreviewMessageRequest(channel="email", locale="en-US", body="hi")
        )
    assert field_violations(no_subject.value) == {"subject": "1 to 300 characters"}


async def test_a_scheduled_report_reaches_each_recipient_once_with_its_files(harness: Harness) -> None:
    """ScheduledReportReady → one e-mail per recipient with the PDF and the chart, whatever the
    redeliveries and a relay's "later"."""
    pdf, png = b"%PDF-1.7 report", b"\x89PNG\r\n\x1a\n chart"
    ready = reporting_events.ScheduledReportReady(
        schedule_id="s-1",
        saved_report_id="r-1",
        recipients=["sara@shop.example", "ali@shop.example"],
        locale="he",
        subject="לידים לפי מקור: 1 בנובמבר 2026 – 30 בנובמבר 2026",
        text="מצורף הדוח.",
        attachments=[
            reporting_events.Attachment(file_name="report.pdf", media_type="application/pdf", content=pdf),
            reporting_events.Attachment(file_name="report-chart.png", media_type="image/png", content=png),
        ],
    )
    with harness.mail.lock:
        # The relay says "later" to the first try: tried again, and still one e-mail each.
        harness.mail.fail_remaining, harness.mail.fail_code = 1, 451
    event_id = await publish_event(harness.nats_url, ready)
    await publish_event(harness.nats_url, ready, event_id=event_id, **{"Nats-Msg-Id": f"{event_id}-again"})

    async def both() -> bool:
        return len(harness.mail.messages) >= 2

    assert await eventually(both)
    await asyncio.sleep(1)  # a copy would have come by now
    mails = sorted(harness.mail.messages, key=lambda m: m.rcpt_to[0])
    assert [m.rcpt_to for m in mails] == [["ali@shop.example"], ["sara@shop.example"]]
    for mail in mails:
        assert mail.subject == ready.subject and "מצורף הדוח." in mail.text
        assert '<html lang="he" dir="rtl">' in mail.html
        assert [(a.file_name, a.media_type, a.size) for a in mail.attachments] == [
            ("report.pdf", "application/pdf", len(pdf)),
            ("report-chart.png", "image/png", len(png)),
        ]
        assert base64.b64decode(mail.attachments[0].content_base64) == pdf
    assert await harness.sms_sent() == []


async def test_a_report_refused_for_one_address_still_reaches_the_other(harness: Harness) -> None:
    ready = reporting_events.ScheduledReportReady(
        schedule_id="s-2",
        recipients=["gone@shop.example", "here@shop.example"],
        locale="en",
        subject="Leads by source",
        text="Attached.",
    )
    with harness.mail.lock:
        harness.mail.fail_remaining, harness.mail.fail_code = 1, 550
    await publish_event(harness.nats_url, ready)
    await publish_event(harness.nats_url, reporting_events.ScheduledReportReady(schedule_id="s-3"))  # poison

    async def delivered() -> bool:
        return [m.rcpt_to for m in harness.mail.messages] == [["here@shop.example"]]

    assert await eventually(delivered)
