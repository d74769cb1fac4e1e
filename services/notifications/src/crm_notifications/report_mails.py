"""ScheduledReportReady → the report's e-mail, once to each recipient, with its PDF and PNG chart.

The addresses were checked by reporting against the company's mail domains when the schedule was
made. SMTP has no idempotency key, so each recipient's mail is an intent row (event id and
address) claimed for one delivery at a time, its Message-ID derived from the key (a rare copy after
a crash folds into one message in the reader's mail), and settled sent or failed. A transient
relay error raises: the event is redelivered and resumes with the recipients still pending. The
files travel in the event and are not stored here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from crm.reporting.v1 import events_pb2 as reporting_events
from crm_kit.db import Database
from crm_kit.events import Envelope, PoisonMessage, RetryLater
from crm_notifications import domain, report_mail_store
from crm_notifications.email_sender import Attachment, Email, SmtpEmailSender
from crm_notifications.metrics import REPORT_MAILS
from crm_notifications.outbound import PermanentSendError, TransientSendError

log = logging.getLogger(__name__)


class ReportMailHeld(RetryLater):
    """No relay is configured yet, or another delivery holds a recipient's send claim."""


def validated(message: reporting_events.ScheduledReportReady) -> None:
    if not message.schedule_id or not message.recipients or not message.subject:
        raise PoisonMessage("ScheduledReportReady needs schedule_id, recipients and subject")
    if any(not a.file_name or "/" not in a.media_type for a in message.attachments):
        raise PoisonMessage("ScheduledReportReady has an attachment without a file name or media type")


class ReportMailer:
    def __init__(self, db: Database, email: SmtpEmailSender | None, *, consumer: str) -> None:
        self.db = db
        self.email = email
        self.consumer = consumer

    async def handle(self, envelope: Envelope[reporting_events.ScheduledReportReady]) -> None:
        message = envelope.message
        validated(message)
        if self.email is None:
            raise ReportMailHeld("no SMTP relay is configured (CRM_SMTP_HOST): scheduled reports wait for one")
        attachments = tuple(Attachment(a.file_name, a.media_type, a.content) for a in message.attachments)
        for recipient in dict.fromkeys(message.recipients):
            await self._send_once(envelope, recipient, attachments)
        async with self.db.unit_of_work() as uow:
            await uow.claim_inbox(self.consumer, envelope.id)

    async def _send_once(
        self,
        envelope: Envelope[reporting_events.ScheduledReportReady],
        recipient: str,
        attachments: tuple[Attachment, ...],
    ) -> None:
        assert self.email is not None
        message = envelope.message
        key = f"report:{envelope.id}:{recipient}"
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            row = await report_mail_store.intent(uow, key, message.schedule_id, recipient, message.subject)
            if row.status != report_mail_store.PENDING:
                return
            if not await report_mail_store.claim(uow, key, now, self.email.claim_lease):
                raise ReportMailHeld(f"the report mail {key} is being sent by another delivery")
        email = Email(
            to=recipient,
            subject=message.subject,
            text=message.text,
            html=domain.email_html(message.text, message.locale),
            language=message.locale,
            headers=(("Auto-Submitted", "auto-generated"),),
            attachments=attachments,
        )
        try:
            receipt = await self.email.send(email, idempotency_key=key)
        except PermanentSendError as exc:
            async with self.db.unit_of_work() as uow:
                await report_mail_store.settle(
                    uow, key, report_mail_store.FAILED, exc.attempts, datetime.now(UTC), error=str(exc)
                )
            REPORT_MAILS.labels("failed").inc()
            log.warning("scheduled report refused by the relay", extra={"key": key, "error": str(exc)})
            return
        except TransientSendError as exc:
            async with self.db.unit_of_work() as uow:
                await report_mail_store.note_attempts(uow, key, exc.attempts, str(exc))
            raise
        async with self.db.unit_of_work() as uow:
            await report_mail_store.settle(
                uow,
                key,
                report_mail_store.SENT,
                receipt.attempts,
                datetime.now(UTC),
                message_id=receipt.provider_message_id,
            )
        REPORT_MAILS.labels("sent").inc()
