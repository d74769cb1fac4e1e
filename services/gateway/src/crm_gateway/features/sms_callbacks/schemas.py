"""Bodies the SMS provider posts to /public/sms-callbacks (signed: crm_kit.signatures)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from crm_gateway.convert import IsoDateTime

ProviderId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class DeliveryReceiptIn(BaseModel):
    # A provider adds fields over time: unknown ones are ignored, not refused.
    model_config = ConfigDict(extra="ignore")

    # The provider's id of the message (what it answered the send with).
    id: ProviderId
    status: Literal["delivered", "undelivered", "failed", "sent"]
    time: IsoDateTime | None = None
    error: Annotated[str, StringConstraints(max_length=500)] = ""


class InboundSmsIn(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: ProviderId
    from_number: Annotated[str, StringConstraints(min_length=3, max_length=20), Field(alias="from")]
    to_number: Annotated[str, StringConstraints(max_length=20), Field(alias="to")] = ""
    text: Annotated[str, StringConstraints(max_length=1600)]
    time: IsoDateTime | None = None


class CallbackHandled(BaseModel):
    # False: already recorded (a provider's retry), or no message has that id.
    applied: bool
    # Replies: opt_out or none.
    action: str = ""
