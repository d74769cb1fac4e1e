"""NotificationsService: proto ↔ application functions. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc

from crm.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_notifications import domain, queries

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


class NotificationsServicer(notifications_pb2_grpc.NotificationsServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

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
