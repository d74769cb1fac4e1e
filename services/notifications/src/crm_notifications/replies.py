"""What comes back from the SMS provider: replies (a refusal stops advertising to the number at once)
and delivery receipts (a message's fate). Both arrive through the gateway, which checked the
provider's signature; both are idempotent, since a provider retries its callbacks.

A refusal, in one transaction: the inbound message (its provider id is the key: a repeat does
nothing), the number on the suppression list (every promotion's next batch leaves it out), a
`ConsentWithdrawn` event (customers records the withdrawal against every customer with the number,
the source `sms_reply` and the text as evidence) and the confirmation's intent. The confirmation is
sent after the commit; one that fails stays pending and `resend_pending` sends it later.

Where the country's rules name a re-subscribe word (Iran: 12), that reply from a number that
refused takes it off the suppression list and announces `ConsentGranted` in one transaction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from crm.notifications.v1 import events_pb2, promotions_pb2
from crm_kit import phones
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import InvalidArgument, NotFound, raise_all
from crm_kit.protoconv import to_timestamp
from crm_notifications import advertising, commands, domain, promotion_store, promotions, queries
from crm_notifications.metrics import DELIVERY_RECEIPTS, OPT_OUTS
from crm_notifications.outbound import PermanentSendError, TransientSendError
from crm_notifications.sms_provider import SmsGateway

log = logging.getLogger(__name__)

OPT_OUT = "opt_out"
RESUBSCRIBE = "opt_in"
NONE = "none"
SMS_REPLY = "sms_reply"
UNSUBSCRIBE_LINK = "unsubscribe_link"
CONFIRMATION_TEMPLATE = "opt_out_confirmation"
CONFIRMATION_PREFIX = "opt-out-confirmation:"
MAX_TEXT = 1600
RECEIPT_STATES = {"delivered": "delivered", "undelivered": "undelivered", "failed": "undelivered"}
# The receipt that only says the operator took the message changes nothing we record.
ACCEPTED = "sent"
COUNTRY_LOCALE = {"IL": "he-IL", "IR": "fa-IR"}


def _inbound_problems(request: promotions_pb2.ReceiveInboundSmsRequest) -> tuple[str, list[InvalidArgument]]:
    problems = []
    if not 0 < len(request.provider_message_id) <= 200:
        problems.append(InvalidArgument("id", field_violations=[("provider_message_id", "1 to 200 characters")]))
    number = phones.e164(request.from_number) or ""
    if not number:
        problems.append(InvalidArgument("sender", field_violations=[("from_number", "a phone number")]))
    if len(request.text) > MAX_TEXT:
        problems.append(InvalidArgument("text", field_violations=[("text", f"at most {MAX_TEXT} characters")]))
    return number, problems


def _action(text: str, rules: advertising.SmsRules) -> str:
    if advertising.is_refusal(text, rules):
        return OPT_OUT
    return RESUBSCRIBE if advertising.is_resubscription(text, rules) else NONE


class Replies:
    def __init__(
        self,
        db: Database,
        sms: SmsGateway,
        *,
        rules: advertising.AdvertisingRules,
        advertiser: advertising.Advertiser,
        sender: str,
        unsubscribe_secret: bytes,
    ) -> None:
        self.db = db
        self.secret = unsubscribe_secret
        self.sms = sms
        self.rules = rules
        self.advertiser = advertiser
        self.sender = sender

    async def receive(self, request: promotions_pb2.ReceiveInboundSmsRequest) -> tuple[str, bool]:
        """(action, applied) for one inbound SMS; see the module doc."""
        number, problems = _inbound_problems(request)
        raise_all(problems)
        action = _action(request.text, self.rules.sms)
        received = (
            request.receive_time.ToDatetime(tzinfo=UTC) if request.HasField("receive_time") else datetime.now(UTC)
        )
        async with self.db.unit_of_work() as uow:
            inbound = promotion_store.Inbound(
                provider_message_id=request.provider_message_id,
                from_number=number,
                to_number=request.to_number[:20],
                text=request.text,
                action=action,
                received_at=received,
            )
            if not await promotion_store.record_inbound(uow, inbound):
                return action, False
            confirmation = None
            if action == OPT_OUT:
                confirmation = await self._refuse(uow, request, number, received)
            elif action == RESUBSCRIBE:
                await self._renew(uow, number, request.text, received)
        if confirmation is not None:
            await self._send(confirmation)
        return action, True

    async def unsubscribe(self, token: str) -> bool:
        """An e-mail recipient's unsubscribe by their link: the address suppressed at once and
        ConsentWithdrawn announced; False when it already was. The page (or the mail client, for
        one-click) is the confirmation: no further message is sent to someone who asked for none."""
        named = promotions.read_unsubscribe_token(self.secret, token)
        if named is None:
            raise NotFound("no such unsubscribe link", reason="UNSUBSCRIBE_LINK_NOT_FOUND")
        promotion_id, customer_id = named
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            recipient = await promotion_store.recipient(uow, promotion_id, customer_id)
            if recipient is None:
                raise NotFound("no such unsubscribe link", reason="UNSUBSCRIBE_LINK_NOT_FOUND")
            evidence = f"unsubscribe link of promotion {promotion_id}"
            return await self._suppress(
                uow, recipient.channel, recipient.address, UNSUBSCRIBE_LINK, evidence, promotion_id, now
            )

    async def _suppress(
        self,
        uow: UnitOfWork,
        channel: str,
        address: str,
        source: str,
        evidence: str,
        promotion_id: str | None,
        at: datetime,
    ) -> bool:
        """Put the address on the suppression list and announce ConsentWithdrawn; False when it
        was on the list already (the first refusal stands, nothing is announced twice)."""
        suppression = promotion_store.Suppression(channel, address, source, evidence[:500], promotion_id, at)
        if not await promotion_store.suppress(uow, suppression):
            return False
        await uow.record_event(
            events_pb2.ConsentWithdrawn(
                channel=channel,
                address=address,
                source=source,
                evidence=evidence[:500],
                occur_time=to_timestamp(at),
                promotion_id=promotion_id or "",
            ),
            time=at,
        )
        uow.audit("consent.withdrawn", "suppression", f"{channel}:{address}", {"source": source})
        uow.after_commit(lambda: OPT_OUTS.labels(channel, source).inc())
        return True

    async def _renew(self, uow: UnitOfWork, number: str, text: str, at: datetime) -> bool:
        """A person who refused asks for advertising again (Iran's 12): the number comes off the
        suppression list and ConsentGranted is announced (customers records the consent, source
        reply, the text as its evidence). From a number that never refused it changes nothing: a
        bare "12" is no consent to begin with."""
        if not await promotion_store.lift_suppression(uow, domain.SMS, number):
            return False
        await uow.record_event(
            events_pb2.ConsentGranted(
                channel=domain.SMS,
                address=number,
                source=SMS_REPLY,
                evidence=text[:500],
                occur_time=to_timestamp(at),
            ),
            time=at,
        )
        uow.audit("consent.renewed", "suppression", f"{domain.SMS}:{number}", {"source": SMS_REPLY})
        return True

    async def _refuse(
        self, uow: UnitOfWork, request: promotions_pb2.ReceiveInboundSmsRequest, number: str, at: datetime
    ) -> Any | None:
        """Suppress the number, announce the withdrawal, record the confirmation's intent (only for
        a number not refused before: one confirmation per refusal in force)."""
        last = await promotion_store.last_promotion_message(uow, number)
        promotion_id = last.promotion_id if last else None
        if not await self._suppress(uow, domain.SMS, number, SMS_REPLY, request.text, promotion_id, at):
            return None
        templates = await queries.templates_for(uow, CONFIRMATION_TEMPLATE)
        locale = domain.choose_locale(last.locale if last else COUNTRY_LOCALE.get(self.rules.country, ""), templates)
        if locale not in templates:
            log.error("no opt-out confirmation template", extra={"locale": locale})
            return None
        body = templates[locale].body.format_map(domain.KeepUnknown(advertiser=self.advertiser.name))
        row, _ = await commands.record_intent(
            uow,
            commands.Intent(
                idempotency_key=f"{CONFIRMATION_PREFIX}{request.provider_message_id}",
                channel=domain.SMS,
                recipient=number,
                body=body,
                locale=locale,
                status=domain.MessageStatus.PENDING,
                lead_id="",
                order_id="",
            ),
        )
        return row

    async def _send(self, row: Any) -> None:
        """Send a confirmation and record its outcome; a transient failure leaves it pending."""
        try:
            receipt = await self.sms.send(
                to=row.recipient, body=row.body, sender=self.sender, idempotency_key=row.idempotency_key
            )
        except PermanentSendError as exc:
            async with self.db.unit_of_work() as uow:
                failed = await commands.mark_failed(uow, row.id, exc.attempts, str(exc), datetime.now(UTC))
                if failed is not None:
                    await commands.record_failure(uow, failed, domain.PROVIDER_REJECTED)
            return
        except TransientSendError as exc:
            async with self.db.unit_of_work() as uow:
                await commands.note_attempts(uow, row.id, exc.attempts, str(exc))
            log.warning("opt-out confirmation will be retried", extra={"message_id": row.id, "error": str(exc)})
            return
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            sent = await commands.mark_sent(uow, row.id, receipt.provider_message_id, receipt.attempts, now)
            if sent is not None:
                await commands.record_sent(uow, sent, now)

    async def resend_pending(self, older_than: timedelta = timedelta(seconds=30), limit: int = 50) -> int:
        """Send again the confirmations whose send failed (or whose process died before it)."""
        cutoff = datetime.now(UTC) - older_than
        async with self.db.unit_of_work() as uow:
            rows = await promotion_store.pending_by_key_prefix(uow, CONFIRMATION_PREFIX, cutoff, limit)
        for row in rows:
            await self._send(row)
        return len(rows)

    async def receipt(self, request: promotions_pb2.RecordDeliveryReceiptRequest) -> bool:
        """Record a delivery receipt; False for an unknown message, an accepted-only receipt or a
        state already recorded (a provider's retry)."""
        problems = []
        if not 0 < len(request.provider_message_id) <= 200:
            problems.append(InvalidArgument("id", field_violations=[("provider_message_id", "1 to 200 characters")]))
        if request.status not in (*RECEIPT_STATES, ACCEPTED):
            problems.append(
                InvalidArgument("status", field_violations=[("status", "delivered, undelivered, failed or sent")])
            )
        raise_all(problems)
        if request.status == ACCEPTED:
            return False
        status = RECEIPT_STATES[request.status]
        at = request.occur_time.ToDatetime(tzinfo=UTC) if request.HasField("occur_time") else datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            rows = await promotion_store.record_receipt(uow, request.provider_message_id, status, at)
            await _announce_delivered(uow, rows)
        return bool(rows)

    async def apply_early_receipts(self) -> int:
        """The receipts that came before their message's send was recorded, applied (a periodic job)."""
        async with self.db.unit_of_work() as uow:
            rows = await promotion_store.apply_early_receipts(uow, datetime.now(UTC))
            await _announce_delivered(uow, rows)
        return len(rows)


async def _announce_delivered(uow: UnitOfWork, rows: list[Any]) -> None:
    """MessageDelivered for each message a receipt just settled, and its count once committed (a
    rolled-back receipt is retried by its provider and counted then)."""
    for row in rows:
        uow.after_commit(DELIVERY_RECEIPTS.labels(row.status).inc)
    for row in rows:
        await uow.record_event(
            events_pb2.MessageDelivered(
                message_id=row.id,
                promotion_id=row.promotion_id or "",
                status=row.status,
                occur_time=to_timestamp(row.occurred_at),
                customer_id=row.customer_id,
            ),
            time=row.occurred_at,
        )
