"""NotificationsService: proto ↔ application functions. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc

from crm.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from crm_kit.company import company_zone
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, raise_all, require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_notifications import advertising, domain, queries
from crm_notifications.preview import LOCALES, Draft, preview

# Longest texts a preview takes: ten SMS parts, and an e-mail body of a reasonable size.
MAX_SMS_CHARACTERS = 1600
MAX_EMAIL_CHARACTERS = 100_000
MAX_SUBJECT_CHARACTERS = 300

_STATUS = {
    domain.MessageStatus.PENDING.value: notifications_pb2.MESSAGE_STATUS_PENDING,
    domain.MessageStatus.SENT.value: notifications_pb2.MESSAGE_STATUS_SENT,
    domain.MessageStatus.FAILED.value: notifications_pb2.MESSAGE_STATUS_FAILED,
    domain.MessageStatus.SUPPRESSED.value: notifications_pb2.MESSAGE_STATUS_SUPPRESSED,
}


def message_to_proto(r: Any) -> notifications_pb2.Message:
    """A messages row as the API's Message."""
    return notifications_pb2.Message(
        id=r.id,
        idempotency_key=r.idempotency_key,
        channel=r.channel,
        recipient=r.recipient,
        body=domain.redacted(r.body),
        locale=r.locale,
        status=_STATUS[r.status],
        lead_id=r.lead_id,
        order_id=r.order_id,
        provider_message_id=r.provider_message_id or "",
        attempts=r.attempts,
        create_time=to_timestamp(r.created_at),
        update_time=to_timestamp(r.updated_at),
        last_error=r.last_error,
        sms_parts=r.sms_parts or 0,
    )


def _draft(request: notifications_pb2.PreviewMessageRequest) -> Draft:
    """The request as a Draft, or INVALID_ARGUMENT naming every field that is wrong."""
    problems = []
    if request.channel not in (domain.SMS, domain.EMAIL):
        problems.append(InvalidArgument("unknown channel", field_violations=[("channel", "must be sms or email")]))
    if request.locale not in LOCALES:
        problems.append(
            InvalidArgument("unknown locale", field_violations=[("locale", f"must be one of {', '.join(LOCALES)}")])
        )
    longest = MAX_SMS_CHARACTERS if request.channel == domain.SMS else MAX_EMAIL_CHARACTERS
    if not request.body.strip() or len(request.body) > longest:
        problems.append(InvalidArgument("no text", field_violations=[("body", f"1 to {longest} characters")]))
    if request.channel == domain.SMS and request.subject:
        problems.append(
            InvalidArgument("an SMS has no subject", field_violations=[("subject", "must be empty for sms")])
        )
    if request.channel == domain.EMAIL and not (0 < len(request.subject.strip()) <= MAX_SUBJECT_CHARACTERS):
        problems.append(
            InvalidArgument("no subject", field_violations=[("subject", f"1 to {MAX_SUBJECT_CHARACTERS} characters")])
        )
    raise_all(problems)
    return Draft(request.channel, request.advertising, request.locale, request.subject, request.body)


class NotificationsServicer(notifications_pb2_grpc.NotificationsServiceServicer):
    def __init__(
        self,
        db: Database,
        *,
        rules: advertising.AdvertisingRules,
        advertiser: advertising.Advertiser,
        unsubscribe_base_url: str,
        time_zone: str = "Asia/Jerusalem",
    ) -> None:
        self.db = db
        self.rules = rules
        self.advertiser = advertiser
        self.unsubscribe_link = f"{unsubscribe_base_url.rstrip('/')}/u/sample"
        self.zone = company_zone(time_zone)

    async def PreviewMessage(
        self, request: notifications_pb2.PreviewMessageRequest, context: grpc.aio.ServicerContext
    ) -> notifications_pb2.PreviewMessageResponse:
        shown = preview(
            _draft(request),
            rules=self.rules,
            advertiser=self.advertiser,
            today=datetime.now(self.zone).date(),
            unsubscribe_link=self.unsubscribe_link,
        )
        parts = shown.parts
        return notifications_pb2.PreviewMessageResponse(
            subject=shown.subject,
            body=shown.body,
            encoding=parts.encoding if parts else "",
            units=parts.units if parts else 0,
            sms_parts=parts.parts if parts else 0,
            remaining=parts.remaining if parts else 0,
            violations=[
                notifications_pb2.PreviewViolation(field=v.field, rule=v.rule, description=v.description)
                for v in shown.violations
            ],
            rules_country=self.rules.country,
        )

    async def GetMessage(
        self, request: notifications_pb2.GetMessageRequest, context: grpc.aio.ServicerContext
    ) -> notifications_pb2.GetMessageResponse:
        require({"message_id": request.message_id})
        async with self.db.unit_of_work() as uow:
            row = await queries.get_message(uow, request.message_id)
        return notifications_pb2.GetMessageResponse(message=message_to_proto(row))

    async def ListMessages(
        self, request: notifications_pb2.ListMessagesRequest, context: grpc.aio.ServicerContext
    ) -> notifications_pb2.ListMessagesResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_messages(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                order_id=request.order_id,
                lead_id=request.lead_id,
            )
        return notifications_pb2.ListMessagesResponse(
            messages=[message_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )
