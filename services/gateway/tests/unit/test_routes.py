"""Happy paths through HTTP → gateway → gRPC → JSON, and what the gateway adds on the way."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import generate_latest

from crm.sales.v1 import deals_pb2
from crm_gateway.app import create_app
from crm_gateway.features.leads.schemas import CaptureAttached

from .conftest import bearer, running_gateway

pytestmark = pytest.mark.unit

LEAD = {"full_name": "דנה כהן", "phone_number": "050-1234567", "source": "radio", "campaign": "spring"}


async def test_capture_lead_returns_201_with_assignment(client: httpx.AsyncClient, backend) -> None:
    response = await client.post("/api/v1/leads", json=LEAD)

    assert response.status_code == 201
    assert response.json() == {
        "id": "lead-1",
        "full_name": "דנה כהן",
        "phone_number": "050-1234567",
        "email": "",
        "source": "radio",
        "campaign": "spring",
        "locale": "he-IL",
        "product_line": "",
        "status": "new",
        "assignment": {
            "rep_id": "rep-1",
            "rep_name": "Yossi",
            "team_id": "team-north",
            "rule_id": "rule-radio",
            "reason": "source=radio",
            "assign_time": "2023-11-14T22:13:21Z",
        },
        "deal_id": "",
        "create_time": "2023-11-14T22:13:20Z",
        "campaign_id": "",
        "city": "",
        "region": "",
        "first_response_due_time": None,
        "first_response_time": None,
        "sla_breached": False,
        "merged_into_lead_id": "",
        "missing_fields": [],
        "touch_count": 0,
        "escalated_to": "",
        "sla_reassign_count": 0,
        "sla_breach_time": None,
        "duplicate": False,
        "matched_on": "",
    }
    [sent] = backend.recorder.requests("CaptureLead")
    assert sent.locale == "he-IL"
    assert sent.request_id == ""


async def test_idempotency_key_becomes_request_id_unless_the_body_has_one(client: httpx.AsyncClient, backend) -> None:
    await client.post("/api/v1/leads", json=LEAD, headers={"Idempotency-Key": "key-1"})
    await client.post("/api/v1/leads", json={**LEAD, "request_id": "body-1"}, headers={"Idempotency-Key": "key-2"})

    assert [r.request_id for r in backend.recorder.requests("CaptureLead")] == ["key-1", "body-1"]


@pytest.mark.parametrize(
    ("role", "subject", "team_id"),
    [("sales_rep", "rep-9", "team-south"), ("sales_manager", "", "team-south"), ("marketing", "", "")],
    ids=["rep of another team", "manager of another team", "marketing"],
)
async def test_a_duplicate_of_a_lead_the_caller_may_not_read_answers_only_duplicate_true(
    backend, settings, issuer, role: str, subject: str, team_id: str
) -> None:
    headers = bearer(issuer, role, subject=subject, team_id=team_id)
    async with running_gateway(create_app(settings), headers) as http:
        response = await http.post("/api/v1/leads", json={**LEAD, "request_id": "dup-1"})

    # The person is lead-1 of rep-1 in team-north: nothing of it (id, owner, fields) comes back.
    assert response.status_code == 200
    assert response.json() == {"duplicate": True}
    [sent] = backend.recorder.requests("CaptureLead")
    # The leads service is told whose leads this caller reaches, so the touch fills none of lead-1.
    assert (sent.caller_reach.all_leads, sent.caller_reach.team_id, sent.caller_reach.rep_id) == (
        False,
        team_id if role == "sales_manager" else "",
        subject if role == "sales_rep" else "",
    )


@pytest.mark.parametrize(
    ("role", "subject", "team_id"),
    [("admin", "", ""), ("sales_rep", "rep-1", "team-north"), ("sales_manager", "", "team-north")],
    ids=["admin", "the lead's rep", "the lead's manager"],
)
async def test_a_duplicate_of_a_lead_the_caller_may_read_answers_the_lead(
    backend, settings, issuer, role: str, subject: str, team_id: str
) -> None:
    headers = bearer(issuer, role, subject=subject, team_id=team_id)
    async with running_gateway(create_app(settings), headers) as http:
        response = await http.post("/api/v1/leads", json={**LEAD, "request_id": "dup-2"})

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["duplicate"], body["matched_on"]) == ("lead-1", True, "phone_number")
    [sent] = backend.recorder.requests("CaptureLead")
    assert sent.caller_reach.all_leads == (role == "admin")


@pytest.mark.parametrize(
    ("role", "subject", "team_id", "sees_the_lead"),
    [
        ("marketing", "", "", False),
        ("sales_rep", "rep-9", "team-south", False),
        ("sales_rep", "rep-1", "team-north", True),
        ("admin", "", "", True),
    ],
    ids=["marketing", "rep of another team", "the lead's rep", "admin"],
)
async def test_a_repeated_request_id_shows_the_lead_as_it_is_now_only_to_who_may_read_it(
    backend, settings, issuer, role: str, subject: str, team_id: str, sees_the_lead: bool
) -> None:
    """Marketing captured lead-1 (its own request made it) and it went to rep-1; replaying the
    request id weeks later must not read the lead's status, owner or fields through the back door."""
    headers = bearer(issuer, role, subject=subject, team_id=team_id)
    async with running_gateway(create_app(settings), headers) as http:
        response = await http.post("/api/v1/leads", json={**LEAD, "request_id": "replay-1"})

    assert response.status_code == 201
    body = response.json()
    if sees_the_lead:
        assert (body["id"], body["assignment"]["rep_id"], body["duplicate"]) == ("lead-1", "rep-1", False)
    else:
        assert body == {"id": "lead-1", "duplicate": False, "replayed": True}


async def test_a_lead_with_an_e_mail_and_no_phone_reaches_the_leads_service(client: httpx.AsyncClient, backend) -> None:
    body = {"full_name": "Dana", "email": "dana@example.com", "source": "email"}

    response = await client.post("/api/v1/leads", json=body)

    assert response.status_code == 201, response.text
    [sent] = backend.recorder.requests("CaptureLead")
    assert (sent.phone_number, sent.email) == ("", "dana@example.com")


def test_the_openapi_schema_names_both_answers_of_a_duplicate(settings) -> None:
    schema = create_app(settings).openapi()
    answers = schema["paths"]["/api/v1/leads"]["post"]["responses"]
    duplicate = answers["200"]["content"]["application/json"]["schema"]
    assert {ref["$ref"].rsplit("/", 1)[-1] for ref in duplicate["anyOf"]} == {"CapturedLead", "CaptureAttached"}
    assert schema["components"]["schemas"]["CaptureAttached"]["properties"]["duplicate"]["const"] is True
    assert CaptureAttached().model_dump() == {"duplicate": True}


async def test_list_leads_passes_filters_and_clamps_page_size(client: httpx.AsyncClient, backend) -> None:
    response = await client.get(
        "/api/v1/leads", params={"source": "radio", "rep_id": "rep-1", "page_size": 5000, "page_token": "p1"}
    )

    assert response.status_code == 200
    body = response.json()
    assert [lead["id"] for lead in body["leads"]] == ["lead-1", "lead-2"]
    assert body["next_page_token"] == "p2"
    [sent] = backend.recorder.requests("ListLeads")
    assert (sent.source, sent.rep_id, sent.page_size, sent.page_token) == ("radio", "rep-1", 100, "p1")


async def test_close_deal_won_sends_items_and_returns_the_deal(client: httpx.AsyncClient, backend) -> None:
    item = {
        "sku": "SOFA-3",
        "description": "ספה",
        "quantity": 2,
        "unit_price": {"amount_minor": 349_900, "currency_code": "ILS"},
    }

    response = await client.post("/api/v1/deals/deal-1/close", json={"outcome": "won", "items": [item]})

    assert response.status_code == 200
    deal = response.json()
    assert deal["status"] == "won"
    assert deal["items"] == [item]
    assert deal["total"] == {"amount_minor": 699_800, "currency_code": "ILS"}
    assert deal["close_time"] == "2023-11-14T22:15:00Z"
    [sent] = backend.recorder.requests("CloseDeal")
    assert sent.outcome == deals_pb2.DEAL_OUTCOME_WON


async def test_ship_order_round_trips_the_delivery_date(client: httpx.AsyncClient, backend) -> None:
    response = await client.post(
        "/api/v1/orders/order-9/ship",
        json={
            "carrier": "Israel Post",
            "tracking_number": "RR123IL",
            "estimated_delivery_date": "2025-03-04",
        },
    )

    assert response.status_code == 200
    order = response.json()
    assert order["status"] == "shipped"
    assert order["total"] is None
    assert order["shipment"] == {
        "carrier": "Israel Post",
        "tracking_number": "RR123IL",
        "estimated_delivery_date": "2025-03-04",
        "ship_time": "2023-11-14T22:16:40Z",
    }
    [sent] = backend.recorder.requests("ShipOrder")
    date = sent.estimated_delivery_date
    assert (date.year, date.month, date.day) == (2025, 3, 4)


async def test_trace_context_reaches_the_backend(client: httpx.AsyncClient, backend) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"

    await client.get("/api/v1/leads/lead-1", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})

    [(_, _, metadata)] = backend.recorder.calls
    assert metadata["traceparent"].split("-")[1] == trace_id


async def test_one_server_span_per_request_named_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/me")  # the gateway fetches (and caches) the issuer's JWKS first
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = "0af7651916cd43dd8448eb211c80319c"

    await client.get("/api/v1/leads/lead-7", headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})

    servers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    exporter.shutdown()
    assert [s.name for s in servers] == ["GET /api/v1/leads/{lead_id}"]
    assert format(servers[0].context.trace_id, "032x") == trace_id
    assert servers[0].attributes["http.response.status_code"] == 200


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/leads/lead-42")
    await client.get("/no/such/route")

    text = generate_latest().decode()

    assert 'crm_http_requests_total{method="GET",route="/api/v1/leads/{lead_id}",status="200"}' in text
    assert 'crm_http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert 'crm_http_request_duration_seconds_count{method="GET",route="/api/v1/leads/{lead_id}"}' in text
    assert "lead-42" not in text


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    docs = await client.get("/docs")

    assert docs.status_code == 200
    assert {
        "/api/v1/leads",
        "/api/v1/leads/{lead_id}",
        "/api/v1/leads/{lead_id}/convert",
        "/api/v1/deals/{deal_id}",
        "/api/v1/deals/{deal_id}/close",
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/ship",
        "/api/v1/customers",
        "/api/v1/customers/{customer_id}",
        "/api/v1/customers/{customer_id}/timeline",
        "/api/v1/messages",
        "/api/v1/messages/{message_id}",
        "/api/v1/reports/sources",
        "/api/v1/sources",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])


async def test_convert_lead_with_and_without_a_body(client: httpx.AsyncClient, backend) -> None:
    titled = await client.post("/api/v1/leads/lead-1/convert", json={"title": "Sofa for Dana"})
    untitled = await client.post("/api/v1/leads/lead-2/convert")

    assert (titled.status_code, untitled.status_code) == (201, 201)
    assert titled.json()["status"] == "open"
    assert [(r.lead_id, r.title) for r in backend.recorder.requests("ConvertLead")] == [
        ("lead-1", "Sofa for Dana"),
        ("lead-2", ""),
    ]
    # Sales opens the deal leads' conversion named, with the lead's owner and attribution.
    opened = backend.recorder.requests("OpenDeal")
    assert [(r.deal_id, r.lead_id, r.owner_team_id, r.source) for r in opened] == [
        ("deal-1", "lead-1", "team-north", "radio"),
        ("deal-1", "lead-2", "team-north", "radio"),
    ]
    assert titled.json()["owner_team_id"] == "team-north"


async def test_converting_again_reads_the_deal_sales_has_and_opens_nothing(client, backend) -> None:
    first = await client.post("/api/v1/leads/lead-1/convert", json={"title": "Sofa"})
    again = await client.post("/api/v1/leads/lead-1/convert", json={"title": "Sofa"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"] == "deal-1"
    assert len(backend.recorder.requests("OpenDeal")) == 1
    assert [r.deal_id for r in backend.recorder.requests("GetDeal")] == ["deal-1"]


async def test_a_deal_from_before_the_sales_service_is_never_opened_anew(client, backend) -> None:
    """Until the upgrade's copy job ran, sales has no such deal; opening it would reopen a closed one."""
    response = await client.post("/api/v1/leads/legacy-7/convert")

    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert backend.recorder.requests("OpenDeal") == []


async def test_a_converted_leads_deal_the_caller_may_not_read_is_not_shown(backend, settings, issuer) -> None:
    """A merge can give a rep's lead another team's deal: converting it answers 404, as GET /deals does."""
    headers = bearer(issuer, "sales_rep", subject="rep-1", team_id="team-north")
    async with running_gateway(create_app(settings), headers) as http:
        response = await http.post("/api/v1/leads/taken-3/convert")

    assert response.status_code == 404
    assert "rep-9" not in response.text and "team-south" not in response.text


async def test_an_unexpected_error_is_a_logged_500_without_traceback(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get("/api/v1/orders/order-1")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "An internal error occurred."
    assert "Traceback" not in response.text
    [record] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.route == "/api/v1/orders/{order_id}"
    assert record.exc_info is not None
