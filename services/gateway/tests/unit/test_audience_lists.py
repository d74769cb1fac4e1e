"""The CSV audience-list upload route: its own body cap instead of the global one (declared or
streamed), the file passed whole to ImportAudienceList with its Idempotency-Key as request_id, only
text/csv, only marketing and admins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm_gateway.app import create_app
from crm_kit.dev_issuer import DevIssuer

from .conftest import MAX_BODY_BYTES, bearer, running_gateway

pytestmark = pytest.mark.unit

LIST_CAP = 32 * 1024


@dataclass
class FakeCustomers(customers_pb2_grpc.CustomersServiceServicer):
    requests: list[customers_pb2.ImportAudienceListRequest] = field(default_factory=list)
    # The deadline each call came with (seconds left when it arrived).
    time_left: list[float] = field(default_factory=list)

    async def ImportAudienceList(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.requests.append(request)
        self.time_left.append(context.time_remaining() or 0.0)
        lines = request.content.count(b"\n") - 1
        return customers_pb2.ImportAudienceListResponse(
            list=customers_pb2.AudienceList(id="list-1", name=request.name, members=lines, lines=lines)
        )


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, FakeCustomers]]:
    servicer = FakeCustomers()
    server = grpc.aio.server()
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", servicer
    await server.stop(None)


@pytest.fixture
def app(fake: tuple[str, FakeCustomers], settings_for: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CRM_AUDIENCE_LIST_MAX_BYTES", str(LIST_CAP))
    return create_app(settings_for(fake[0]))


def phones(lines: int) -> bytes:
    return ("phone_number\n" + "".join(f"050-{i:07d}\n" for i in range(lines))).encode()


CSV = {"Content-Type": "text/csv"}


async def test_a_list_over_the_global_cap_reaches_customers_whole(app: Any, fake: Any, issuer: DevIssuer) -> None:
    body = phones(1000)
    assert MAX_BODY_BYTES < len(body) < LIST_CAP
    headers = {**bearer(issuer, "marketing"), "Idempotency-Key": "list-upload-1"}
    async with running_gateway(app, headers) as http:
        response = await http.post("/api/v1/audience-lists", params={"name": "תערוכה"}, content=body, headers=CSV)
    assert response.status_code == 201, response.text
    assert response.json()["members"] == 1000
    [sent] = fake[1].requests
    assert (sent.name, sent.content, sent.request_id, sent.all_or_nothing) == ("תערוכה", body, "list-upload-1", False)


async def test_over_the_list_cap_is_413_declared_or_streamed(app: Any, fake: Any, issuer: DevIssuer) -> None:
    body = phones(3000)
    assert len(body) > LIST_CAP

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    async with running_gateway(app, bearer(issuer)) as http:
        declared = await http.post("/api/v1/audience-lists", params={"name": "x"}, content=body, headers=CSV)
        streamed = await http.post("/api/v1/audience-lists", params={"name": "x"}, content=chunked(), headers=CSV)
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert streamed.headers["content-type"] == "application/problem+json"
    assert fake[1].requests == []


async def test_only_csv_bodies_and_only_marketing_and_admins(app: Any, fake: Any, issuer: DevIssuer) -> None:
    async with running_gateway(app, bearer(issuer)) as http:
        as_json = await http.post("/api/v1/audience-lists", params={"name": "x"}, json={"x": 1})
        nameless = await http.post("/api/v1/audience-lists", content=b"email\n", headers=CSV)
    async with running_gateway(app, bearer(issuer, "sales_manager")) as http:
        manager = await http.post("/api/v1/audience-lists", params={"name": "x"}, content=b"email\n", headers=CSV)
    assert (as_json.status_code, nameless.status_code, manager.status_code) == (415, 422, 403)
    assert fake[1].requests == []


async def test_the_upload_has_its_own_time_budget_not_the_requests(
    fake: Any, settings_for: Callable[..., Any], issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long list takes longer than a request's budget: the call to customers gets the upload's."""
    monkeypatch.setenv("CRM_REQUEST_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("CRM_AUDIENCE_LIST_TIMEOUT_SECONDS", "60")
    async with running_gateway(create_app(settings_for(fake[0])), bearer(issuer)) as http:
        answer = await http.post("/api/v1/audience-lists", params={"name": "x"}, content=phones(3), headers=CSV)
    assert answer.status_code == 201, answer.text
    assert fake[1].time_left and fake[1].time_left[0] > 30  # the upload's 60 s, not the request's 2
