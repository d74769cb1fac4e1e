"""A backend's gRPC status, with its google.rpc details, reaches the client as problem+json."""

from __future__ import annotations

from http import HTTPStatus

import grpc
import httpx
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from crm_gateway.app import create_app
from crm_gateway.platform.problems import GRPC_TO_HTTP

pytestmark = pytest.mark.unit

LEAD = {"full_name": "Dana Cohen", "phone_number": "050-1234567", "source": "radio"}
# A backend message a client must never see: it names an internal host.
INTERNAL_MESSAGE = "connection to postgres at 10.1.2.3:5432 refused"


def packed(
    message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest | error_details_pb2.RetryInfo,
) -> any_pb2.Any:
    value = any_pb2.Any()
    value.Pack(message)
    return value


def status(code: grpc.StatusCode, message: str, *details: any_pb2.Any) -> status_pb2.Status:
    return status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=list(details))


EXPECTED = [
    *sorted(((code, http) for code, http in GRPC_TO_HTTP.items()), key=lambda pair: pair[0].name),
    (grpc.StatusCode.INTERNAL, 500),
    (grpc.StatusCode.UNKNOWN, 500),
    (grpc.StatusCode.UNIMPLEMENTED, 500),
    (grpc.StatusCode.DATA_LOSS, 500),
]


def test_the_table_covers_the_codes_the_contract_names() -> None:
    assert {code.name: http for code, http in GRPC_TO_HTTP.items()} == {
        "INVALID_ARGUMENT": 422,
        "NOT_FOUND": 404,
        "FAILED_PRECONDITION": 409,
        "ALREADY_EXISTS": 409,
        "ABORTED": 409,
        "PERMISSION_DENIED": 403,
        "UNAUTHENTICATED": 401,
        "RESOURCE_EXHAUSTED": 429,
        "UNAVAILABLE": 503,
        "DEADLINE_EXCEEDED": 504,
    }


@pytest.mark.parametrize(("code", "http_status"), EXPECTED, ids=lambda v: getattr(v, "name", str(v)))
async def test_backend_status_maps_to_http(
    client: httpx.AsyncClient, backend, code: grpc.StatusCode, http_status: int
) -> None:
    message = INTERNAL_MESSAGE if http_status >= 500 else f"lead rejected ({code.name})"
    backend.recorder.fail_with = status(code, message)

    response = await client.post("/api/v1/leads", json=LEAD)

    assert response.status_code == http_status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == http_status
    assert body["type"] == "about:blank"
    assert body["title"]
    if http_status >= 500:
        assert "10.1.2.3" not in response.text
        assert "Traceback" not in response.text
    else:
        assert body["detail"] == message


async def test_invalid_argument_carries_field_violations_and_reason(client: httpx.AsyncClient, backend) -> None:
    backend.recorder.fail_with = status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "phone_number is not a valid phone number",
        packed(error_details_pb2.ErrorInfo(reason="PHONE_INVALID", domain="crm.leads")),
        packed(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field="phone_number", description="not an Israeli or Iranian number"
                    )
                ]
            )
        ),
    )

    response = await client.post("/api/v1/leads", json=LEAD)

    assert response.status_code == 422
    assert response.json() == {
        "type": "about:blank",
        "title": HTTPStatus(422).phrase,
        "status": 422,
        "detail": "phone_number is not a valid phone number",
        "errors": [{"field": "phone_number", "detail": "not an Israeli or Iranian number"}],
        "reason": "PHONE_INVALID",
    }


async def test_conflict_carries_the_error_info_reason(client: httpx.AsyncClient, backend) -> None:
    backend.recorder.fail_with = status(
        grpc.StatusCode.FAILED_PRECONDITION,
        "deal deal-7 is already closed",
        packed(error_details_pb2.ErrorInfo(reason="DEAL_ALREADY_CLOSED", domain="crm.leads")),
    )

    response = await client.post("/api/v1/deals/deal-7/close", json={"outcome": "lost", "lost_reason": "price"})

    assert response.status_code == 409
    body = response.json()
    assert body["reason"] == "DEAL_ALREADY_CLOSED"
    assert "errors" not in body


async def test_a_backend_at_its_limit_is_429_with_the_retry_after_it_asked_for(
    client: httpx.AsyncClient, backend
) -> None:
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromSeconds(5)
    backend.recorder.fail_with = status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "4 quote documents are being rendered; retry in a second",
        packed(error_details_pb2.ErrorInfo(reason="RENDER_BUSY", domain="crm.sales")),
        packed(retry),
    )

    response = await client.post("/api/v1/leads", json=LEAD)

    assert (response.status_code, response.headers["retry-after"]) == (429, "5")
    assert response.json()["reason"] == "RENDER_BUSY"

    # Without a RetryInfo a 429 still says when to come back.
    backend.recorder.fail_with = status(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
    response = await client.post("/api/v1/leads", json=LEAD)
    assert (response.status_code, response.headers["retry-after"]) == (429, "1")


async def test_reads_are_retried_when_the_backend_is_unavailable(client: httpx.AsyncClient, backend) -> None:
    backend.recorder.fail_with = status(grpc.StatusCode.UNAVAILABLE, INTERNAL_MESSAGE)

    response = await client.get("/api/v1/leads/lead-1")

    assert response.status_code == 503
    assert len(backend.recorder.requests("GetLead")) == 3


async def test_writes_are_not_retried(client: httpx.AsyncClient, backend) -> None:
    backend.recorder.fail_with = status(grpc.StatusCode.UNAVAILABLE, INTERNAL_MESSAGE)

    response = await client.post("/api/v1/leads", json=LEAD)

    assert response.status_code == 503
    assert len(backend.recorder.requests("CaptureLead")) == 1


async def test_unreachable_backend_is_503_without_its_address(backend, gateway, settings_for) -> None:
    app = create_app(settings_for(backend.address, customers_addr="127.0.0.1:1"))
    async with gateway(app) as http:
        response = await http.get("/api/v1/customers/cust-1")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "127.0.0.1" not in response.text
