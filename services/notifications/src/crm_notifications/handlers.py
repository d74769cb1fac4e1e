"""The transactional messages: OrderShipped → exactly one SMS with the delivery date, and
TicketResolved → exactly one satisfaction survey with its one-tap link (by SMS, or by e-mail when
the customer allows only that: `domain.service_route`), each in the customer's language and only
when the customer allows service messages.

An external side effect cannot share a transaction with the inbox, so this handler runs its
own: (1) record the intent under the order's idempotency key, (2) call the provider with that
key — it de-duplicates, so a crash between the call and (3) never sends twice (an e-mail carries a
Message-ID derived from the key instead: `email_sender`) — and (3) record
the outcome, the inbox claim and the outgoing event in one transaction. A transient failure
raises: the chassis naks and redelivers, and the next delivery resumes the pending intent.

Many shipments are handled at once (main.py), and two deliveries of one order may overlap (a
redelivery after AckWait, a second replica). That stays exactly-once because the intent key is
unique (the second delivery gets the first one's row and text), the provider de-duplicates the
key, and only the delivery whose update finds the row still pending records the outcome event.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from datetime import UTC, date, datetime
from typing import Any

import grpc

from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm.customers.v1 import events_pb2 as customer_events
from crm.orders.v1 import events_pb2 as order_events
from crm.support.v1 import events_pb2 as support_events
from crm_kit.db import Database, UnitOfWork
from crm_kit.events import Envelope, PoisonMessage, RetryLater
from crm_kit.failpoints import failpoint
from crm_kit.grpc_client import call_idempotent
from crm_notifications import commands, domain, promotion_store, queries
from crm_notifications.email_sender import Email, SmtpEmailSender
from crm_notifications.metrics import EMAIL_FAILED, EMAIL_SENT, SMS_FAILED, SMS_SENT
from crm_notifications.outbound import PermanentSendError, SendReceipt, TransientSendError
from crm_notifications.sms_provider import SmsGateway

log = logging.getLogger(__name__)

# How long a read of the templates is used before it is read again. Templates are written by
# migrations (or an operator's SQL), never per request: a change reaches the SMS within a minute.
TEMPLATES_TTL_SECONDS = 60.0


class SendInProgress(RetryLater):
    """Another delivery of the same event holds the e-mail's send claim: this one comes back later
    and finds the outcome recorded."""


class ContactUnavailable(RetryLater):
    """customers could not tell us the contact info yet (it has not seen the lead, or is
    unreachable): held and retried, never counted as a failed delivery, so a lagging or
    restarting customers service delays the SMS instead of dead-lettering it."""


class Notifier(ABC):
    """Sends one message per business key for an event, exactly once (the module doc); a subclass
    says whose contact to ask for, by which channel and what the message says."""

    template_code = ""
    # The template of the e-mail, for a notifier that may send one (`route`).
    email_template_code = ""
    what = "SMS"

    def __init__(
        self,
        db: Database,
        customers: customers_pb2_grpc.CustomersServiceStub,
        provider: SmsGateway,
        *,
        sender: str,
        consumer: str,
        email: SmtpEmailSender | None = None,
    ) -> None:
        # The inbox is claimed under the durable's name (EventBus.durable_for), as the chassis does.
        self.consumer = consumer
        self.db = db
        self.customers = customers
        self.provider = provider
        self.sender = sender
        self.email = email
        self._templates: dict[str, tuple[float, dict[str, domain.Template]]] = {}

    @abstractmethod
    def key(self, message: Any) -> str:
        """The business key of the message: one SMS per key, whatever the deliveries."""

    @abstractmethod
    def contact_request(self, message: Any) -> customers_pb2.GetContactInfoRequest:
        """Whose contact (and consent) the message goes to."""

    @abstractmethod
    def render(self, template: str, locale: str, message: Any, contact: customers_pb2.GetContactInfoResponse) -> str:
        """The text, from the template of the chosen locale."""

    @abstractmethod
    def intent_refs(self, message: Any) -> tuple[str, str]:
        """(lead_id, order_id) the message row records."""

    @abstractmethod
    def validate(self, message: Any) -> None:
        """Raise PoisonMessage for an event that can never produce its message."""

    def route(self, contact: customers_pb2.GetContactInfoResponse) -> domain.Route | domain.SuppressionReason:
        """Where the message goes: by SMS to the customer's number when they allow service SMS."""
        reason = domain.suppression_reason(
            phone_number=contact.phone_number, transactional_sms_allowed=contact.transactional_sms_allowed
        )
        return reason or domain.Route(domain.SMS, contact.phone_number)

    async def _templates_of(self, uow: Any, code: str) -> dict[str, domain.Template]:
        """The templates of code per locale, read at most once a TEMPLATES_TTL_SECONDS."""
        now = time.monotonic()
        cached = self._templates.get(code)
        if cached is None or now - cached[0] > TEMPLATES_TTL_SECONDS:
            cached = self._templates[code] = (now, await queries.templates_for(uow, code))
        return cached[1]

    async def handle(self, envelope: Envelope[Any]) -> None:
        """Handle one delivery of the event (self-managed transactions; see the module doc)."""
        self.validate(envelope.message)
        key = self.key(envelope.message)
        # Almost every delivery is a first one, so ask customers before looking for an intent: a
        # look-up first would cost every message a transaction to spare the rare redelivery a
        # read. record_intent keeps an existing intent, whose text (and consent decision) stands.
        try:
            contact = await self._contact(self.contact_request(envelope.message))
        except ContactUnavailable:
            # A redelivery needs no contact, so customers being down or lagging must not hold it.
            row = await self._existing_intent(envelope, key)
            if row is None:
                raise
        else:
            row = await self._record_intent(envelope, key, contact)
        if row is not None and row.status == domain.MessageStatus.PENDING:
            await self._send(envelope, row)

    async def _contact(self, request: customers_pb2.GetContactInfoRequest) -> customers_pb2.GetContactInfoResponse:
        try:
            response: customers_pb2.GetContactInfoResponse = await call_idempotent(
                lambda: self.customers.GetContactInfo(request)
            )
        except grpc.aio.AioRpcError as exc:
            # NOT_FOUND too: the customer profile is built from events and may not exist yet.
            who = request.lead_id or request.customer_id
            raise ContactUnavailable(f"contact info of {who}: {exc.code().name} {exc.details()}") from exc
        return response

    async def _existing_intent(self, envelope: Envelope[Any], key: str) -> Any | None:
        """The intent recorded for key by an earlier delivery, claiming the inbox when it is settled."""
        async with self.db.unit_of_work() as uow:
            row = await queries.find_by_key(uow, key)
            if row is not None and row.status in domain.SETTLED:
                await uow.claim_inbox(self.consumer, envelope.id)
        return row

    async def _record_intent(
        self, envelope: Envelope[Any], key: str, contact: customers_pb2.GetContactInfoResponse
    ) -> Any | None:
        """Transaction 1: the intent row. Returns it while pending; None once settled and claimed."""
        route = self.route(contact)
        reason: domain.SuppressionReason | None = None
        if isinstance(route, domain.SuppressionReason):
            reason, channel, recipient = route, domain.SMS, contact.phone_number
        else:
            channel, recipient = route.channel, route.recipient
        lead_id, order_id = self.intent_refs(envelope.message)
        async with self.db.unit_of_work() as uow:
            code = self.email_template_code if channel == domain.EMAIL else self.template_code
            chosen = await self._templates_of(uow, code)
            locale = domain.choose_locale(contact.locale, chosen.keys())
            if locale not in chosen:
                raise RuntimeError(f"no {code} template for {locale}")
            template = chosen[locale]
            row, created = await commands.record_intent(
                uow,
                commands.Intent(
                    idempotency_key=key,
                    channel=channel,
                    recipient=recipient,
                    body=self.render(template.body, locale, envelope.message, contact),
                    subject=self.render(template.subject, locale, envelope.message, contact),
                    locale=locale,
                    status=domain.MessageStatus.SUPPRESSED if reason else domain.MessageStatus.PENDING,
                    lead_id=lead_id,
                    order_id=order_id,
                    last_error=reason or "",
                ),
            )
            if row.status == domain.MessageStatus.PENDING:
                return row
            await uow.claim_inbox(self.consumer, envelope.id)
            if created and reason:
                await commands.record_failure(uow, row, reason)
        if created and reason:
            SMS_FAILED.labels(domain.metric_reason(reason)).inc()
            log.info(f"{self.what} suppressed", extra={"message_id": row.id, "key": key, "reason": reason})
        return None

    async def _send(self, envelope: Envelope[Any], row: Any) -> None:
        # Crash window: the intent is committed (pending), the provider not called yet.
        failpoint("notifications.after_intent")
        if row.channel == domain.EMAIL and self.email is not None:
            # The SMS provider de-duplicates overlapping sends by key; an SMTP relay does not.
            async with self.db.unit_of_work() as uow:
                claimed = await commands.claim_send(uow, row.id, datetime.now(UTC), self.email.claim_lease)
            if not claimed:
                raise SendInProgress(f"message {row.id} is being sent by another delivery")
        try:
            receipt = await self._deliver(row)
        except PermanentSendError as exc:
            async with self.db.unit_of_work() as uow:
                failed = await commands.mark_failed(uow, row.id, exc.attempts, str(exc), datetime.now(UTC))
                await uow.claim_inbox(self.consumer, envelope.id)
                if failed is not None:
                    await commands.record_failure(uow, failed, domain.PROVIDER_REJECTED)
            if failed is not None:
                failures = EMAIL_FAILED if row.channel == domain.EMAIL else SMS_FAILED
                failures.labels(domain.metric_reason(domain.PROVIDER_REJECTED)).inc()
            log.warning(f"{self.what} rejected by the provider", extra={"message_id": row.id, "error": str(exc)})
            return
        except TransientSendError as exc:
            async with self.db.unit_of_work() as uow:
                await commands.note_attempts(uow, row.id, exc.attempts, str(exc))
            raise
        # Crash window: the provider accepted the message, the intent is still pending.
        failpoint("notifications.after_provider_accepted")
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            sent = await commands.mark_sent(uow, row.id, receipt.provider_message_id, receipt.attempts, now)
            await uow.claim_inbox(self.consumer, envelope.id)
            if sent is not None:
                await commands.record_sent(uow, sent, now)
        if sent is not None:
            (EMAIL_SENT if row.channel == domain.EMAIL else SMS_SENT).inc()
            # The message row and NotificationSent are the record; this line is for debugging.
            log.debug(f"{self.what} sent", extra={"message_id": row.id, "key": row.idempotency_key})

    async def _deliver(self, row: Any) -> SendReceipt:
        """One attempt at the way out the intent names (its own retries included)."""
        if row.channel != domain.EMAIL:
            return await self.provider.send(
                to=row.recipient, body=row.body, sender=self.sender, idempotency_key=row.idempotency_key
            )
        if self.email is None:
            # The relay was configured when the intent was made and is not now: hold it until it is.
            raise TransientSendError("no SMTP relay is configured (CRM_SMTP_HOST)")
        email = Email(
            to=row.recipient,
            subject=row.subject,
            text=row.body,
            html=domain.email_html(row.body, row.locale),
            language=row.locale,
            # A reply from an auto-responder to an automatic message helps nobody (RFC 3834).
            headers=(("Auto-Submitted", "auto-generated"),),
        )
        return await self.email.send(email, idempotency_key=row.idempotency_key)


class ShipmentNotifier(Notifier):
    """OrderShipped → the delivery date, once per order."""

    template_code = domain.ORDER_SHIPPED_TEMPLATE
    what = "shipment SMS"

    def validate(self, message: order_events.OrderShipped) -> None:
        _validated_delivery_date(message)

    def key(self, message: order_events.OrderShipped) -> str:
        return domain.order_shipped_key(message.order_id)

    def contact_request(self, message: order_events.OrderShipped) -> customers_pb2.GetContactInfoRequest:
        return customers_pb2.GetContactInfoRequest(lead_id=message.lead_id)

    def intent_refs(self, message: order_events.OrderShipped) -> tuple[str, str]:
        return message.lead_id, message.order_id

    def render(
        self,
        template: str,
        locale: str,
        message: order_events.OrderShipped,
        contact: customers_pb2.GetContactInfoResponse,
    ) -> str:
        shipment = domain.Shipment(
            name=contact.full_name,
            carrier=message.carrier,
            tracking=message.tracking_number,
            delivery_date=_validated_delivery_date(message),
        )
        return domain.render_order_shipped(template, locale, shipment)


class SurveyNotifier(Notifier):
    """TicketResolved → the satisfaction survey, once per resolution (a reopened ticket resolved
    again has a new link, so a new key), with a link that scores with one tap: by SMS, or by
    e-mail for a customer who allows only that (`domain.service_route`)."""

    template_code = domain.TICKET_SURVEY_TEMPLATE
    email_template_code = domain.TICKET_SURVEY_EMAIL_TEMPLATE
    what = "survey"

    def __init__(self, *args: Any, survey_base_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.survey_base_url = survey_base_url

    def validate(self, message: support_events.TicketResolved) -> None:
        if not message.ticket_id or not message.customer_id or not message.survey_token:
            raise PoisonMessage("TicketResolved needs ticket_id, customer_id and survey_token")

    def key(self, message: support_events.TicketResolved) -> str:
        return domain.ticket_survey_key(message.ticket_id, message.survey_token)

    def route(self, contact: customers_pb2.GetContactInfoResponse) -> domain.Route | domain.SuppressionReason:
        return domain.service_route(
            phone_number=contact.phone_number,
            sms_allowed=contact.transactional_sms_allowed,
            email=contact.email,
            email_allowed=contact.transactional_email_allowed,
            email_enabled=self.email is not None,
        )

    def contact_request(self, message: support_events.TicketResolved) -> customers_pb2.GetContactInfoRequest:
        return customers_pb2.GetContactInfoRequest(customer_id=message.customer_id)

    def intent_refs(self, message: support_events.TicketResolved) -> tuple[str, str]:
        return "", ""

    def render(
        self,
        template: str,
        locale: str,
        message: support_events.TicketResolved,
        contact: customers_pb2.GetContactInfoResponse,
    ) -> str:
        link = domain.survey_link(self.survey_base_url, message.survey_token, locale)
        return domain.render_survey(template, name=contact.full_name, number=message.number, link=link)


def _validated_delivery_date(shipped: order_events.OrderShipped) -> date:
    """Check the event can ever produce the SMS (else it is poison); returns its delivery date."""
    if not shipped.order_id or not shipped.lead_id:
        raise PoisonMessage("OrderShipped needs order_id and lead_id")
    if not shipped.HasField("estimated_delivery_date"):
        raise PoisonMessage(f"OrderShipped {shipped.order_id} has no estimated_delivery_date")
    d = shipped.estimated_delivery_date
    try:
        return date(d.year, d.month, d.day)
    except ValueError as exc:
        raise PoisonMessage(f"OrderShipped {shipped.order_id} has an invalid delivery date: {exc}") from exc


CONSENT_CHANNELS = {customers_pb2.CONSENT_CHANNEL_SMS: domain.SMS, customers_pb2.CONSENT_CHANNEL_EMAIL: domain.EMAIL}


async def on_consent_changed(uow: UnitOfWork, envelope: Envelope[customer_events.ConsentChanged]) -> None:
    """Customers' advertising withdrawals, kept where messages leave: a promotion's next batch
    leaves out a customer who withdrew marketing consent on its channel after the audience was
    resolved (an agent, a web form, a reply from another number); a later yes lifts it."""
    m = envelope.message
    channel = CONSENT_CHANNELS.get(m.channel)
    if channel is None or m.purpose != customers_pb2.CONSENT_PURPOSE_MARKETING or not m.customer_id:
        return
    at = m.occur_time.ToDatetime(tzinfo=UTC) if m.HasField("occur_time") else envelope.time
    await promotion_store.record_marketing_consent(uow, m.customer_id, channel, m.granted, at)
