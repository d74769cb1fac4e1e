"""Response bodies of /dead-letters, and the one mapping of a DeadLetter message onto them."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from crm.admin.v1 import admin_pb2
from crm_kit import protoconv

# The backends that serve DeadLetterService (every one: the chassis registers it), by the name
# the gateway's clients hold their channels under.
BackendService = Literal["leads", "sales", "customers", "orders", "notifications", "reporting"]

# The CloudEvents header naming the event's type (crm.sales.v1.DealClosed), shown on its own
# because it is the first thing an operator looks for.
_EVENT_TYPE_HEADER = "ce-type"


class DeadLetter(BaseModel):
    id: int
    consumer: str = Field(description="The durable consumer that gave up on the event, <service>-<event>")
    subject: str
    event_id: str = Field(description="The event's ce-id; empty when the message had none")
    event_type: str = Field(description="The event's ce-type header; empty when the message had none")
    headers: dict[str, str]
    payload: str = Field(description="The message body as it arrived, base64 (it may not be valid protobuf)")
    payload_size: int = Field(description="The body's size in bytes")
    error: str
    deliveries: int
    create_time: datetime | None
    replay_time: datetime | None = Field(description="null until the letter is replayed")

    @classmethod
    def of(cls, letter: admin_pb2.DeadLetter) -> DeadLetter:
        """The JSON of one letter. Written out rather than through `convert.to_model`: the payload
        is bytes (base64 here) and the event type is read from the headers."""
        headers = dict(letter.headers)
        event_type = next((v for k, v in headers.items() if k.lower() == _EVENT_TYPE_HEADER), "")
        return cls(
            id=letter.id,
            consumer=letter.consumer,
            subject=letter.subject,
            event_id=letter.event_id,
            event_type=event_type,
            headers=headers,
            payload=base64.b64encode(letter.payload).decode("ascii"),
            payload_size=len(letter.payload),
            error=letter.error,
            deliveries=letter.deliveries,
            create_time=protoconv.from_timestamp(letter.create_time, letter.HasField("create_time")),
            replay_time=protoconv.from_timestamp(letter.replay_time, letter.HasField("replay_time")),
        )


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetter]
    next_page_token: str
