"""The CSV upload route: streamed to ImportLeads in chunks, its own body cap instead of the global
one, its Idempotency-Key as the import's request_id, the caller forwarded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from crm.leads.v1 import imports_pb2, imports_pb2_grpc
from crm_gateway.app import create_app
from crm_kit.dev_issuer import DevIssuer

from .conftest import MAX_BODY_BYTES, bearer, running_gateway

pytestmark = pytest.mark.unit

IMPORT_CAP = 64 * 1024


@dataclass
class FakeImports(imports_pb2_grpc.LeadImportsServiceServicer):
    headers: list[imports_pb2.ImportLeadsHeader] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    # Answer after the header, reading no data (as for a repeated request_id).
    answer_early: bool = False

    async def ImportLeads(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        self.metadata.append({k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)})
        if self.answer_early:
            async for _ in request_iterator:  # as the leads service: read it all, then answer
                pass
            return imports_pb2.ImportLeadsResponse(lead_import=imports_pb2.LeadImport(id="the-first"))
        body = b""
        async for message in request_iterator:
            if message.HasField("header"):
                self.headers.append(message.header)
            elif message.HasField("trailer"):
                # As the leads service: only a stream that ends with the trailer is a whole file.
                assert message.trailer.size == len(body)
                self.bodies.append(body)
            else:
                body += message.data
        header = self.headers[-1]
        return imports_pb2.ImportLeadsResponse(
            lead_import=imports_pb2.LeadImport(
                id="imp-1",
                source=header.source,
                campaign=header.campaign,
                mode=header.mode,
                status=imports_pb2.LEAD_IMPORT_STATUS_IMPORTING,
                rows_read=body.count(b"\n") - 1,
            )
        )


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, FakeImports]]:
    servicer = FakeImports()
    server = grpc.aio.server()
    imports_pb2_grpc.add_LeadImportsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", servicer
    await server.stop(None)


@pytest.fixture
def app(fake: tuple[str, FakeImports], settings_for: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CRM_LEAD_IMPORT_MAX_BYTES", str(IMPORT_CAP))
    return create_app(settings_for(fake[0]))


def csv_of(rows: int) -> bytes:
    return ("full_name,phone_number\n" + "".join(f"דנה {i},050-{i:07d}\n" for i in range(rows))).encode()


async def test_a_file_over_the_global_cap_is_streamed_in_chunks(app: Any, fake: Any, issuer: DevIssuer) -> None:
    body = csv_of(2000)
    assert MAX_BODY_BYTES < len(body) < IMPORT_CAP
    headers = {**bearer(issuer, "marketing", subject="maya"), "Idempotency-Key": "upload-1", "X-Request-ID": "r-1"}
    async with running_gateway(app, headers) as http:
        response = await http.post(
            "/api/v1/lead-imports",
            params={"source": "radio", "campaign": "חורף", "mode": "skip_invalid"},
            content=body,
            headers={"Content-Type": "text/csv"},
        )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "importing" and response.json()["rows_read"] == 2000
    _, servicer = fake
    [header] = servicer.headers
    assert (header.source, header.campaign, header.request_id) == ("radio", "חורף", "upload-1")
    assert header.mode == imports_pb2.LEAD_IMPORT_MODE_SKIP_INVALID
    assert servicer.bodies == [body]
    assert servicer.metadata[0]["x-crm-actor"] == "maya" and servicer.metadata[0]["x-request-id"] == "r-1"


async def test_over_the_import_cap_is_413(app: Any, fake: Any, issuer: DevIssuer) -> None:
    body = csv_of(5000)
    assert len(body) > IMPORT_CAP

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    async with running_gateway(app, bearer(issuer)) as http:
        declared = await http.post(
            "/api/v1/lead-imports", params={"source": "radio"}, content=body, headers={"Content-Type": "text/csv"}
        )
        streamed = await http.post(
            "/api/v1/lead-imports", params={"source": "radio"}, content=chunked(), headers={"Content-Type": "text/csv"}
        )
    assert declared.status_code == 413, declared.text
    assert streamed.status_code == 413, streamed.text
    assert streamed.headers["content-type"] == "application/problem+json"
    assert fake[1].bodies == []  # the backend never completed an import of a truncated file


async def test_only_csv_bodies_and_only_import_roles(app: Any, issuer: DevIssuer) -> None:
    async with running_gateway(app, bearer(issuer)) as http:
        as_json = await http.post("/api/v1/lead-imports", params={"source": "radio"}, json={"x": 1})
        no_source = await http.post("/api/v1/lead-imports", content=b"x", headers={"Content-Type": "text/csv"})
    async with running_gateway(app, bearer(issuer, "sales_rep")) as http:
        rep = await http.post(
            "/api/v1/lead-imports", params={"source": "radio"}, content=b"x", headers={"Content-Type": "text/csv"}
        )
    assert as_json.status_code == 415
    assert no_source.status_code == 422
    assert rep.status_code == 403


async def test_an_answer_that_ignores_the_file_is_the_response(app: Any, fake: Any, issuer: DevIssuer) -> None:
    """The service may not need the file (a repeated Idempotency-Key): it reads the stream to its end
    and answers; that answer is the response."""
    fake[1].answer_early = True
    body = csv_of(1500)

    async def slowly() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    async with running_gateway(app, bearer(issuer)) as http:
        response = await http.post(
            "/api/v1/lead-imports", params={"source": "radio"}, content=slowly(), headers={"Content-Type": "text/csv"}
        )
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "the-first"
