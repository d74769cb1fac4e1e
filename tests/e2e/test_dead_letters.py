"""Dead letters through the public API: a poison event published to NATS for the orders service
is listed by GET /dead-letters, read by id, replayed once (then 409), and, failing again on
replay, dead-lettered again as a new letter."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import nats
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e

POISON = b"\xff\xff\xff not a protobuf"


async def publish_poison(stack: Stack) -> str:
    """A DealClosed whose body is not protobuf (the orders service dead-letters it at once); its ce-id."""
    event_id = str(uuid.uuid4())
    nc = await nats.connect(stack.nats_url)
    try:
        await nc.jetstream().publish(
            "crm.sales.deal_closed",
            POISON,
            headers={
                "Nats-Msg-Id": event_id,
                "ce-id": event_id,
                "ce-type": "crm.sales.v1.DealClosed",
                "ce-source": "/e2e/dead-letters",
                "ce-specversion": "1.0",
            },
        )
    finally:
        await nc.close()
    return event_id


async def letters_of(api: httpx.AsyncClient, event_id: str, *, include_replayed: bool) -> list[dict[str, Any]]:
    params = {"service": "orders", "consumer": "orders-deal-closed", "include_replayed": include_replayed}
    found: list[dict[str, Any]] = []
    page_token = ""
    while True:
        response = await api.get("/api/v1/dead-letters", params={**params, "page_token": page_token})
        assert response.status_code == 200, response.text
        found += [letter for letter in response.json()["dead_letters"] if letter["event_id"] == event_id]
        page_token = response.json()["next_page_token"]
        if not page_token:
            return found


async def test_a_poison_event_is_listed_and_replayed_once(api: httpx.AsyncClient, stack: Stack) -> None:
    event_id = await publish_poison(stack)

    async def listed() -> list[dict[str, Any]] | None:
        return await letters_of(api, event_id, include_replayed=False) or None

    [letter] = await eventually(listed, timeout=30)
    assert letter["consumer"] == "orders-deal-closed"
    assert letter["subject"] == "crm.sales.deal_closed"
    assert letter["event_type"] == "crm.sales.v1.DealClosed"
    assert letter["headers"]["ce-source"] == "/e2e/dead-letters"
    assert base64.b64decode(letter["payload"]) == POISON and letter["payload_size"] == len(POISON)
    assert letter["error"] and letter["replay_time"] is None

    read = await api.get(f"/api/v1/dead-letters/orders/{letter['id']}")
    assert read.status_code == 200 and read.json() == letter

    replayed = await api.post(f"/api/v1/dead-letters/orders/{letter['id']}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["replay_time"] is not None

    again = await api.post(f"/api/v1/dead-letters/orders/{letter['id']}/replay")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "already replayed" in again.json()["detail"]

    # Still poison on replay: a new letter of the same event, while the replayed one is listed only
    # with include_replayed.
    async def dead_again() -> list[dict[str, Any]] | None:
        found = await letters_of(api, event_id, include_replayed=False)
        return found if found and found[0]["id"] != letter["id"] else None

    # The replay is retried with the consumer's backoff before it is dead-lettered again: seconds, more
    # on a loaded machine.
    [second] = await eventually(dead_again, timeout=90)
    assert second["id"] > letter["id"]
    everything = await letters_of(api, event_id, include_replayed=True)
    assert [found["id"] for found in everything] == [second["id"], letter["id"]]


async def test_an_unknown_letter_is_404_and_a_bad_service_422(api: httpx.AsyncClient) -> None:
    missing = await api.get(f"/api/v1/dead-letters/orders/{2**62}")
    replay_missing = await api.post(f"/api/v1/dead-letters/leads/{2**62}/replay")
    unknown_service = await api.get("/api/v1/dead-letters", params={"service": "billing"})

    assert (missing.status_code, replay_missing.status_code, unknown_service.status_code) == (404, 404, 422)
