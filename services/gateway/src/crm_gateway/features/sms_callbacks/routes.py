"""/public/sms-callbacks: what the SMS provider posts back — delivery receipts and the replies people
send — each signed with the shared secret (CRM_SMS_CALLBACK_SECRET: an HMAC-SHA256 of the timestamp
and the raw body, `crm_kit.signatures`). No bearer token: the signature is the credential. A
request without a valid signature, or with a timestamp more than five minutes off (a replay), is
401 and counted against its address like a bad credential; with no secret configured the routes
answer 404. Both are idempotent: a provider retries its callbacks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from crm.notifications.v1 import promotions_pb2
from crm_gateway.convert import to_timestamp
from crm_gateway.deps import Clients
from crm_gateway.features.sms_callbacks.schemas import CallbackHandled, DeliveryReceiptIn, InboundSmsIn
from crm_gateway.platform.auth import refuse_anonymous_flood
from crm_gateway.platform.problems import PROBLEM_RESPONSES
from crm_gateway.settings import GatewaySettings
from crm_kit import signatures

public_router = APIRouter(prefix="/api/v1/public", responses=PROBLEM_RESPONSES)
B = TypeVar("B", bound=BaseModel)


async def _signed(request: Request, model: type[B]) -> B:
    """The body, once its signature holds; 404 without a secret, 401 for a bad signature."""
    settings: GatewaySettings = request.app.state.settings
    if not settings.sms_callback_secret:
        raise HTTPException(404, "SMS callbacks are not configured.")
    refuse_anonymous_flood(request, count=False)
    raw = await request.body()
    valid = signatures.verify(
        settings.sms_callback_secret.encode(),
        request.headers.get(signatures.TIMESTAMP_HEADER, ""),
        raw,
        request.headers.get(signatures.SIGNATURE_HEADER, ""),
        datetime.now(UTC),
    )
    if not valid:
        refuse_anonymous_flood(request)
        raise HTTPException(401, "The callback's signature is missing, wrong or too old.")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


@public_router.post(
    "/sms-callbacks/receipts",
    tags=["promotions"],
    operation_id="receiveDeliveryReceipt",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": DeliveryReceiptIn.model_json_schema()}}}},
)
async def receive_delivery_receipt(request: Request, clients: Clients) -> CallbackHandled:
    """A delivery receipt: the message with that provider id is delivered or undelivered."""
    body = await _signed(request, DeliveryReceiptIn)
    reply = await clients.promotions.RecordDeliveryReceipt(
        promotions_pb2.RecordDeliveryReceiptRequest(
            provider_message_id=body.id, status=body.status, occur_time=to_timestamp(body.time), error=body.error
        )
    )
    return CallbackHandled(applied=reply.applied)


@public_router.post(
    "/sms-callbacks/replies",
    tags=["promotions"],
    operation_id="receiveSmsReply",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": InboundSmsIn.model_json_schema(by_alias=True)}}}
    },
)
async def receive_sms_reply(request: Request, clients: Clients) -> CallbackHandled:
    """A reply someone sent: a refusal (הסר, STOP, 11, لغو, حذف…) stops advertising to the number at
    once, withdraws their marketing consent and sends one confirmation."""
    body = await _signed(request, InboundSmsIn)
    reply = await clients.promotions.ReceiveInboundSms(
        promotions_pb2.ReceiveInboundSmsRequest(
            provider_message_id=body.id,
            from_number=body.from_number,
            to_number=body.to_number,
            text=body.text,
            receive_time=to_timestamp(body.time),
        )
    )
    return CallbackHandled(applied=reply.applied, action=reply.action)
