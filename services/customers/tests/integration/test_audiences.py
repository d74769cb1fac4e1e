"""Audiences (CountAudience, ResolveAudience): every criterion of the filter, consent per channel and
purpose, the complaint and satisfaction rules, keyset paging, merges, bad requests, and the purchases
DealClosed leaves. Real PostgreSQL and NATS (conftest.py); customers made by their events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from crm.common.v1 import types_pb2
from crm.customers.v1 import customers_pb2 as C
from crm.leads.v1 import events_pb2 as leads_events
from crm.sales.v1 import events_pb2 as sales_events
from crm.support.v1 import events_pb2 as support_events
from crm.support.v1 import support_pb2
from crm_customers.db import customer_purchases
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, field_violations, publish_event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SMS, EMAIL = C.CONSENT_CHANNEL_SMS, C.CONSENT_CHANNEL_EMAIL
MARKETING, SERVICE = C.CONSENT_PURPOSE_MARKETING, C.CONSENT_PURPOSE_SERVICE


@dataclass
class Person:
    """A customer made by a LeadCaptured, and the timeline entries its events are expected to make."""

    id: str
    lead_id: str
    entries: int = 1
    tickets: list[str] = field(default_factory=list)


@dataclass
class Shop:
    """The service under test and the bus its events come through."""

    stub: Any
    nats: str

    async def person(
        self,
        *,
        phone: str = "",
        email: str = "",
        source: str = "radio",
        locale: str = "he-IL",
        at: datetime = T0,
        consent: tuple[int, ...] = (SMS,),
    ) -> Person:
        """A new customer (a phone number of its own unless given), consenting to advertising on
        the channels in `consent`."""
        lead_id = str(uuid.uuid4())
        if not phone and not email:
            phone = f"+97250{uuid.uuid4().int % 10_000_000:07d}"
        await publish_event(
            self.nats,
            leads_events.LeadCaptured(
                lead_id=lead_id,
                full_name="דנה כהן",
                phone_number=phone,
                email=email,
                source=source,
                locale=locale,
                capture_time=to_timestamp(at),
            ),
        )

        async def made() -> str | None:
            reply = await self.stub.ListCustomers(C.ListCustomersRequest(lead_id=lead_id))
            return reply.customers[0].id if reply.customers else None

        who = Person(await eventually(made), lead_id)
        for channel in consent:
            await self.consent(who, channel, MARKETING, granted=True)
        return who

    async def consent(self, who: Person, channel: int, purpose: int, *, granted: bool) -> None:
        source = C.CONSENT_SOURCE_WEB_FORM if granted else C.CONSENT_SOURCE_AGENT
        await self.stub.RecordConsent(
            C.RecordConsentRequest(
                customer_id=who.id,
                channel=channel,
                purpose=purpose,
                granted=granted,
                source=source,
                evidence="signup-checkbox-v3" if granted else "",
            )
        )
        who.entries += 1

    async def tag(self, who: Person, *tags: str) -> None:
        await self.stub.UpdateCustomer(
            C.UpdateCustomerRequest(
                customer=C.Customer(id=who.id, tags=tags), update_mask=field_mask_pb2.FieldMask(paths=["tags"])
            )
        )

    async def live_in(self, who: Person, city: str) -> None:
        await self.stub.AddAddress(
            C.AddAddressRequest(
                customer_id=who.id, address=C.Address(kind="home", line1="הרצל 1", city=city, country_code="IL")
            )
        )

    async def buy(
        self,
        who: Person,
        *items: types_pb2.LineItem,
        at: datetime = T0,
        total: int = 0,
        currency: str = "ILS",
        product_line: str = "",
        deal_id: str = "",
        won: bool = True,
    ) -> str:
        message = sales_events.DealClosed(
            deal_id=deal_id or str(uuid.uuid4()),
            lead_id=who.lead_id,
            won=won,
            items=items,
            total=types_pb2.Money(amount_minor=total, currency_code=currency),
            close_time=to_timestamp(at),
            product_line=product_line,
        )
        await publish_event(self.nats, message)
        who.entries += 1
        return message.deal_id

    async def ticket(self, who: Person, *, complaint: bool = True, resolved: bool = False, first: str = "") -> str:
        """A ticket opened (and resolved); first="resolved" publishes the resolution first, as a
        replayed dead letter may bring them."""
        ticket_id = str(uuid.uuid4())
        kind = support_pb2.TICKET_KIND_COMPLAINT if complaint else support_pb2.TICKET_KIND_QUESTION
        opened = support_events.TicketOpened(
            ticket_id=ticket_id, number=1, customer_id=who.id, kind=kind, occur_time=to_timestamp(T0)
        )
        done = support_events.TicketResolved(
            ticket_id=ticket_id, number=1, customer_id=who.id, kind=kind, occur_time=to_timestamp(T0 + timedelta(1))
        )
        events = [opened, done] if resolved else [opened]
        for message in reversed(events) if first == "resolved" else events:
            await publish_event(self.nats, message)
        who.entries += len(events)
        who.tickets.append(ticket_id)
        return ticket_id

    async def survey(self, who: Person, score: int, at: datetime) -> None:
        await publish_event(
            self.nats,
            support_events.SurveyAnswered(
                ticket_id=str(uuid.uuid4()), number=1, customer_id=who.id, score=score, occur_time=to_timestamp(at)
            ),
        )
        who.entries += 1

    async def settled(self, *people: Person) -> None:
        """Every event published for them has made its timeline entry (and so its projection)."""
        for who in people:

            async def done(who: Person = who) -> bool:
                reply = await self.stub.ListTimeline(C.ListTimelineRequest(customer_id=who.id, page_size=100))
                return len(reply.entries) >= who.entries

            await eventually(done)

    async def resolve(self, channel: str = "sms", purpose: str = "marketing", **criteria: Any) -> set[str]:
        reply = await self.stub.ResolveAudience(
            C.ResolveAudienceRequest(filter=C.AudienceFilter(**criteria), channel=channel, purpose=purpose)
        )
        assert reply.next_after_customer_id == ""
        return {m.customer_id for m in reply.members}

    async def count(
        self, channel: str = "sms", purpose: str = "marketing", sample_size: int = 0, **criteria: Any
    ) -> C.CountAudienceResponse:
        reply: C.CountAudienceResponse = await self.stub.CountAudience(
            C.CountAudienceRequest(
                filter=C.AudienceFilter(**criteria), channel=channel, purpose=purpose, sample_size=sample_size
            )
        )
        return reply


@pytest.fixture
def shop(customers: Any, nats_server: str) -> Shop:
    return Shop(customers.stub, nats_server)


def item(sku: str, description: str, quantity: int, unit: int, currency: str = "ILS") -> types_pb2.LineItem:
    return types_pb2.LineItem(
        sku=sku,
        description=description,
        quantity=quantity,
        unit_price=types_pb2.Money(amount_minor=unit, currency_code=currency),
    )


def ids(*people: Person) -> set[str]:
    return {p.id for p in people}


def figures(reply: C.CountAudienceResponse) -> tuple[int, ...]:
    """(matched, reachable, no_consent, no_address, open_complaint, low_satisfaction)"""
    return (
        reply.matched,
        reply.reachable,
        reply.no_consent,
        reply.no_address,
        reply.open_complaint,
        reply.low_satisfaction,
    )


async def test_every_criterion_narrows_the_audience_and_they_and_together(shop: Shop) -> None:
    a = await shop.person(source="radio", locale="he-IL", at=T0 - timedelta(days=30))
    b = await shop.person(source="web_form", locale="fa-IR")
    c = await shop.person(source="Radio", locale="en-US")
    await shop.tag(a, "vip", "architect")
    await shop.tag(b, "wholesale")
    await shop.live_in(a, "Tel Aviv")
    await shop.live_in(b, "חיפה")
    await shop.buy(
        a, item("SOFA-1", "Corner sofa, grey 50%", 2, 250_000), at=T0 + timedelta(days=10), product_line="furniture"
    )
    await shop.buy(b, item("LAMP-7", "Desk lamp", 1, 10_000), at=T0 + timedelta(days=40), product_line="lighting")
    await shop.settled(a, b, c)

    assert await shop.resolve() == ids(a, b, c)
    expected: list[tuple[dict[str, Any], set[str]]] = [
        ({"tags": ["vip"]}, ids(a)),
        ({"tags": ["vip", "wholesale"]}, ids(a, b)),
        ({"tags": ["VIP"]}, set()),  # tags as spelled
        ({"cities": ["tel aviv"]}, ids(a)),
        ({"cities": [" חיפה ", "Eilat"]}, ids(b)),
        ({"sources": ["RADIO"]}, ids(a, c)),
        ({"locales": ["FA-ir"]}, ids(b)),
        ({"products": ["sofa-1"]}, ids(a)),  # the SKU
        ({"products": ["Lighting"]}, ids(b)),  # the product line
        ({"products": ["lamp", "GREY"]}, ids(a, b)),  # words of the description
        ({"products": ["50%"]}, ids(a)),
        ({"products": ["%"]}, ids(a)),  # a % is itself, not "anything"
        ({"products": ["_"]}, set()),
        ({"purchased_after": to_timestamp(T0 + timedelta(days=30))}, ids(b)),
        ({"purchased_before": to_timestamp(T0 + timedelta(days=10))}, set()),  # [after, before)
        ({"purchased_before": to_timestamp(T0 + timedelta(days=10, seconds=1))}, ids(a)),
        ({"products": ["sofa-1"], "purchased_after": to_timestamp(T0 + timedelta(days=30))}, set()),
        ({"min_lifetime_value_minor": 500_000, "currency_code": "ILS"}, ids(a)),
        ({"min_lifetime_value_minor": 10_000, "currency_code": "ils"}, ids(a, b)),
        ({"min_lifetime_value_minor": 1, "currency_code": "IRR"}, set()),
        ({"tags": ["vip", "wholesale"], "sources": ["radio"]}, ids(a)),
        ({"tags": ["wholesale"], "sources": ["radio"]}, set()),
    ]
    for criteria, members in expected:
        assert await shop.resolve(**criteria) == members, criteria
        assert (await shop.count(**criteria)).matched == len(members), criteria
    # The reachable ones per locale: what a promotion's texts in each language will cost.
    assert dict((await shop.count(tags=["vip", "wholesale"])).reachable_by_locale) == {"he-IL": 1, "fa-IR": 1}
    assert dict((await shop.count(tags=["wholesale"])).reachable_by_locale) == {"fa-IR": 1}


async def test_the_last_purchase_finds_who_bought_but_not_since_which_a_purchase_window_cannot(shop: Shop) -> None:
    returning = await shop.person(source="radio")
    lapsed = await shop.person(source="radio")
    never = await shop.person(source="radio")
    await shop.tag(returning, "win-back")
    await shop.tag(lapsed, "win-back")
    await shop.tag(never, "win-back")
    await shop.buy(returning, item("SOFA-1", "Sofa", 1, 250_000), at=T0 + timedelta(days=10))
    await shop.buy(returning, item("RUG-2", "Rug", 1, 40_000), at=T0 + timedelta(days=100))
    await shop.buy(lapsed, item("SOFA-1", "Sofa", 1, 250_000), at=T0 + timedelta(days=40))
    await shop.settled(returning, lapsed, never)

    june = to_timestamp(T0 + timedelta(days=50))
    expected: list[tuple[dict[str, Any], set[str]]] = [
        ({"purchased_before": june}, ids(returning, lapsed)),  # a purchase before: both bought then
        ({"last_purchased_before": june}, ids(lapsed)),  # the latest before: only who did not come back
        ({"last_purchased_after": june}, ids(returning)),
        ({"last_purchased_after": to_timestamp(T0 + timedelta(days=40)), "last_purchased_before": june}, ids(lapsed)),
        ({"last_purchased_before": june, "products": ["sofa"]}, ids(lapsed)),
        ({"last_purchased_before": to_timestamp(T0 + timedelta(days=40))}, set()),  # [after, before)
    ]
    for criteria, members in expected:
        assert await shop.resolve(tags=["win-back"], **criteria) == members, criteria
        assert (await shop.count(tags=["win-back"], **criteria)).matched == len(members), criteria


async def test_consent_and_an_address_per_channel_and_purpose(shop: Shop) -> None:
    p = await shop.person(phone="+972501110001", email="p@example.com", consent=(SMS,))
    q = await shop.person(phone="+972501110002", email="q@example.com", consent=(EMAIL,))
    await shop.consent(q, SMS, SERVICE, granted=False)
    r = await shop.person(email="r@example.com", consent=(SMS,))
    s = await shop.person(phone="+972501110004", consent=())

    assert await shop.resolve("sms", "marketing") == ids(p)
    assert figures(await shop.count("sms", "marketing")) == (4, 1, 2, 1, 0, 0)  # q, s: no consent; r: no phone
    assert await shop.resolve("email", "marketing") == ids(q)
    assert figures(await shop.count("email", "marketing")) == (4, 1, 3, 0, 0, 0)
    assert await shop.resolve("sms", "service") == ids(p, s)
    assert figures(await shop.count("sms", "service")) == (4, 2, 1, 1, 0, 0)
    assert await shop.resolve("email", "service") == ids(p, q, r)
    assert figures(await shop.count("email", "service")) == (4, 3, 0, 1, 0, 0)

    # A withdrawal takes effect at once.
    await shop.consent(p, SMS, MARKETING, granted=False)
    assert await shop.resolve("sms", "marketing") == set()

    reply = await shop.stub.ResolveAudience(C.ResolveAudienceRequest(channel="email", purpose="service"))
    assert {(m.customer_id, m.address) for m in reply.members} == {
        (p.id, "p@example.com"),
        (q.id, "q@example.com"),
        (r.id, "r@example.com"),
    }
    sample = (await shop.count("sms", "service", sample_size=20)).sample
    assert [(m.customer_id, m.address, m.full_name, m.locale) for m in sample] == sorted(
        [(p.id, "+972501110001", "דנה כהן", "he-IL"), (s.id, "+972501110004", "דנה כהן", "he-IL")]
    )


async def test_open_complaints_and_low_satisfaction_are_left_out_unless_included(shop: Shop) -> None:
    complained = await shop.person()
    answered = await shop.person()  # a complaint, resolved
    answered_late = await shop.person()  # its resolution arrived before its opening
    asked = await shop.person()  # an open question is not a complaint
    unhappy = await shop.person()  # latest score 2, after a 5
    recovered = await shop.person()  # latest score 5, after a 1
    both = await shop.person()  # an open complaint and a low score
    plain = await shop.person()
    await shop.ticket(complained)
    await shop.ticket(answered, resolved=True)
    await shop.ticket(answered_late, resolved=True, first="resolved")
    await shop.ticket(asked, complaint=False)
    await shop.survey(unhappy, 5, T0)
    await shop.survey(unhappy, 2, T0 + timedelta(days=1))
    await shop.survey(recovered, 5, T0 + timedelta(days=1))
    await shop.survey(recovered, 1, T0)  # older, arriving later: not the latest
    await shop.ticket(both)
    await shop.survey(both, 1, T0)
    everyone = [complained, answered, answered_late, asked, unhappy, recovered, both, plain]
    await shop.settled(*everyone)

    assert await shop.resolve() == ids(answered, answered_late, asked, recovered, plain)
    assert figures(await shop.count()) == (8, 5, 0, 0, 2, 1)
    assert await shop.resolve(include_open_complaints=True) == ids(
        complained, answered, answered_late, asked, recovered, plain
    )
    assert figures(await shop.count(include_open_complaints=True)) == (8, 6, 0, 0, 0, 2)
    assert await shop.resolve(include_low_satisfaction=True) == ids(
        answered, answered_late, asked, unhappy, recovered, plain
    )
    assert figures(await shop.count(include_low_satisfaction=True)) == (8, 6, 0, 0, 2, 0)
    both_included = {"include_open_complaints": True, "include_low_satisfaction": True}
    assert await shop.resolve(**both_included) == ids(*everyone)
    # Open tickets of any kind as a criterion: who waits on support, or who does not.
    assert await shop.resolve(open_tickets="some", **both_included) == ids(complained, asked, both)
    assert await shop.resolve(open_tickets="some") == ids(asked)  # open complaints still left out
    assert await shop.resolve(open_tickets="NONE", **both_included) == ids(
        answered, answered_late, unhappy, recovered, plain
    )

    # The complaint resolved: the customer is back.
    await publish_event(
        shop.nats,
        support_events.TicketResolved(
            ticket_id=complained.tickets[0],
            customer_id=complained.id,
            kind=support_pb2.TICKET_KIND_COMPLAINT,
            occur_time=to_timestamp(T0 + timedelta(days=2)),
        ),
    )

    async def back() -> bool:
        return complained.id in await shop.resolve()

    await eventually(back)


async def test_resolve_pages_in_id_order_without_gaps_or_repeats(shop: Shop) -> None:
    members = [await shop.person() for _ in range(12)]
    outsiders = [await shop.person(consent=()) for _ in range(3)]
    expected = sorted(p.id for p in members)

    async def pages(page_size: int) -> list[list[str]]:
        found, cursor = [], ""
        while True:
            reply = await shop.stub.ResolveAudience(
                C.ResolveAudienceRequest(
                    channel="sms", purpose="marketing", page_size=page_size, after_customer_id=cursor
                )
            )
            found.append([m.customer_id for m in reply.members])
            if not reply.next_after_customer_id:
                return found
            assert reply.next_after_customer_id == found[-1][-1]
            cursor = reply.next_after_customer_id

    five = await pages(5)
    assert [len(p) for p in five] == [5, 5, 2]
    assert [m for p in five for m in p] == expected
    # A full last page says so: no empty page after it.
    assert [len(p) for p in await pages(6)] == [6, 6]
    assert await pages(0) == [expected]  # the default page holds them all
    # A sender resuming from a stored cursor gets the rest, even when a customer joined meanwhile.
    late = await shop.person()
    rest = await shop.stub.ResolveAudience(
        C.ResolveAudienceRequest(channel="sms", purpose="marketing", after_customer_id=expected[4])
    )
    assert [m.customer_id for m in rest.members] == sorted(x for x in [*expected, late.id] if x > expected[4])
    assert not ids(*outsiders) & {m.customer_id for m in rest.members}


async def test_a_merged_customer_s_purchases_complaints_and_acquisition_count_for_the_survivor(shop: Shop) -> None:
    survivor = await shop.person(source="radio", at=T0)
    duplicate = await shop.person(source="tv", at=T0 - timedelta(days=60))
    await shop.buy(duplicate, item("TABLE-9", "Dining table", 1, 400_000), at=T0)
    await shop.ticket(duplicate)
    await shop.settled(survivor, duplicate)
    assert await shop.resolve(products=["table-9"]) == set()  # the open complaint keeps them out

    await shop.stub.MergeCustomers(C.MergeCustomersRequest(customer_id=survivor.id, duplicate_customer_id=duplicate.id))

    assert await shop.resolve(include_open_complaints=True) == ids(survivor)
    assert figures(await shop.count()) == (1, 0, 0, 0, 1, 0)
    assert await shop.resolve(products=["table-9"], include_open_complaints=True) == ids(survivor)
    lifetime = {"min_lifetime_value_minor": 400_000, "currency_code": "ILS", "include_open_complaints": True}
    assert await shop.resolve(**lifetime) == ids(survivor)
    # The earlier lead acquired the customer.
    assert await shop.resolve(sources=["tv"], include_open_complaints=True) == ids(survivor)
    assert await shop.resolve(sources=["radio"], include_open_complaints=True) == set()


async def test_a_bad_audience_names_every_wrong_field(shop: Shop) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.stub.CountAudience(
            C.CountAudienceRequest(
                channel="fax",
                purpose="spam",
                sample_size=21,
                filter=C.AudienceFilter(
                    tags=[f"t{n}" for n in range(51)],
                    cities=["x" * 101],
                    products=[" "],
                    min_lifetime_value_minor=100,
                    purchased_after=to_timestamp(T0),
                    purchased_before=to_timestamp(T0),
                    last_purchased_after=to_timestamp(T0 + timedelta(days=2)),
                    last_purchased_before=to_timestamp(T0 + timedelta(days=1)),
                    open_tickets="many",
                ),
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {
        "channel",
        "purpose",
        "sample_size",
        "tags",
        "cities",
        "products",
        "currency_code",
        "purchased_before",
        "last_purchased_before",
        "open_tickets",
    }
    for page_size in (-1, 5001):
        with pytest.raises(grpc.aio.AioRpcError) as paged:
            await shop.stub.ResolveAudience(
                C.ResolveAudienceRequest(channel="sms", purpose="marketing", page_size=page_size)
            )
        assert paged.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(field_violations(paged.value)) == {"page_size"}
    with pytest.raises(grpc.aio.AioRpcError) as currency:
        await shop.stub.ResolveAudience(
            C.ResolveAudienceRequest(
                channel="email",
                purpose="service",
                filter=C.AudienceFilter(min_lifetime_value_minor=-5, currency_code="ILS"),
            )
        )
    assert set(field_violations(currency.value)) == {"min_lifetime_value_minor"}


async def purchases(database_url: str, deal_ids: list[str]) -> list[tuple[Any, ...]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            p = customer_purchases
            rows = await conn.execute(
                select(
                    p.c.deal_id,
                    p.c.line,
                    p.c.customer_id,
                    p.c.sku,
                    p.c.description,
                    p.c.product_line,
                    p.c.amount_minor,
                    p.c.currency_code,
                    p.c.closed_at,
                )
                .where(p.c.deal_id.in_(deal_ids))
                .order_by(p.c.deal_id, p.c.line)
            )
            return [tuple(r) for r in rows]
    finally:
        await engine.dispose()


async def test_a_won_deal_s_lines_become_purchases_once(customers: Any, shop: Shop) -> None:
    buyer = await shop.person()
    at = T0 + timedelta(days=3)
    message = sales_events.DealClosed(
        deal_id="deal-lines",
        lead_id=buyer.lead_id,
        won=True,
        items=[item("SOFA-1", "Corner  sofa", 2, 250_000), item("", "Delivery", 1, 15_000)],
        total=types_pb2.Money(amount_minor=515_000, currency_code="ILS"),
        close_time=to_timestamp(at),
        product_line="furniture",
    )
    event_id = await publish_event(shop.nats, message)
    # Redelivered, and published again under another event id (a producer's retry): kept once.
    await publish_event(shop.nats, message, event_id=event_id, **{"Nats-Msg-Id": f"{event_id}-again"})
    await publish_event(shop.nats, message)
    await shop.buy(buyer, total=99_000, deal_id="deal-no-items", at=at)
    await shop.buy(buyer, total=50_000, deal_id="deal-lost", won=False)
    buyer.entries += 2
    await shop.settled(buyer)

    assert await purchases(customers.database_url, ["deal-lines", "deal-no-items", "deal-lost"]) == [
        ("deal-lines", 1, buyer.id, "SOFA-1", "Corner sofa", "furniture", 500_000, "ILS", at),
        ("deal-lines", 2, buyer.id, "", "Delivery", "furniture", 15_000, "ILS", at),
        ("deal-no-items", 1, buyer.id, "", "", "", 99_000, "ILS", at),
    ]


async def test_the_earliest_capture_acquired_the_customer_whatever_order_they_arrive_in(shop: Shop) -> None:
    first = await shop.person(phone="+972521230000", source="radio", at=T0)
    for source, at in (("tv", T0 - timedelta(days=10)), ("facebook", T0 + timedelta(days=5))):
        await publish_event(
            shop.nats,
            leads_events.LeadCaptured(
                lead_id=str(uuid.uuid4()),
                full_name="דנה כהן",
                phone_number="+972521230000",
                source=source,
                locale="he-IL",
                capture_time=to_timestamp(at),
            ),
        )
    first.entries += 2
    await shop.settled(first)
    assert await shop.resolve(sources=["tv"]) == ids(first)
    assert await shop.resolve(sources=["radio", "facebook"]) == set()
