"""Dead letters through the gateway, in front of fake DeadLetterServices (one per backend): the
named service's letters as JSON, a replay once and then 409, admins only, and the input limits."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from crm.admin.v1 import admin_pb2, admin_pb2_grpc
from crm_gateway.app import create_app
from crm_kit.dev_issuer import DevIssuer

from .conftest import running_gateway, timestamp

pytestmark = pytest.mark.unit

POISON = b"\xff\xff\xff not a protobuf"


class FakeDeadLetters(admin_pb2_grpc.DeadLetterServiceServicer):
    """One backend's letters (ids 1..3, newest last), replayable once; records what it was asked."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.address = ""  # where it is served, once it is
        self.calls: list[tuple[str, Any]] = []
        self.letters = {
            1: admin_pb2.DeadLetter(
                id=1, consumer=f"{service}-lead-captured", subject="crm.leads.lead_captured", payload=b"old"
            ),
            2: admin_pb2.DeadLetter(
                id=2,
                consumer=f"{service}-deal-closed",
                subject="crm.sales.deal_closed",
                event_id="ev-2",
                headers={"ce-id": "ev-2", "ce-type": "crm.sales.v1.DealClosed", "ce-source": "/test"},
                payload=POISON,
                error="DecodeError: Error parsing message",
                deliveries=1,
                create_time=timestamp(1_700_000_000),
            ),
            3: admin_pb2.DeadLetter(id=3, consumer=f"{service}-deal-closed", subject="x", payload=b""),
        }

    async def ListDeadLetters(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("ListDeadLetters", request))
        found = [
            letter
            for letter in sorted(self.letters.values(), key=lambda letter: -letter.id)
            if (not request.consumer or letter.consumer == request.consumer)
            and (request.include_replayed or not letter.HasField("replay_time"))
        ]
        return admin_pb2.ListDeadLettersResponse(dead_letters=found, next_page_token="next-after-1")

    async def GetDeadLetter(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("GetDeadLetter", request))
        if request.dead_letter_id not in self.letters:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"dead letter {request.dead_letter_id} not found")
        return admin_pb2.GetDeadLetterResponse(dead_letter=self.letters[request.dead_letter_id])

    async def ReplayDeadLetter(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(("ReplayDeadLetter", request))
        letter = self.letters.get(request.dead_letter_id)
        if letter is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"dead letter {request.dead_letter_id} not found")
        assert letter is not None
        if letter.HasField("replay_time"):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"dead letter {letter.id} was already replayed")
        letter.replay_time.CopyFrom(timestamp(1_700_000_600))
        return admin_pb2.ReplayDeadLetterResponse(dead_letter=letter)


async def serve(fake: FakeDeadLetters) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    admin_pb2_grpc.add_DeadLetterServiceServicer_to_server(fake, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, FakeDeadLetters]]:
    """The orders service's letters on one server, every other service's on another."""
    fakes = {"orders": FakeDeadLetters("orders"), "others": FakeDeadLetters("others")}
    servers = []
    for fake in fakes.values():
        server, fake.address = await serve(fake)
        servers.append(server)
    yield fakes
    for server in servers:
        await server.stop(None)


@pytest.fixture
async def call(
    backends: dict[str, FakeDeadLetters], settings_for: Callable[..., Any], issuer: DevIssuer
) -> AsyncIterator[Callable[..., Any]]:
    """call(method, path, role="admin", **httpx kwargs) against a gateway in front of the fakes."""
    settings = settings_for(backends["others"].address, orders_addr=backends["orders"].address)
    async with running_gateway(create_app(settings)) as http:

        async def send(method: str, path: str, role: str = "admin", **kw: Any) -> httpx.Response:
            headers = {"Authorization": f"Bearer {issuer.mint(f'{role}-user', [role])}"}
            return await http.request(method, path, headers=headers, **kw)

        yield send


async def test_an_admin_lists_the_named_services_letters_as_json(call, backends) -> None:
    response = await call(
        "GET",
        "/api/v1/dead-letters",
        params={"service": "orders", "consumer": " orders-deal-closed ", "page_size": 2, "page_token": "tok"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert [letter["id"] for letter in body["dead_letters"]] == [3, 2]
    assert body["next_page_token"] == "next-after-1"
    assert body["dead_letters"][1] == {
        "id": 2,
        "consumer": "orders-deal-closed",
        "subject": "crm.sales.deal_closed",
        "event_id": "ev-2",
        "event_type": "crm.sales.v1.DealClosed",
        "headers": {"ce-id": "ev-2", "ce-type": "crm.sales.v1.DealClosed", "ce-source": "/test"},
        "payload": base64.b64encode(POISON).decode(),
        "payload_size": len(POISON),
        "error": "DecodeError: Error parsing message",
        "deliveries": 1,
        "create_time": "2023-11-14T22:13:20Z",
        "replay_time": None,
    }
    # A letter without a ce-type header has no event type; an empty payload is "" of size 0.
    assert body["dead_letters"][0]["event_type"] == ""
    assert (body["dead_letters"][0]["payload"], body["dead_letters"][0]["payload_size"]) == ("", 0)
    [(method, sent)] = backends["orders"].calls
    assert method == "ListDeadLetters"
    assert (sent.consumer, sent.page_size, sent.page_token, sent.include_replayed) == (
        "orders-deal-closed",
        2,
        "tok",
        False,
    )
    assert backends["others"].calls == []


async def test_one_letter_is_read_by_service_and_id(call, backends) -> None:
    found = await call("GET", "/api/v1/dead-letters/orders/2")
    missing = await call("GET", "/api/v1/dead-letters/orders/99")

    assert found.status_code == 200 and found.json()["event_id"] == "ev-2"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "dead letter" in missing.json()["detail"]


async def test_a_letter_is_replayed_once_and_then_409(call, backends) -> None:
    first = await call("POST", "/api/v1/dead-letters/leads/2/replay")
    second = await call("POST", "/api/v1/dead-letters/leads/2/replay")
    listed = await call("GET", "/api/v1/dead-letters", params={"service": "leads", "include_replayed": "true"})
    hidden = await call("GET", "/api/v1/dead-letters", params={"service": "leads"})

    assert first.status_code == 200, first.text
    assert first.json()["replay_time"] == "2023-11-14T22:23:20Z"
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert "already replayed" in second.json()["detail"]
    assert 2 in [letter["id"] for letter in listed.json()["dead_letters"]]
    assert 2 not in [letter["id"] for letter in hidden.json()["dead_letters"]]
    # The replay went to the leads service's letters, not the orders service's.
    assert [m for m, _ in backends["others"].calls].count("ReplayDeadLetter") == 2
    assert backends["orders"].calls == []


async def test_replaying_an_unknown_letter_is_404(call) -> None:
    response = await call("POST", "/api/v1/dead-letters/sales/99/replay")

    assert response.status_code == 404


@pytest.mark.parametrize("role", ["sales_manager", "sales_rep", "orders_clerk", "service_agent", "marketing"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/dead-letters?service=orders"),
        ("GET", "/api/v1/dead-letters/orders/2"),
        ("POST", "/api/v1/dead-letters/orders/2/replay"),
    ],
)
async def test_only_admins_reach_dead_letters(call, backends, role: str, method: str, path: str) -> None:
    response = await call(method, path, role=role)

    assert response.status_code == 403
    assert backends["orders"].calls == []


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/v1/dead-letters", "service"),
        ("GET", "/api/v1/dead-letters?service=billing", "service"),
        ("GET", "/api/v1/dead-letters?service=orders&consumer=" + "c" * 101, "consumer"),
        ("GET", "/api/v1/dead-letters?service=orders&include_replayed=maybe", "include_replayed"),
        ("GET", "/api/v1/dead-letters/orders/0", "dead_letter_id"),
        ("GET", "/api/v1/dead-letters/orders/abc", "dead_letter_id"),
        ("GET", f"/api/v1/dead-letters/orders/{2**63}", "dead_letter_id"),
        ("POST", "/api/v1/dead-letters/billing/2/replay", "service"),
        ("POST", "/api/v1/dead-letters/orders/-1/replay", "dead_letter_id"),
    ],
)
async def test_bad_input_is_422_before_any_backend_call(call, backends, method: str, path: str, field: str) -> None:
    response = await call(method, path)

    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert backends["orders"].calls == [] and backends["others"].calls == []
