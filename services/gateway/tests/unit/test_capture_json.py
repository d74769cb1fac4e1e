"""The capture route writes its own JSON (convert.model_json) instead of having FastAPI validate
and encode its response model: the bytes must be exactly those the response model gave."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, TypeAdapter

from crm.leads.v1 import leads_pb2
from crm_gateway.convert import message_to_dict, model_json, to_model
from crm_gateway.features.leads.schemas import CaptureAttached, CapturedLead, CaptureReplayed, RoutedLead

from .conftest import FakeLeads

pytestmark = pytest.mark.unit

LEAD = {"full_name": "דנה כהן", "phone_number": "050-1234567", "source": "radio", "campaign": "spring"}
# What FastAPI did with the route's response model: validate the returned model, then encode it.
CAPTURE_ANSWER = TypeAdapter(CapturedLead | CaptureAttached | CaptureReplayed)


def response_model_json(model: type[BaseModel], message: leads_pb2.Lead, **extra: Any) -> bytes:
    """The JSON the route answered before it wrote its own."""
    validated = model.model_validate({**message_to_dict(message), **extra})
    return CAPTURE_ANSWER.dump_json(CAPTURE_ANSWER.validate_python(validated))


def every_field() -> leads_pb2.Lead:
    """A lead with every field set: times with nanoseconds, words in Hebrew and Persian, a list."""
    return leads_pb2.Lead(
        id="lead-9",
        full_name="مریم احمدی",
        phone_number="+989121234567",
        email="maryam@example.ir",
        source="web",
        campaign="נובמבר",
        locale="fa-IR",
        status=leads_pb2.LEAD_STATUS_CONVERTED,
        assignment=leads_pb2.Assignment(
            rep_id="rep-2",
            rep_name="דנה",
            team_id="team-south",
            rule_id="rule-web",
            reason='source="web"\n',
            assign_time=Timestamp(seconds=1_700_000_001, nanos=123_456_789),
        ),
        deal_id="deal-4",
        create_time=Timestamp(seconds=1_700_000_000, nanos=1_000),
        product_line="sofas",
        campaign_id="camp-1",
        city="Tehran",
        region="Tehran",
        first_response_due_time=Timestamp(seconds=1_700_000_900),
        first_response_time=Timestamp(seconds=1_700_000_500, nanos=500_000_000),
        sla_breached=True,
        merged_into_lead_id="lead-1",
        missing_fields=["city", "email"],
        touch_count=3,
        escalated_to="manager-1",
        sla_reassign_count=2,
        # Not a field of CapturedLead: left out, as the response model left it out.
        routing_explanation=leads_pb2.RoutingExplanation(outcome="matched"),
        sla_breach_time=Timestamp(seconds=1_700_001_000),
    )


@pytest.mark.parametrize(
    "lead",
    [
        every_field(),
        FakeLeads.lead("lead-1"),
        leads_pb2.Lead(id="lead-2", full_name="A", email="a@b.co"),  # no assignment, no times
        leads_pb2.Lead(id="lead-3", assignment=leads_pb2.Assignment(rep_id="rep-1")),  # assigned, no time
        leads_pb2.Lead(id="lead-4", status=7),  # a status newer than these contracts
    ],
    ids=["every field", "assigned", "unassigned", "assignment without time", "unknown status"],
)
@pytest.mark.parametrize(
    "extra",
    [{"duplicate": False, "matched_on": ""}, {"duplicate": True, "matched_on": "phone_number"}],
    ids=["new", "duplicate"],
)
def test_model_json_is_what_the_response_model_gave(lead: leads_pb2.Lead, extra: dict[str, Any]) -> None:
    assert model_json(CapturedLead, lead, **extra) == response_model_json(CapturedLead, lead, **extra)


def test_model_json_reads_nested_messages_and_lists_of_them() -> None:
    routed = leads_pb2.Lead(
        id="lead-1",
        routing_explanation=leads_pb2.RoutingExplanation(
            outcome="matched",
            rules=[
                leads_pb2.RuleConsidered(
                    rule_id="r-1",
                    candidates=[leads_pb2.CandidateConsidered(rep_id="rep-1", open_leads=4, skip_reason="full")],
                )
            ],
        ),
    )

    assert model_json(RoutedLead, routed) == to_model(RoutedLead, routed).model_dump_json().encode()


def sent_lead(backend: Any) -> leads_pb2.Lead:
    """The lead the fake backend answered the capture with."""
    [request] = backend.recorder.requests("CaptureLead")
    return FakeLeads.lead("lead-1", request)


async def test_a_new_lead_is_answered_as_the_response_model_gave_it(client: httpx.AsyncClient, backend) -> None:
    response = await client.post("/api/v1/leads", json=LEAD)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.content == response_model_json(CapturedLead, sent_lead(backend), duplicate=False, matched_on="")


async def test_a_touch_is_answered_as_the_response_model_gave_it(client: httpx.AsyncClient, backend) -> None:
    response = await client.post("/api/v1/leads", json={**LEAD, "request_id": "dup-1"})

    assert response.status_code == 200
    expected = response_model_json(CapturedLead, FakeLeads.lead("lead-1"), duplicate=True, matched_on="phone_number")
    assert response.content == expected


async def test_a_replay_the_caller_may_read_is_answered_as_the_response_model_gave_it(
    client: httpx.AsyncClient, backend
) -> None:
    response = await client.post("/api/v1/leads", json={**LEAD, "request_id": "replay-1"})

    assert response.status_code == 201
    expected = response_model_json(CapturedLead, FakeLeads.lead("lead-1"), duplicate=False, matched_on="")
    assert response.content == expected


def test_the_answers_without_a_lead_are_the_response_models() -> None:
    assert CAPTURE_ANSWER.dump_json(CaptureAttached()) == b'{"duplicate":true}'
    assert CAPTURE_ANSWER.dump_json(CaptureReplayed(id="lead-1", duplicate=False)) == (
        b'{"id":"lead-1","duplicate":false,"replayed":true}'
    )
