"""/dead-letters: the events one backend service's consumers gave up on, to inspect and replay
(admins). Each backend keeps its own letters and serves them over the chassis' DeadLetterService
(`crm_kit.dead_letters`); the gateway names the backend in the query or the path, as
/audit-records does, and passes the backend's answers through: newest first, its keyset page
tokens, NOT_FOUND as 404 and a second replay (FAILED_PRECONDITION) as 409."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from crm.admin.v1 import admin_pb2
from crm_gateway import records
from crm_gateway.deps import Caller, Clients, PageSize, PageToken, api_router
from crm_gateway.features.dead_letters.schemas import BackendService, DeadLetter, DeadLetterList
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()

# A letter's id is the backend's bigserial: positive, and within int64 (the proto field's type).
DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/dead-letters", tags=["dead letters"], operation_id="listDeadLetters")
async def list_dead_letters(
    clients: Clients,
    principal: Caller,
    service: BackendService,
    consumer: Annotated[str, Query(max_length=100, description="Only this durable consumer's letters")] = "",
    include_replayed: Annotated[bool, Query(description="Also the letters already replayed")] = False,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> DeadLetterList:
    """One service's dead letters, newest first; replayed ones only with include_replayed."""
    reply = await read(
        clients.dead_letters[service].ListDeadLetters,
        admin_pb2.ListDeadLettersRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            consumer=consumer.strip(),
            include_replayed=include_replayed,
        ),
    )
    return DeadLetterList(
        dead_letters=[DeadLetter.of(letter) for letter in reply.dead_letters], next_page_token=reply.next_page_token
    )


@router.get("/dead-letters/{service}/{dead_letter_id}", tags=["dead letters"], operation_id="getDeadLetter")
async def get_dead_letter(
    service: BackendService, dead_letter_id: DeadLetterId, clients: Clients, principal: Caller
) -> DeadLetter:
    """One dead letter of one service, replayed or not."""
    reply = await records.get(
        "dead letter",
        str(dead_letter_id),
        clients.dead_letters[service].GetDeadLetter,
        admin_pb2.GetDeadLetterRequest(dead_letter_id=dead_letter_id),
    )
    return DeadLetter.of(reply.dead_letter)


@router.post("/dead-letters/{service}/{dead_letter_id}/replay", tags=["dead letters"], operation_id="replayDeadLetter")
async def replay_dead_letter(
    service: BackendService, dead_letter_id: DeadLetterId, clients: Clients, principal: Caller
) -> DeadLetter:
    """Republish the stored event to the consumer that gave up on it (same ce-id, so an event it
    did handle has no second effect) and mark the letter replayed; 409 when it was replayed
    before. A replay that fails again becomes a new letter."""
    reply = await records.change(
        "dead letter",
        str(dead_letter_id),
        clients.dead_letters[service].ReplayDeadLetter,
        admin_pb2.ReplayDeadLetterRequest(dead_letter_id=dead_letter_id),
    )
    return DeadLetter.of(reply.dead_letter)
