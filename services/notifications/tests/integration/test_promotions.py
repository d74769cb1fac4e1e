"""Promotions in the notifications service against real PostgreSQL, NATS JetStream and the fake SMS
provider; a customers server stands in at the gRPC edge with an audience of its own. Exactly once
per person is proved where listmonk and Mautic fail: across pause and resume, a runner that dies
between its sends and their record, and two runners on one promotion at once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import nats
import nats.js.errors
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm.notifications.v1 import events_pb2, promotions_pb2, promotions_pb2_grpc
from crm_devstack.mail_sink import SinkState, smtp_controller
from crm_kit.caller import ACTOR_METADATA_KEY
from crm_kit.service import Service
from crm_kit.testing import eventually, field_violations, free_port, local_channel, reset_stream, running_service
from crm_notifications import advertising, promotion_store
from crm_notifications.db import (
    early_receipts,
    messages,
    messaging,
    promotion_recipients,
    promotions,
    suppressions,
)
from crm_notifications.email_sender import SmtpConfig, SmtpEmailSender
from crm_notifications.main import MIGRATIONS_DIR, NotificationsSettings, setup
from crm_notifications.promotion_runner import PromotionRunner, RunnerConfig
from crm_notifications.promotion_store import FrequencyCap
from crm_notifications.sms_provider import HttpSmsProvider

pytestmark = pytest.mark.integration

HE = "פרסומת: {name}, מבצע ספות עד {date}! {advertiser} {advertiser_contact}. להסרה השיבו הסר"
FA = "פרסומת: {name} عزیز، تخفیف تا {date}. {advertiser} {advertiser_contact}. STOP"
SECRET = b"unsubscribe-secret-for-tests"
# The service's and the test runners' advertiser: an estimate renders what the runner sends.
ADVERTISER = advertising.Advertiser("רהיטי כהן", "03-5550123")


@dataclass
class FakeAudience(customers_pb2_grpc.CustomersServiceServicer):
    """customers at the gRPC edge: an audience of `size` people (every third Persian), paged by
    customer id as the real one pages."""

    size: int = 0
    calls: int = 0
    members: list[customers_pb2.AudienceMember] = field(default_factory=list)

    def reset(self, size: int) -> None:
        self.size = size
        self.members = [
            customers_pb2.AudienceMember(
                customer_id=f"c-{i:06d}",
                full_name=f"לקוח {i}",
                address=f"+97250{i:07d}",
                locale="fa-IR" if i % 3 == 0 else "he-IL",
            )
            for i in range(size)
        ]

    async def CountAudience(
        self, request: customers_pb2.CountAudienceRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.CountAudienceResponse:
        if request.channel not in ("sms", "email"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "channel")
        by_locale: dict[str, int] = {}
        for m in self.members:
            by_locale[m.locale] = by_locale.get(m.locale, 0) + 1
        return customers_pb2.CountAudienceResponse(
            matched=self.size,
            reachable=self.size,
            reachable_by_locale=by_locale,
            sample=self.members[: request.sample_size],
        )

    async def ResolveAudience(
        self, request: customers_pb2.ResolveAudienceRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.ResolveAudienceResponse:
        self.calls += 1
        after = [m for m in self.members if m.customer_id > request.after_customer_id]
        page = after[: request.page_size]
        more = len(after) > request.page_size
        return customers_pb2.ResolveAudienceResponse(
            members=page, next_after_customer_id=page[-1].customer_id if more else ""
        )


@dataclass
class Harness:
    api: promotions_pb2_grpc.PromotionsServiceStub
    sms: httpx.AsyncClient
    audience: FakeAudience
    service: Service
    customers_addr: str
    sms_base_url: str

    async def provider_messages(self) -> list[dict[str, Any]]:
        response = await self.sms.get("/messages")
        response.raise_for_status()
        return list(response.json())

    async def create(self, *, size: int, actor: str = "marketing-1", **more: Any) -> promotions_pb2.Promotion:
        """A draft to `size` people; `more` adds to or replaces the request's fields (texts too)."""
        self.audience.reset(size)
        fields: dict[str, Any] = {
            "name": "ספות",
            "channel": "sms",
            "texts": [
                promotions_pb2.PromotionText(locale="he-IL", body=HE),
                promotions_pb2.PromotionText(locale="fa-IR", body=FA),
            ],
            "sms_part_price_minor": 8,
            "currency_code": "ILS",
            **more,
        }
        reply = await self.api.CreatePromotion(
            promotions_pb2.CreatePromotionRequest(**fields), metadata=((ACTOR_METADATA_KEY, actor),)
        )
        return reply.promotion

    async def schedule(self, promotion_id: str, actor: str = "marketing-1") -> promotions_pb2.Promotion:
        reply = await self.api.SchedulePromotion(
            promotions_pb2.SchedulePromotionRequest(promotion_id=promotion_id), metadata=((ACTOR_METADATA_KEY, actor),)
        )
        return reply.promotion

    def runner(self, owner: str, *, rate: float = 10_000.0, batch: int = 100) -> tuple[PromotionRunner, Any]:
        channel = grpc.aio.insecure_channel(self.customers_addr)
        provider = HttpSmsProvider(self.sms_base_url, "dev-sms-key")
        runner = PromotionRunner(
            self.service.db,
            customers_pb2_grpc.CustomersServiceStub(channel),
            provider,
            None,
            config=RunnerConfig(owner=owner, batch_size=batch, rate_per_second=rate, resolve_page_size=250),
            advertiser=ADVERTISER,
            unsubscribe_secret=SECRET,
        )

        async def close() -> None:
            await provider.aclose()
            await channel.close()

        return runner, close

    async def rows(self, promotion_id: str) -> dict[str, int]:
        async with self.service.db.unit_of_work() as uow:
            result = await uow.conn.execute(
                select(messages.c.status, func.count())
                .where(messages.c.promotion_id == promotion_id)
                .group_by(messages.c.status)
            )
            return {status: int(n) for status, n in result}


@pytest.fixture
async def audience() -> AsyncIterator[tuple[FakeAudience, str]]:
    servicer = FakeAudience()
    server = grpc.aio.server()
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.fixture
async def harness(fresh_database, nats_server, sms_base_url, audience, request) -> AsyncIterator[Harness]:
    """The service with the audience fake as customers; a test's indirect parameter (a dict) sets
    other settings."""
    await reset_stream(nats_server)
    servicer, customers_addr = audience
    port = free_port()
    settings = NotificationsSettings(
        database_url=await fresh_database("notifications"),
        nats_url=nats_server,
        grpc_port=port,
        metrics_port=free_port(),
        customers_addr=customers_addr,
        sms_base_url=sms_base_url,
        unsubscribe_secret=SECRET.decode(),
        advertiser_name=ADVERTISER.name,
        advertiser_contact=ADVERTISER.contact,
        # The service's own runner stays out of the way: each test drives runners itself.
        promotion_poll_seconds=3600,
        promotion_approval_above=1000,
        **getattr(request, "param", {}),
    )
    async with (
        running_service(settings, messaging, MIGRATIONS_DIR, setup) as service,
        httpx.AsyncClient(base_url=sms_base_url) as sms,
    ):
        ch = local_channel(port)
        yield Harness(
            promotions_pb2_grpc.PromotionsServiceStub(ch), sms, servicer, service, customers_addr, sms_base_url
        )
        await ch.close()


def once_each(sent: list[dict[str, Any]], size: int) -> None:
    """The provider got exactly one message per audience member, none for anyone else."""
    numbers = [m["to"] for m in sent]
    assert len(numbers) == size and len(set(numbers)) == size
    assert set(numbers) == {f"+97250{i:07d}" for i in range(size)}


async def test_a_promotion_reaches_each_person_once_in_their_language(harness: Harness) -> None:
    promotion = await harness.create(size=600)
    await harness.schedule(promotion.id)
    runner, close = harness.runner("runner-a")
    try:
        assert await runner.run_once()
    finally:
        await close()

    once_each(await harness.provider_messages(), 600)
    sent = {m["to"]: m["body"] for m in await harness.provider_messages()}
    assert sent["+972500000003"].startswith("פרסומת: לקוח 3 عزیز") and "۱۴" in sent["+972500000003"]  # Jalali
    assert sent["+972500000001"].startswith("פרסומת: לקוח 1, מבצע ספות")
    assert harness.audience.calls == 3  # 600 people in pages of 250, each page saved once
    report = await harness.api.GetPromotionReport(promotions_pb2.GetPromotionReportRequest(promotion_id=promotion.id))
    assert (report.total.recipients, report.total.sent, report.remaining) == (600, 600, 0)
    assert report.total.cost_minor == report.total.sms_parts * 8 and report.total.sms_parts >= 600
    assert {v.locale: v.sent for v in report.variants} == {"fa-IR": 200, "he-IL": 400}
    assert report.promotion.status == promotions_pb2.PROMOTION_STATUS_COMPLETED


async def test_pause_and_resume_send_nothing_twice_and_skip_no_one(harness: Harness) -> None:
    promotion = await harness.create(size=400)
    await harness.schedule(promotion.id)
    runner, close = harness.runner("runner-a", rate=400.0, batch=50)
    try:
        sending = asyncio.create_task(runner.run_once())

        async def some_sent() -> int | None:
            n = len(await harness.provider_messages())
            return n if 0 < n < 400 else None

        await eventually(some_sent, timeout=20, interval=0.02)
        paused = await harness.api.PausePromotion(promotions_pb2.PausePromotionRequest(promotion_id=promotion.id))
        assert paused.promotion.status == promotions_pb2.PROMOTION_STATUS_PAUSED
        await asyncio.wait_for(sending, timeout=20)  # the batch in flight finishes, then it stops
        at_pause = len(await harness.provider_messages())
        assert at_pause < 400
        assert not await runner.run_once()  # a paused promotion is not due
        assert len(await harness.provider_messages()) == at_pause

        resumed = await harness.api.ResumePromotion(promotions_pb2.ResumePromotionRequest(promotion_id=promotion.id))
        assert resumed.promotion.status == promotions_pb2.PROMOTION_STATUS_SENDING
        assert await runner.run_once()
    finally:
        await close()
    once_each(await harness.provider_messages(), 400)
    assert await harness.rows(promotion.id) == {"sent": 400}


async def test_a_runner_that_dies_between_send_and_record_leaves_nothing_twice_or_missing(harness: Harness) -> None:
    promotion = await harness.create(size=300)
    await harness.schedule(promotion.id)
    dying, close_dying = harness.runner("runner-dies", rate=300.0, batch=100)
    try:
        task = asyncio.create_task(dying.run_once())

        async def mid_batch() -> int | None:
            n = len(await harness.provider_messages())
            return n if n >= 30 else None

        await eventually(mid_batch, timeout=20, interval=0.01)
        task.cancel()  # killed mid-batch: some sends went out, none of the batch's outcomes recorded
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await close_dying()
    assert (await harness.rows(promotion.id)).get("pending", 0) > 0
    # Its lease lapses (a crashed pod's would, at promotion_lease_seconds); another runner resumes.
    async with harness.service.db.unit_of_work() as uow:
        await uow.conn.execute(
            update(promotions).where(promotions.c.id == promotion.id).values(lease_until=datetime.now(UTC))
        )
    survivor, close = harness.runner("runner-b")
    try:
        assert await survivor.run_once()
    finally:
        await close()
    # The provider answered each repeated key with its first send: one message per person.
    once_each(await harness.provider_messages(), 300)
    assert await harness.rows(promotion.id) == {"sent": 300}


async def test_two_runners_at_once_share_a_promotion_without_a_double(harness: Harness) -> None:
    promotion = await harness.create(size=500)
    await harness.schedule(promotion.id)
    first, close_first = harness.runner("runner-a", batch=50)
    second, close_second = harness.runner("runner-b", batch=50)
    try:
        worked = await asyncio.gather(first.run_once(), second.run_once())
    finally:
        await close_first()
        await close_second()
    assert worked.count(True) == 1  # the lease gave the promotion to one of them
    once_each(await harness.provider_messages(), 500)
    async with harness.service.db.unit_of_work() as uow:
        rows = (
            await uow.conn.execute(
                select(func.count(), func.count(func.distinct(promotion_recipients.c.message_id))).where(
                    promotion_recipients.c.promotion_id == promotion.id
                )
            )
        ).one()
    assert tuple(rows) == (500, 500)


async def test_a_number_refused_after_the_audience_was_resolved_gets_nothing(harness: Harness) -> None:
    promotion = await harness.create(size=120)
    await harness.schedule(promotion.id)
    reply = promotions_pb2.ReceiveInboundSmsRequest(
        provider_message_id="in-1", from_number="+972500000007", text="STOP"
    )
    first = await harness.api.ReceiveInboundSms(reply)
    again = await harness.api.ReceiveInboundSms(reply)
    assert (first.action, first.applied, again.applied) == ("opt_out", True, False)
    runner, close = harness.runner("runner-a")
    try:
        assert await runner.run_once()
    finally:
        await close()
    sent = [m["to"] for m in await harness.provider_messages()]
    # 119 promotion messages and the one confirmation of the refusal: nothing more to that number.
    assert sent.count("+972500000007") == 1 and len(sent) == 120
    assert await harness.rows(promotion.id) == {"sent": 119, "suppressed": 1}
    async with harness.service.db.unit_of_work() as uow:
        source = (await uow.conn.execute(select(suppressions.c.source))).scalars().all()
    assert source == ["sms_reply"]


@pytest.mark.parametrize("harness", [{"advertising_rules": "IR"}], indirect=True)
async def test_in_iran_12_re_subscribes_a_number_that_replied_11_and_nobody_else(
    harness: Harness, nats_server: str
) -> None:
    refused, stranger = "+989120000007", "+989120000008"

    async def reply(provider_id: str, number: str, text: str) -> promotions_pb2.ReceiveInboundSmsResponse:
        request = promotions_pb2.ReceiveInboundSmsRequest(
            provider_message_id=provider_id, from_number=number, text=text
        )
        return await harness.api.ReceiveInboundSms(request)

    assert (await reply("in-1", refused, "11")).action == "opt_out"
    again = await reply("in-2", refused, "۱۲")
    repeat = await reply("in-2", refused, "۱۲")
    bare = await reply("in-3", stranger, "12")
    assert (again.action, again.applied, repeat.applied) == ("opt_in", True, False)
    assert (bare.action, bare.applied) == ("opt_in", True)  # recorded, and it grants nothing
    async with harness.service.db.unit_of_work() as uow:
        left = (await uow.conn.execute(select(suppressions.c.address))).scalars().all()
        audited = (
            (await uow.conn.execute(select(messaging.audit_log.c.action).order_by(messaging.audit_log.c.id)))
            .scalars()
            .all()
        )
    assert left == [] and audited == ["consent.withdrawn", "consent.renewed"]

    async def announced() -> events_pb2.ConsentGranted | None:
        bus = await nats.connect(nats_server)
        try:
            found = await bus.jetstream().get_last_msg("CRM", "crm.notifications.consent_granted")
        except nats.js.errors.NotFoundError:
            return None
        finally:
            await bus.close()
        return events_pb2.ConsentGranted.FromString(found.data or b"")

    granted = await eventually(announced)
    assert (granted.channel, granted.address, granted.evidence) == ("sms", refused, "۱۲")
    # And 11 again stops it again.
    assert (await reply("in-4", refused, "11")).applied
    async with harness.service.db.unit_of_work() as uow:
        assert (await uow.conn.execute(select(suppressions.c.address))).scalars().all() == [refused]


async def test_scheduling_refuses_the_past_nobody_and_a_self_approval(harness: Harness) -> None:
    promotion = await harness.create(size=10)
    past = datetime.now(UTC) - timedelta(hours=1)
    request = promotions_pb2.SchedulePromotionRequest(promotion_id=promotion.id)
    request.send_time.FromDatetime(past)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await harness.api.SchedulePromotion(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "send_time" in field_violations(refused.value)

    harness.audience.reset(0)
    with pytest.raises(grpc.aio.AioRpcError) as nobody:
        await harness.schedule(promotion.id)
    assert nobody.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    large = await harness.create(size=1500)  # above promotion_approval_above
    waiting = await harness.schedule(large.id, actor="marketing-1")
    assert waiting.status == promotions_pb2.PROMOTION_STATUS_AWAITING_APPROVAL
    approve = promotions_pb2.ApprovePromotionRequest(promotion_id=large.id)
    with pytest.raises(grpc.aio.AioRpcError) as own:
        await harness.api.ApprovePromotion(approve, metadata=((ACTOR_METADATA_KEY, "marketing-1"),))
    assert own.value.code() == grpc.StatusCode.PERMISSION_DENIED
    approved = await harness.api.ApprovePromotion(approve, metadata=((ACTOR_METADATA_KEY, "manager-1"),))
    assert approved.promotion.status == promotions_pb2.PROMOTION_STATUS_SCHEDULED
    assert approved.promotion.approved_by == "manager-1"


async def test_texts_that_break_the_rules_are_refused_naming_each(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await harness.api.CreatePromotion(
            promotions_pb2.CreatePromotionRequest(
                name="x",
                channel="sms",
                texts=[
                    promotions_pb2.PromotionText(locale="he-IL", body="מבצע {coupon}"),
                    promotions_pb2.PromotionText(locale="xx-XX", body=HE),
                ],
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(refused.value)) == {"texts[0].body", "texts[1].locale"}
    async with harness.service.db.unit_of_work() as uow:
        assert (await uow.conn.execute(select(func.count()).select_from(promotions))).scalar_one() == 0


EMAIL_BODY = "שלום {name}\n{advertiser} {advertiser_contact}\n\nלהסרה: {unsubscribe_link}"


async def e_mail_promotion(harness: Harness, **more: Any) -> promotions_pb2.CreatePromotionResponse:
    """A Hebrew e-mail promotion to the harness's audience, at 3 agorot an e-mail; `more` adds to or
    replaces the request's fields."""
    fields: dict[str, Any] = {
        "name": "מבצע",
        "channel": "email",
        "texts": [promotions_pb2.PromotionText(locale="he-IL", subject="פרסומת: מבצע ספות", body=EMAIL_BODY)],
        "email_price_minor": 3,
        "currency_code": "ILS",
        **more,
    }
    reply: promotions_pb2.CreatePromotionResponse = await harness.api.CreatePromotion(
        promotions_pb2.CreatePromotionRequest(**fields), metadata=((ACTOR_METADATA_KEY, "marketing-1"),)
    )
    return reply


@asynccontextmanager
async def e_mail_runner(harness: Harness, size: int, **sender: Any) -> AsyncIterator[tuple[PromotionRunner, SinkState]]:
    """An audience of `size` with e-mail addresses, and a runner that sends to a local SMTP sink
    (the sender's options as given); the sink's state keeps what it received."""
    state, port = SinkState(), free_port()
    controller = smtp_controller(state, host="127.0.0.1", port=port)
    controller.start()
    email = SmtpEmailSender(
        SmtpConfig(host="127.0.0.1", port=port, from_address="news@crm.example", security="none"), **sender
    )
    harness.audience.reset(size)
    for member in harness.audience.members:
        member.address = f"{member.customer_id}@example.com"
    runner, close = harness.runner("runner-a")
    runner.email = email
    try:
        yield runner, state
    finally:
        await close()
        await email.aclose()
        controller.stop()


async def test_an_e_mail_promotion_reuses_smtp_sessions_and_carries_one_click_unsubscribe(harness: Harness) -> None:
    async with e_mail_runner(harness, 150, sessions=4, messages_per_session=25) as (runner, state):
        reply = await e_mail_promotion(harness)
        await harness.schedule(reply.promotion.id)
        assert await runner.run_once()
    with state.lock:
        received = list(state.messages)
    assert sorted(m.rcpt_to[0] for m in received) == sorted(f"c-{i:06d}@example.com" for i in range(150))
    first = received[0]
    assert first.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        first.headers["List-Unsubscribe"].startswith("<http")
        and "/api/v1/public/unsubscribe/" in first.headers["List-Unsubscribe"]
    )
    assert "/u/" in first.text  # the recipient's own unsubscribe page in the text
    assert await harness.rows(reply.promotion.id) == {"sent": 150}
    report = await harness.api.GetPromotionReport(
        promotions_pb2.GetPromotionReportRequest(promotion_id=reply.promotion.id)
    )
    assert (report.total.sms_parts, report.total.cost_minor) == (0, 150 * 3)  # e-mails sent × their price


async def test_a_receipt_that_beats_its_send_record_is_applied_once_the_send_is(harness: Harness) -> None:
    promotion = await harness.create(size=3)
    await harness.schedule(promotion.id)
    runner, close = harness.runner("runner-a")
    try:
        assert await runner.run_once()
    finally:
        await close()
    receipt = promotions_pb2.RecordDeliveryReceiptRequest(provider_message_id="msg_early", status="delivered")
    counted = REGISTRY.get_sample_value("crm_delivery_receipts_total", {"status": "delivered"}) or 0.0
    # The provider reports before the message's send is recorded: nothing to apply to yet, kept.
    assert not (await harness.api.RecordDeliveryReceipt(receipt)).applied
    async with harness.service.db.unit_of_work() as uow:
        target = (await uow.conn.execute(select(messages.c.id).where(messages.c.promotion_id == promotion.id))).scalar()
        await uow.conn.execute(update(messages).where(messages.c.id == target).values(provider_message_id="msg_early"))

    async def delivered() -> int | None:
        report = await harness.api.GetPromotionReport(
            promotions_pb2.GetPromotionReportRequest(promotion_id=promotion.id)
        )
        return report.total.delivered or None

    assert await eventually(delivered, timeout=15) == 1  # the periodic job applied it
    # Applied once: the same receipt again changes nothing, and nothing is kept for it any more.
    assert not (await harness.api.RecordDeliveryReceipt(receipt)).applied
    assert REGISTRY.get_sample_value("crm_delivery_receipts_total", {"status": "delivered"}) == counted + 1
    async with harness.service.db.unit_of_work() as uow:
        kept = (await uow.conn.execute(select(func.count()).select_from(early_receipts))).scalar_one()
    assert kept == 0


async def test_a_receipt_whose_send_commits_between_its_update_and_its_keeping_is_not_lost(harness: Harness) -> None:
    """The race the CI caught: the receipt's update saw no message (the send not committed yet), the
    send committed, then the keeping statement saw the message. It is kept and applied all the same;
    a receipt for a message already final is not kept."""
    promotion = await harness.create(size=2)
    await harness.schedule(promotion.id)
    runner, close = harness.runner("runner-a")
    try:
        assert await runner.run_once()
    finally:
        await close()
    async with harness.service.db.unit_of_work() as uow:
        first, second = (
            await uow.conn.execute(select(messages.c.id).where(messages.c.promotion_id == promotion.id))
        ).scalars()
        await uow.conn.execute(update(messages).where(messages.c.id == first).values(provider_message_id="msg_race"))
        await uow.conn.execute(
            update(messages)
            .where(messages.c.id == second)
            .values(provider_message_id="msg_final", delivery_status="delivered", delivered_at=datetime.now(UTC))
        )
    async with harness.service.db.unit_of_work() as uow:
        for provider_id in ("msg_race", "msg_final"):
            params = {"status": "delivered", "at": datetime.now(UTC), "provider_id": provider_id}
            await promotion_store.keep_early_receipt(uow, params)
        kept = (await uow.conn.execute(select(early_receipts.c.provider_message_id))).scalars().all()
    assert kept == ["msg_race"]

    async def delivered() -> int | None:
        report = await harness.api.GetPromotionReport(
            promotions_pb2.GetPromotionReportRequest(promotion_id=promotion.id)
        )
        return report.total.delivered if report.total.delivered == 2 else None

    assert await eventually(delivered, timeout=15) == 2  # the periodic job applied the kept one


async def test_the_estimate_before_sending_prices_each_language_s_parts_as_the_sent_messages_cost(
    harness: Harness,
) -> None:
    long_he = HE + " " + "ספה נוחה במיוחד לכל המשפחה, " * 3  # Hebrew: UCS-2, 67 characters a part
    promotion = await harness.create(
        size=30,
        texts=[
            promotions_pb2.PromotionText(locale="he-IL", body=long_he),
            promotions_pb2.PromotionText(locale="fa-IR", body=FA),
        ],
    )
    estimate = await harness.api.EstimatePromotion(promotions_pb2.EstimatePromotionRequest(promotion_id=promotion.id))
    per_locale = {e.locale: (e.recipients, e.parts_per_message) for e in estimate.locales}
    he_parts, fa_parts = per_locale["he-IL"][1], per_locale["fa-IR"][1]
    assert per_locale == {"he-IL": (20, he_parts), "fa-IR": (10, fa_parts)} and he_parts > fa_parts >= 1
    assert estimate.reachable == 30
    assert estimate.sms_parts == 20 * he_parts + 10 * fa_parts
    assert (estimate.cost_minor, estimate.currency_code) == (estimate.sms_parts * 8, "ILS")

    # Sent, the report's parts and cost are what the estimate said.
    await harness.schedule(promotion.id)
    runner, close = harness.runner("runner-a")
    try:
        while await runner.run_once():
            pass
    finally:
        await close()
    report = await harness.api.GetPromotionReport(promotions_pb2.GetPromotionReportRequest(promotion_id=promotion.id))
    assert (report.total.sms_parts, report.total.cost_minor) == (estimate.sms_parts, estimate.cost_minor)

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await harness.api.EstimatePromotion(promotions_pb2.EstimatePromotionRequest(promotion_id="no-such-one"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_frequency_cap_holds_a_second_promotion_and_quiet_hours_hold_them_all(harness: Harness) -> None:
    first = await harness.create(size=20)
    await harness.schedule(first.id)
    capped, close = harness.runner("runner-a")
    capped.config = replace(capped.config, frequency_cap=FrequencyCap(messages=1, days=7))
    try:
        assert await capped.run_once()
        second = await harness.create(size=20)
        await harness.schedule(second.id)
        # Quiet hours around now: nothing starts (the promotion stays due for their end).
        now = datetime.now(capped.zone)
        quiet = replace(capped.config, quiet_hours=f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}")
        held = PromotionRunner(
            harness.service.db,
            capped.customers,
            capped.sms,
            None,
            config=quiet,
            advertiser=ADVERTISER,
            unsubscribe_secret=SECRET,
        )
        assert not await held.run_once()
        assert await capped.run_once()
    finally:
        await close()
    assert await harness.rows(first.id) == {"sent": 20}
    assert await harness.rows(second.id) == {"suppressed": 20}  # each had their one promotion this week
    async with harness.service.db.unit_of_work() as uow:
        reasons = (
            (
                await uow.conn.execute(
                    select(messages.c.last_error).where(messages.c.promotion_id == second.id).distinct()
                )
            )
            .scalars()
            .all()
        )
    assert reasons == ["frequency cap"]
    assert len(await harness.provider_messages()) == 20


HE_B = "פרסומת: {name}, כרית במתנה לכל ספה עד {date}! {advertiser} {advertiser_contact}. להסרה השיבו הסר"


def ab_texts() -> list[promotions_pb2.PromotionText]:
    return [
        promotions_pb2.PromotionText(locale="he-IL", body=HE, variant="A"),
        promotions_pb2.PromotionText(locale="he-IL", body=HE_B, variant="B"),
    ]


async def test_an_ab_test_sends_its_share_waits_then_gives_the_rest_the_variant_with_more_clicks(
    harness: Harness,
) -> None:
    promotion = await harness.create(
        size=200, texts=ab_texts(), test_percent=30, winner_rule="clicks", winner_wait_minutes=60
    )
    assert (promotion.test_percent, promotion.winner_rule, promotion.winner_wait_minutes) == (30, "clicks", 60)
    await harness.schedule(promotion.id)
    runner, close = harness.runner("runner-a")
    try:
        assert await runner.run_once()  # the test group: about 30 %, A and B evenly
        tested = await harness.provider_messages()
        assert 40 <= len(tested) <= 80 and {"B" if "כרית" in m["body"] else "A" for m in tested} == {"A", "B"}
        assert not await runner.run_once()  # waiting for the winner: no runner takes it
        async with harness.service.db.unit_of_work() as uow:
            b_messages = select(messages.c.id).where(messages.c.promotion_id == promotion.id, messages.c.variant == "B")
            await uow.conn.execute(
                update(messages).where(messages.c.id.in_(b_messages.limit(5))).values(clicked_at=func.now())
            )
            await uow.conn.execute(
                update(promotions).where(promotions.c.id == promotion.id).values(wait_until=func.now())
            )
        assert await runner.run_once()  # the wait is over: B won, the rest gets it
    finally:
        await close()
    sent = await harness.provider_messages()
    once_each(sent, 200)
    rest = [m for m in sent if m["to"] not in {t["to"] for t in tested}]
    assert rest and all("כרית" in m["body"] for m in rest)
    report = await harness.api.GetPromotionReport(promotions_pb2.GetPromotionReportRequest(promotion_id=promotion.id))
    assert (
        report.promotion.winner_variant == "B" and report.promotion.status == promotions_pb2.PROMOTION_STATUS_COMPLETED
    )
    split = {row.variant: row for row in report.split}
    assert set(split) == {"A", "B"} and split["B"].clicked == 5 and split["A"].clicked == 0
    assert split["A"].sent + split["B"].sent == 200 and split["B"].sent > split["A"].sent


async def test_without_a_test_share_the_variants_split_everyone_and_bad_settings_are_named(harness: Harness) -> None:
    promotion = await harness.create(size=120, texts=ab_texts())
    await harness.schedule(promotion.id)
    runner, close = harness.runner("runner-a")
    try:
        assert await runner.run_once()
    finally:
        await close()
    sent = await harness.provider_messages()
    once_each(sent, 120)
    b_share = sum("כרית" in m["body"] for m in sent) / 120
    assert 0.3 < b_share < 0.7  # even by hash, not by order

    async def refused(**fields: Any) -> set[str]:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await harness.create(size=10, **fields)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        return set(field_violations(error.value))

    assert await refused(test_percent=20, winner_rule="clicks") == {"test_percent"}  # one variant: no test
    assert await refused(texts=ab_texts(), test_percent=60, winner_rule="opens") == {"test_percent", "winner_rule"}
    assert await refused(texts=ab_texts(), winner_rule="clicks") == {"winner_rule"}
    assert await refused(track_opens=True) == {"track_opens"}  # an SMS has no image to fetch
    skipped = [
        promotions_pb2.PromotionText(locale="he-IL", body=HE, variant="A"),
        promotions_pb2.PromotionText(locale="he-IL", body=HE_B, variant="C"),
    ]
    assert await refused(texts=skipped) == {"texts"}


async def test_tracked_opens_are_counted_once_each_and_can_choose_an_e_mail_test_s_winner(harness: Harness) -> None:
    """Opted in: each e-mail's HTML carries its own open image; the first fetch of each counts, a
    second changes nothing, a code of no tracked message is NOT_FOUND; opens choose the winner."""
    async with e_mail_runner(harness, 60) as (runner, state):
        reply = await e_mail_promotion(
            harness,
            name="פתיחות",
            texts=[
                promotions_pb2.PromotionText(locale="he-IL", subject="פרסומת: ספות", body=EMAIL_BODY, variant="A"),
                promotions_pb2.PromotionText(locale="he-IL", subject="פרסומת: כריות", body=EMAIL_BODY, variant="B"),
            ],
            track_opens=True,
            test_percent=50,
            winner_rule="opens",
            winner_wait_minutes=60,
        )
        assert reply.promotion.track_opens
        await harness.schedule(reply.promotion.id)
        assert await runner.run_once()  # the test half
        with state.lock:
            tested = list(state.messages)
        codes: dict[str, list[str]] = {m.subject: [] for m in tested}
        for m in tested:
            found = re.search(r'<img src="http://localhost:8080/o/([A-Za-z0-9_-]+)" width="1" height="1"', m.html)
            assert found, m.html
            codes[m.subject].append(found.group(1))
        assert set(codes) == {"פרסומת: ספות", "פרסומת: כריות"}
        for code in codes["פרסומת: כריות"][:3]:
            assert (await harness.api.RecordOpen(promotions_pb2.RecordOpenRequest(code=code))).first
        again = await harness.api.RecordOpen(promotions_pb2.RecordOpenRequest(code=codes["פרסומת: כריות"][0]))
        assert not again.first
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await harness.api.RecordOpen(promotions_pb2.RecordOpenRequest(code="NoSuchCode"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        async with harness.service.db.unit_of_work() as uow:
            await uow.conn.execute(
                update(promotions).where(promotions.c.id == reply.promotion.id).values(wait_until=func.now())
            )
        assert await runner.run_once()  # the wait is over: B, with opens, goes to the rest
    with state.lock:
        received = list(state.messages)
    assert len(received) == 60 and len({m.rcpt_to[0] for m in received}) == 60
    rest = received[len(tested) :]
    assert rest and {m.subject for m in rest} == {"פרסומת: כריות"}
    report = await harness.api.GetPromotionReport(
        promotions_pb2.GetPromotionReportRequest(promotion_id=reply.promotion.id)
    )
    assert report.promotion.winner_variant == "B" and report.total.opened == 3
    assert {row.variant: row.opened for row in report.split} == {"A": 0, "B": 3}


async def test_a_promotion_that_does_not_track_opens_carries_no_image_and_knows_no_open(harness: Harness) -> None:
    promotion = await harness.create(
        size=3,
        link_url="https://furniture.example/sofas",
        texts=[
            promotions_pb2.PromotionText(locale="he-IL", body=HE + " {link}"),
        ],
    )
    await harness.schedule(promotion.id)
    runner, close = harness.runner("runner-a")
    try:
        assert await runner.run_once()
    finally:
        await close()
    async with harness.service.db.unit_of_work() as uow:
        code = (
            await uow.conn.execute(select(messages.c.link_code).where(messages.c.promotion_id == promotion.id))
        ).scalar()
    assert code
    # Its link code follows its link, but is no open image: the promotion did not opt in.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await harness.api.RecordOpen(promotions_pb2.RecordOpenRequest(code=code))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
