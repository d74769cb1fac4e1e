"""Consent per channel and purpose: advertising only after an explicit, evidenced yes; a refusal
honoured at once whatever its source; the history kept for a regulator; ConsentChanged published;
a bad record refused whole. Real PostgreSQL and NATS (conftest.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import nats
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from crm.customers.v1 import customers_pb2
from crm.customers.v1 import events_pb2 as customers_events
from crm.leads.v1 import events_pb2 as leads_events
from crm_customers.db import messaging
from crm_kit.protoconv import to_timestamp
from crm_kit.testing import eventually, field_violations, publish_event

pytestmark = pytest.mark.integration

C = customers_pb2
SMS, EMAIL = C.CONSENT_CHANNEL_SMS, C.CONSENT_CHANNEL_EMAIL
SERVICE, MARKETING = C.CONSENT_PURPOSE_SERVICE, C.CONSENT_PURPOSE_MARKETING


async def new_customer(customers: Any, nats_server: str, *, email: str = "") -> str:
    lead = leads_events.LeadCaptured(
        lead_id=str(uuid.uuid4()),
        full_name="נעמה ברק",
        email=email,
        phone_number=f"+97254{uuid.uuid4().int % 10_000_000:07d}",
        source="web_form",
        locale="he-IL",
        capture_time=to_timestamp(datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
    )
    await publish_event(nats_server, lead)

    async def made() -> str | None:
        reply = await customers.stub.ListCustomers(C.ListCustomersRequest(lead_id=lead.lead_id))
        return reply.customers[0].id if reply.customers else None

    customer_id: str = await eventually(made)
    return customer_id


def consent(customer_id: str, channel: int, purpose: int, granted: bool, source: int, evidence: str = "", **kw: Any):  # type: ignore[no-untyped-def]
    return C.RecordConsentRequest(
        customer_id=customer_id,
        channel=channel,
        purpose=purpose,
        granted=granted,
        source=source,
        evidence=evidence,
        **kw,
    )


def state(states: Any, channel: int, purpose: int) -> bool:
    [found] = [s for s in states if s.channel == channel and s.purpose == purpose]
    return bool(found.granted)


async def contact(customers: Any, customer_id: str) -> C.GetContactInfoResponse:
    return await customers.stub.GetContactInfo(C.GetContactInfoRequest(customer_id=customer_id))


async def test_advertising_needs_an_evidenced_yes_and_a_no_stops_it_at_once(customers: Any, nats_server: str) -> None:
    customer_id = await new_customer(customers, nats_server)
    # Before anyone said anything: service messages yes, advertising no.
    before = await customers.stub.ListConsents(C.ListConsentsRequest(customer_id=customer_id))
    assert state(before.states, SMS, SERVICE) and not state(before.states, SMS, MARKETING)
    assert list(before.records) == []
    assert (await contact(customers, customer_id)).marketing_sms_consent is False

    given = await customers.stub.RecordConsent(
        consent(customer_id, SMS, MARKETING, True, C.CONSENT_SOURCE_WEB_FORM, "signup-checkbox-v3")
    )
    assert state(given.states, SMS, MARKETING) and not state(given.states, EMAIL, MARKETING)
    assert (await contact(customers, customer_id)).marketing_sms_consent is True

    # "Remove me" by SMS reply: honoured at once, with no evidence needed.
    withdrawn = await customers.stub.RecordConsent(consent(customer_id, SMS, MARKETING, False, C.CONSENT_SOURCE_REPLY))
    assert not state(withdrawn.states, SMS, MARKETING)
    assert (await contact(customers, customer_id)).marketing_sms_consent is False
    # Service messages stop too when the customer says so.
    await customers.stub.RecordConsent(consent(customer_id, SMS, SERVICE, False, C.CONSENT_SOURCE_AGENT))
    assert (await contact(customers, customer_id)).transactional_sms_allowed is False

    history = await customers.stub.ListConsents(C.ListConsentsRequest(customer_id=customer_id))
    assert [(r.purpose, r.granted, r.source) for r in history.records] == [
        (SERVICE, False, C.CONSENT_SOURCE_AGENT),
        (MARKETING, False, C.CONSENT_SOURCE_REPLY),
        (MARKETING, True, C.CONSENT_SOURCE_WEB_FORM),
    ]
    assert history.records[-1].evidence == "signup-checkbox-v3"

    timeline = (await customers.stub.ListTimeline(C.ListTimelineRequest(customer_id=customer_id))).entries
    assert [e.summary for e in timeline if e.kind == C.TOUCH_KIND_CONSENT_CHANGED] == [
        "SMS marketing: consent given (web form)",
        "SMS marketing: consent withdrawn (reply)",
        "SMS service: consent withdrawn (agent)",
    ]
    # Filtered by kind: the consent entries alone; an unspecified kind is refused on the field.
    only = await customers.stub.ListTimeline(
        C.ListTimelineRequest(customer_id=customer_id, kinds=[C.TOUCH_KIND_CONSENT_CHANGED])
    )
    assert [e.kind for e in only.entries] == [C.TOUCH_KIND_CONSENT_CHANGED] * 3
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await customers.stub.ListTimeline(
            C.ListTimelineRequest(customer_id=customer_id, kinds=[C.TOUCH_KIND_UNSPECIFIED])
        )
    assert set(field_violations(unknown.value)) == {"kinds"}
    # The facts a reader renders the entries from, in its own language.
    by_kind = {e.kind: dict(e.facts) for e in timeline}
    assert by_kind[C.TOUCH_KIND_LEAD_CAPTURED] == {"source": "web_form"}
    assert next(dict(e.facts) for e in timeline if e.kind == C.TOUCH_KIND_CONSENT_CHANGED) == {
        "channel": "sms",
        "purpose": "marketing",
        "granted": "yes",
        "source": "web_form",
    }

    nc = await nats.connect(nats_server)
    try:
        sub = await nc.jetstream().pull_subscribe("crm.customers.consent_changed", durable=f"t-{uuid.uuid4().hex[:8]}")
        changes: list[customers_events.ConsentChanged] = []

        async def all_published() -> bool | None:
            try:
                for message in await sub.fetch(10, timeout=0.5):
                    changes.append(customers_events.ConsentChanged.FromString(message.data))
            except nats.errors.TimeoutError:
                pass
            mine = [c for c in changes if c.customer_id == customer_id]
            return len(mine) == 3 or None

        await eventually(all_published)
    finally:
        await nc.close()
    mine = [(c.purpose, c.granted) for c in changes if c.customer_id == customer_id]
    assert mine == [(MARKETING, True), (MARKETING, False), (SERVICE, False)]


async def test_e_mail_consent_is_kept_on_the_profile_like_sms(customers: Any, nats_server: str) -> None:
    """GetContactInfo answers e-mail's state in force too (a survey by e-mail reads it): service
    e-mail until withdrawn and only with an address, advertising by e-mail only after a yes; SMS's
    state is untouched by e-mail's records."""
    without_address = await contact(customers, await new_customer(customers, nats_server))
    assert without_address.transactional_email_allowed is False

    customer_id = await new_customer(customers, nats_server, email="naama@example.com")
    before = await contact(customers, customer_id)
    assert (before.transactional_email_allowed, before.marketing_email_consent) == (True, False)
    await customers.stub.RecordConsent(
        consent(customer_id, EMAIL, MARKETING, True, C.CONSENT_SOURCE_WRITTEN, "form-2026-11.pdf")
    )
    await customers.stub.RecordConsent(consent(customer_id, EMAIL, SERVICE, False, C.CONSENT_SOURCE_AGENT))
    after = await contact(customers, customer_id)
    assert (after.transactional_email_allowed, after.marketing_email_consent) == (False, True)
    assert (after.transactional_sms_allowed, after.marketing_sms_consent) == (True, False)


async def test_a_bad_consent_record_is_refused_whole(customers: Any, nats_server: str) -> None:
    customer_id = await new_customer(customers, nats_server)
    future = to_timestamp(datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await customers.stub.RecordConsent(
            consent(customer_id, C.CONSENT_CHANNEL_UNSPECIFIED, MARKETING, True, 0, "x" * 501, occur_time=future)
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(bad.value)) == {"channel", "source", "evidence", "occur_time"}
    # A yes to advertising told to an agent, or without its evidence, proves nothing.
    for source, evidence in ((C.CONSENT_SOURCE_AGENT, "said yes"), (C.CONSENT_SOURCE_RECORDED_CALL, "")):
        with pytest.raises(grpc.aio.AioRpcError) as unproven:
            await customers.stub.RecordConsent(consent(customer_id, EMAIL, MARKETING, True, source, evidence))
        assert unproven.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = await customers.stub.ListConsents(C.ListConsentsRequest(customer_id=customer_id))
    assert list(after.records) == []
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await customers.stub.RecordConsent(consent(str(uuid.uuid4()), SMS, SERVICE, False, C.CONSENT_SOURCE_AGENT))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_reply_withdraws_everywhere_and_a_12_re_subscribes_only_where_a_reply_may_grant(
    customers_server: Any, nats_server: str
) -> None:
    """ConsentWithdrawn (a refusal by reply) is recorded for the customer with that number, source
    reply; ConsentGranted (Iran's 12 after it) grants again under Iran's rules, where a reply is a
    yes, and changes nothing under Israel's, where only a written or recorded yes counts."""
    async with customers_server(consent_rules="IR") as customers:
        customer_id, granted_event = await _refused_then_12(customers, nats_server)

        async def renewed_history() -> list[Any] | None:
            found = await customers.stub.ListConsents(C.ListConsentsRequest(customer_id=customer_id))
            return list(found.records) if len(found.records) == 3 else None

        history = await eventually(renewed_history)
        assert [(r.granted, r.source, r.evidence) for r in history[:2]] == [
            (True, C.CONSENT_SOURCE_REPLY, "۱۲"),
            (False, C.CONSENT_SOURCE_REPLY, "11"),
        ]
        assert (await contact(customers, customer_id)).marketing_sms_consent is True
    async with customers_server(consent_rules="IL") as customers:
        customer_id, granted_event = await _refused_then_12(customers, nats_server)
        await eventually(lambda: _handled(customers.database_url, granted_event))
        found = await customers.stub.ListConsents(C.ListConsentsRequest(customer_id=customer_id))
        assert [(r.granted, r.source) for r in found.records] == [
            (False, C.CONSENT_SOURCE_REPLY),
            (True, C.CONSENT_SOURCE_WEB_FORM),
        ]
        assert (await contact(customers, customer_id)).marketing_sms_consent is False


async def _refused_then_12(customers: Any, nats_server: str) -> tuple[str, str]:
    """A customer who consented by a web form, refused by replying 11 (withdrawn once customers
    took it), then replied 12; (customer id, the ConsentGranted event's id)."""
    from crm.notifications.v1 import events_pb2 as notifications_events

    customer_id = await new_customer(customers, nats_server)
    phone = (await contact(customers, customer_id)).phone_number
    await customers.stub.RecordConsent(
        consent(customer_id, SMS, MARKETING, True, C.CONSENT_SOURCE_WEB_FORM, "signup-checkbox-v3")
    )
    at = datetime.now(UTC) + timedelta(seconds=1)  # each answer comes after what it answers
    refusal = notifications_events.ConsentWithdrawn(
        channel="sms", address=phone, source="sms_reply", evidence="11", occur_time=to_timestamp(at)
    )
    await publish_event(nats_server, refusal)

    async def withdrawn() -> bool | None:
        return True if not (await contact(customers, customer_id)).marketing_sms_consent else None

    await eventually(withdrawn)
    again = notifications_events.ConsentGranted(
        channel="sms",
        address=phone,
        source="sms_reply",
        evidence="۱۲",
        occur_time=to_timestamp(at + timedelta(seconds=1)),
    )
    return customer_id, await publish_event(nats_server, again)


async def _handled(database_url: str, event_id: str) -> bool:
    """Whether the customers service's consumer took the event (its inbox holds the id)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).where(messaging.inbox.c.event_id == event_id)
            return bool((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()
