"""Sends promotions: exactly one message per recipient, in batches that survive restarts.

One runner at a time holds a promotion's lease (`promotion_store.claim_due`: SKIP LOCKED, renewed
before every batch), so replicas share promotions without sharing one. Its steps, each saved before
the next:

1. **Resolve the audience** page by page from customers (`ResolveAudience`, consent applied there):
   a page's recipients and the cursor after it in one transaction, so a restart resumes after the
   last page saved.
2. **Record a batch's intents**: the next recipients without a message (locked) become message rows
   under the key `promotion:<id>:<customer>` (unique) — suppressed instead when the address was
   refused or the customer withdrew since — and each recipient row names its message, in one
   transaction.
3. **Send** the batch's pending messages, at most `rate` a second and `concurrency` at once, each
   with its key as the provider's idempotency key (an e-mail with a Message-ID derived from it).
4. **Record the outcomes** of the batch in one transaction (sent rows and their NotificationSent,
   permanent failures and their NotificationFailed); a transient failure stays pending.

A runner stopped anywhere resumes from what was saved: a recipient without a message gets one
(step 2), a message pending after a crash between 3 and 4 is sent again under the same key
(the provider answers the first send; an e-mail's copy carries the same Message-ID). Pausing or
cancelling changes the promotion's status; the runner sees it when it renews the lease before the
next batch, and the batch in flight finishes. Nothing is re-sent on resume and nothing is skipped,
since progress is the rows, not a position in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf import json_format

from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from crm_kit.company import company_zone
from crm_kit.db import Database
from crm_kit.failpoints import failpoint
from crm_notifications import advertising, commands, domain, promotion_store, promotions
from crm_notifications.email_sender import Email, SmtpEmailSender
from crm_notifications.metrics import PROMOTION_MESSAGES
from crm_notifications.outbound import PermanentSendError, SendReceipt, TransientSendError
from crm_notifications.sms_provider import SmsGateway

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerConfig:
    owner: str
    batch_size: int = 500
    # Messages handed to the provider per second, and at once.
    rate_per_second: float = 100.0
    concurrency: int = 16
    resolve_page_size: int = 2000
    lease: timedelta = timedelta(seconds=60)
    poll_seconds: float = 1.0
    # After a batch with transient failures, wait this long before sending its pending messages again.
    retry_after_seconds: float = 5.0
    time_zone: str = "Asia/Jerusalem"
    sms_sender: str = "CRM"
    # The recipient's unsubscribe page (the console) and the one-click endpoint (the gateway).
    unsubscribe_page_url: str = "http://localhost:8081"
    one_click_url: str = "http://localhost:8080/api/v1/public/unsubscribe"
    # A recipient's short tracked link: <short_link_url>/<code> (the gateway's /r/<code>).
    short_link_url: str = "http://localhost:8080/r"
    # A tracked e-mail's open image: <open_image_url>/<code> (the gateway's /o/<code>).
    open_image_url: str = "http://localhost:8080/o"
    frequency_cap: promotion_store.FrequencyCap = field(default_factory=promotion_store.FrequencyCap)
    # No batch starts in this daily window of the company's time zone ("21:00-08:00"; "" none).
    quiet_hours: str = ""


@dataclass(frozen=True)
class Outcomes:
    sent: list[tuple[str, str, int]]
    failed: list[tuple[str, int, str]]
    transient: list[tuple[str, int, str]]


class PromotionRunner:
    def __init__(
        self,
        db: Database,
        customers: customers_pb2_grpc.CustomersServiceStub,
        sms: SmsGateway,
        email: SmtpEmailSender | None,
        *,
        config: RunnerConfig,
        advertiser: advertising.Advertiser,
        unsubscribe_secret: bytes,
        reporting: reporting_pb2_grpc.ReportingServiceStub | None = None,
    ) -> None:
        self.db = db
        self.customers = customers
        # Asked for each variant's revenue when an A/B test's winner rule is revenue.
        self.reporting = reporting
        self.sms = sms
        self.email = email
        self.config = config
        self.secret = unsubscribe_secret
        self.personal = promotions.Personalizer(
            unsubscribe_secret, advertiser, config.unsubscribe_page_url, config.short_link_url
        )
        self.zone = company_zone(config.time_zone)
        self.quiet = promotions.quiet_hours(config.quiet_hours)
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        """Until stopped: take a due promotion and send it; wait a poll interval when none is due."""
        while not self._stopped.is_set():
            try:
                worked = await self.run_once()
            except Exception:
                log.exception("promotion runner step failed")
                worked = False
            if not worked:
                try:
                    await asyncio.wait_for(self._stopped.wait(), timeout=self.config.poll_seconds)
                except TimeoutError:
                    pass

    async def run_all(self) -> None:
        """Send every promotion that is due, one after another (the periodic job)."""
        while not self._stopped.is_set() and await self.run_once():
            pass

    async def run_once(self) -> bool:
        """Send one due promotion as far as it goes (done, paused, cancelled, lost lease or quiet
        hours begun); False when none was due (or it is quiet hours now)."""
        if self._quiet():
            return False
        async with self.db.unit_of_work() as uow:
            promotion = await promotion_store.claim_due(uow, self.config.owner, _now(), self.config.lease)
        if promotion is None:
            return False
        try:
            await self._resolve(promotion)
            while not self._stopped.is_set():
                if not await self._step(promotion):
                    break
        finally:
            async with self.db.unit_of_work() as uow:
                await promotion_store.release(uow, promotion.id, self.config.owner)
        return True

    async def _hold(self, uow: Any, promotion_id: str) -> Any | None:
        return await promotion_store.hold(uow, promotion_id, self.config.owner, _now(), self.config.lease)

    async def _resolve(self, promotion: Any) -> None:
        """Step 1: the audience, page by page from where the last saved page ended."""
        audience = json_format.ParseDict(promotion.audience, customers_pb2.AudienceFilter())
        resolved, cursor = promotion.audience_resolved, promotion.resolve_cursor
        variants = promotions.variants_in(promotions.stored_texts(promotion.texts))
        while not resolved and not self._stopped.is_set():
            page = await self.customers.ResolveAudience(
                customers_pb2.ResolveAudienceRequest(
                    filter=audience,
                    channel=promotion.channel,
                    purpose="marketing",
                    page_size=self.config.resolve_page_size,
                    after_customer_id=cursor,
                )
            )
            members = [promotions.Recipient(m.customer_id, m.address, m.locale, m.full_name) for m in page.members]
            cursor = page.next_after_customer_id or cursor
            resolved = not page.next_after_customer_id
            chosen = {
                m.customer_id: promotions.assign_variant(promotion.id, m.customer_id, variants, promotion.test_percent)
                for m in members
            }
            async with self.db.unit_of_work() as uow:
                if await self._hold(uow, promotion.id) is None:
                    return
                await promotion_store.add_recipients(
                    uow, promotion.id, members, cursor, resolved, _now(), variants=chosen
                )

    def _quiet(self) -> bool:
        return promotions.in_quiet_hours(datetime.now(self.zone).time(), self.quiet)

    async def _step(self, promotion: Any) -> bool:
        """One batch: pending messages left by an earlier runner first, else the next recipients'
        intents; sent and recorded. False when there is nothing left, the promotion stopped, an A/B
        test waits for its winner, or quiet hours began (the promotion waits for the morning, its
        lease lapses)."""
        if self._quiet():
            return False
        next_step = GO_ON  # a batch all suppressed: take the next
        async with self.db.unit_of_work() as uow:
            current = await self._hold(uow, promotion.id)
            if current is None:
                return False
            batch, seen = await promotion_store.pending_messages(uow, promotion.id, self.config.batch_size), 0
            if not batch:
                batch, seen = await self._record_batch(uow, current)
            if not batch and not seen:
                next_step = await self._nothing_to_send(uow, current)
        if next_step == WINNER:
            return await self._choose_winner(current)
        if not batch:
            return next_step == GO_ON
        # Crash windows (the chaos suite kills the process here): intents saved, nothing sent; and
        # everything sent, nothing of it recorded. A restart sends the pending again under their keys.
        failpoint("promotions.after_intents")
        outcomes = await self._send_all(current, batch)
        failpoint("promotions.after_sends")
        await self._record(outcomes)
        if outcomes.transient:
            await asyncio.sleep(self.config.retry_after_seconds)
        return True

    async def _nothing_to_send(self, uow: Any, current: Any) -> str:
        """No recipient was left to take: an A/B test's group is all sent (wait for the winner, or
        choose it once the wait is over), the promotion is done, or another runner's rows are locked."""
        if _testing(current) and current.audience_resolved:
            if current.wait_until is None:
                until = _now() + timedelta(minutes=current.winner_wait_minutes)
                await promotion_store.wait_for_winner(uow, current.id, until)
                return STOP
            return STOP if current.wait_until > _now() else WINNER
        if await promotion_store.has_work(uow, current.id):
            return GO_ON
        if current.audience_resolved:
            await promotion_store.complete(uow, current.id, self.config.owner, _now())
        return STOP

    async def _choose_winner(self, promotion: Any) -> bool:
        """The A/B test's winner by its rule (clicks, or revenue from reporting), given to everyone
        still waiting; True to go on sending. Reporting out of reach: asked again in five minutes."""
        async with self.db.unit_of_work() as uow:
            counted = await promotion_store.variant_scores(uow, promotion.id)
        revenue: dict[str, int] = {}
        if promotion.winner_rule == "revenue":
            try:
                revenue = await self._revenue(promotion)
            except grpc.aio.AioRpcError as exc:
                log.warning("the winner waits for reporting", extra={"promotion_id": promotion.id, "error": str(exc)})
                async with self.db.unit_of_work() as uow:
                    await promotion_store.postpone_winner(uow, promotion.id, _now() + WINNER_RETRY)
                return False
        scores = [
            promotions.VariantScore(v, sent, clicks, revenue.get(v, 0), opens)
            for v, (sent, clicks, opens) in sorted(counted.items())
        ]
        winner = promotions.pick_winner(promotion.winner_rule, scores)
        async with self.db.unit_of_work() as uow:
            if await self._hold(uow, promotion.id) is None:
                return False
            shown = {
                sc.variant: {"sent": sc.sent, "clicks": sc.clicks, "revenue_minor": sc.revenue_minor, "opens": sc.opens}
                for sc in scores
            }
            await promotion_store.choose_winner(uow, promotion.id, winner, shown, _now())
        return True

    async def _revenue(self, promotion: Any) -> dict[str, int]:
        """Each variant's revenue (minor units of the promotion's currency, else of the first one
        reported) within the wait after its messages."""
        if self.reporting is None:
            return {}
        days = max(1, -(-promotion.winner_wait_minutes // (24 * 60)))
        results = await self.reporting.GetPromotionResults(
            reporting_pb2.GetPromotionResultsRequest(promotion_id=promotion.id, window_days=days)
        )
        currency = promotion.currency_code or next((m.currency_code for v in results.variants for m in v.revenue), "")
        return {
            v.variant: sum(m.amount_minor for m in v.revenue if m.currency_code == currency) for v in results.variants
        }

    async def _record_batch(self, uow: Any, promotion: Any) -> tuple[list[Any], int]:
        """Step 2: the next recipients' messages, rendered in each one's language and variant;
        (the pending ones to send, how many recipients were taken)."""
        recipients = await promotion_store.next_recipients(
            uow, promotion, self.config.batch_size, self.config.frequency_cap, _now()
        )
        texts = promotions.stored_texts(promotion.texts)
        today = datetime.now(self.zone).date()
        batch = []
        for r in recipients:
            text = promotions.choose_text(texts, r.locale, r.variant)
            subject, body, code = self.personal.message(
                promotion.id,
                text,
                promotions.Recipient(r.customer_id, r.address, r.locale, r.full_name),
                today=today,
                with_link=bool(promotion.link_url) or promotion.track_opens,
            )
            batch.append(
                promotion_store.PromotionMessage(
                    r.customer_id, r.address, text.locale, subject, body, r.held, link_code=code, variant=r.variant
                )
            )
        return await promotion_store.record_intents(uow, promotion, batch, _now()), len(recipients)

    async def _send_all(self, promotion: Any, batch: Sequence[Any]) -> Outcomes:
        """Step 3: at most rate_per_second starts a second, concurrency at once."""
        gate = asyncio.Semaphore(self.config.concurrency)
        interval = 1.0 / self.config.rate_per_second
        start = time.monotonic()
        outcomes = Outcomes([], [], [])

        async def one(i: int, row: Any) -> None:
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            async with gate:
                try:
                    receipt = await self._deliver(promotion, row)
                except PermanentSendError as exc:
                    outcomes.failed.append((row.id, exc.attempts, str(exc)))
                except TransientSendError as exc:
                    outcomes.transient.append((row.id, exc.attempts, str(exc)))
                else:
                    outcomes.sent.append((row.id, receipt.provider_message_id, receipt.attempts))

        await asyncio.gather(*(one(i, row) for i, row in enumerate(batch)))
        return outcomes

    def _open_image(self, promotion: Any, row: Any) -> str:
        """The message's open image URL when its promotion tracks opens ("" otherwise)."""
        if not (promotion.track_opens and row.link_code):
            return ""
        return f"{self.config.open_image_url.rstrip('/')}/{row.link_code}"

    async def _deliver(self, promotion: Any, row: Any) -> SendReceipt:
        if row.channel == domain.SMS:
            return await self.sms.send(
                to=row.recipient, body=row.body, sender=self.config.sms_sender, idempotency_key=row.idempotency_key
            )
        if self.email is None:
            raise TransientSendError("no SMTP relay is configured (CRM_SMTP_HOST)")
        token = promotions.unsubscribe_token(self.secret, promotion.id, row.customer_id)
        one_click = f"{self.config.one_click_url.rstrip('/')}/{token}"
        email = Email(
            to=row.recipient,
            subject=row.subject,
            text=row.body,
            html=domain.email_html(row.body, row.locale, open_image=self._open_image(promotion, row)),
            language=row.locale,
            # RFC 8058 one-click unsubscribe (what Gmail and Yahoo ask of bulk senders since 2024).
            headers=(
                ("List-Unsubscribe", f"<{one_click}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ("Precedence", "bulk"),
            ),
        )
        return await self.email.send(email, idempotency_key=row.idempotency_key)

    async def _record(self, outcomes: Outcomes) -> None:
        """Step 4: the batch's outcomes in one transaction."""
        now = _now()
        async with self.db.unit_of_work() as uow:
            sent = await promotion_store.mark_sent_many(uow, outcomes.sent, now)
            for row in sent:
                await commands.record_sent(uow, row, now)
            failed = []
            for message_id, attempts, error in outcomes.failed:
                row = await commands.mark_failed(uow, message_id, attempts, error, now)
                if row is not None:
                    failed.append(row)
                    await commands.record_failure(uow, row, domain.PROVIDER_REJECTED)
            for message_id, attempts, error in outcomes.transient:
                await commands.note_attempts(uow, message_id, attempts, error)
        channel = sent[0].channel if sent else (failed[0].channel if failed else "")
        if sent:
            PROMOTION_MESSAGES.labels(channel, "sent").inc(len(sent))
        if failed:
            PROMOTION_MESSAGES.labels(channel, "failed").inc(len(failed))
        if outcomes.transient:
            log.warning(
                "promotion messages will be retried",
                extra={"count": len(outcomes.transient), "error": outcomes.transient[0][2]},
            )


def _now() -> datetime:
    return datetime.now(UTC)


# What _step does when no recipient was left to take.
GO_ON, STOP, WINNER = "go on", "stop", "choose the winner"
# Reporting out of reach when a revenue winner is due: asked again this much later.
WINNER_RETRY = timedelta(minutes=5)


def _testing(promotion: Any) -> bool:
    """An A/B test whose winner is not chosen yet: the recipients without a variant wait."""
    return bool(promotion.test_percent) and not promotion.winner_variant
