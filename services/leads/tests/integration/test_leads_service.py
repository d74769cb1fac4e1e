"""The leads service in process against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import nats
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import select, update

from crm.leads.v1 import campaigns_pb2, campaigns_pb2_grpc, events_pb2, leads_pb2, leads_pb2_grpc
from crm_kit.service import Service
from crm_kit.testing import local_channel
from crm_leads.db import campaigns, messaging, sources, web_form_keys
from crm_leads.db import leads as lead_table

pytestmark = pytest.mark.integration


@pytest.fixture
async def leads(service: Service) -> AsyncIterator[leads_pb2_grpc.LeadsServiceStub]:
    ch = local_channel(service.settings.grpc_port)
    yield leads_pb2_grpc.LeadsServiceStub(ch)
    await ch.close()


async def test_capture_routes_by_source_round_robin_and_publishes(leads, nats_server) -> None:
    first = (
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name="דנה כהן", phone_number="050-123-4567", source="radio", locale="he-IL", request_id="r-1"
            )
        )
    ).lead
    second = (
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name="علی رضایی", phone_number="0912 345 6789", source="tv", locale="fa-IR"
            )
        )
    ).lead
    assert first.phone_number == "+972501234567"
    assert second.phone_number == "+989123456789"
    assert first.assignment.rule_id == second.assignment.rule_id == "rule-broadcast"
    assert {first.assignment.rep_id, second.assignment.rep_id} == {"rep-dana", "rep-moshe"}

    again = (
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name="דנה כהן", phone_number="0501234567", source="radio", request_id="r-1"
            )
        )
    ).lead
    assert again.id == first.id

    nc = await nats.connect(nats_server)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe("crm.leads.>", durable="test-reader")
        msgs = await sub.fetch(4, timeout=10)
        kinds = [(m.subject, m.headers["ce-type"]) for m in msgs]
        assert kinds.count(("crm.leads.lead_captured", "crm.leads.v1.LeadCaptured")) == 2
        assert kinds.count(("crm.leads.lead_assigned", "crm.leads.v1.LeadAssigned")) == 2
        captured = events_pb2.LeadCaptured.FromString(msgs[0].data)
        assert captured.lead_id == first.id and msgs[0].headers["Nats-Msg-Id"] == msgs[0].headers["ce-id"]
    finally:
        await nc.close()


async def test_bad_input_is_invalid_argument_naming_the_field(leads) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad_phone:
        await leads.CaptureLead(leads_pb2.CaptureLeadRequest(full_name="x", phone_number="12", source="radio"))
    assert bad_phone.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "phone_number" in bad_phone.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as bad_source:
        await leads.CaptureLead(leads_pb2.CaptureLeadRequest(full_name="x", phone_number="0501234567", source="tiktok"))
    assert bad_source.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "radio" in bad_source.value.details()
    listed = await leads.ListLeads(leads_pb2.ListLeadsRequest())
    assert list(listed.leads) == []  # nothing half-written


async def test_convert_records_one_conversion_and_publishes_lead_converted(leads, nats_server) -> None:
    lead = (
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(full_name="Noa", phone_number="052-7654321", source="website")
        )
    ).lead
    converting = await leads.ConvertLead(
        leads_pb2.ConvertLeadRequest(lead_id=lead.id, title="Sofa"), metadata=(("x-crm-actor", "rep-x"),)
    )
    repeated = await leads.ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=lead.id, title="Other"))
    first, again = converting.conversion, repeated.conversion
    assert (converting.created, repeated.created) == (True, False)
    assert first == again and first.deal_id and first.title == "Sofa" and not first.legacy
    assert first.lead_since == first.convert_time
    assert (first.owner_rep_id, first.owner_team_id) == (lead.assignment.rep_id, lead.assignment.team_id)
    assert (first.source, first.lead_id) == ("website", lead.id)
    converted = (await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=lead.id))).lead
    assert converted.status == leads_pb2.LEAD_STATUS_CONVERTED and converted.deal_id == first.deal_id

    nc = await nats.connect(nats_server)
    try:
        sub = await nc.jetstream().pull_subscribe("crm.leads.lead_converted", durable="test-converted")
        [msg] = await sub.fetch(1, timeout=10)
        event = events_pb2.LeadConverted.FromString(msg.data)
        assert (event.deal_id, event.lead_id, event.title, event.owner_rep_id) == (
            first.deal_id,
            lead.id,
            "Sofa",
            lead.assignment.rep_id,
        )
        assert event.actor == "rep-x" and event.convert_time == first.convert_time
        with pytest.raises(nats.errors.TimeoutError):
            await sub.fetch(1, timeout=0.5)  # converting again published nothing
    finally:
        await nc.close()


async def test_list_leads_pages_with_a_cursor(leads) -> None:
    for i in range(5):
        await leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(full_name=f"Lead {i}", phone_number=f"050-000000{i}", source="press")
        )
    page1 = await leads.ListLeads(leads_pb2.ListLeadsRequest(page_size=3))
    page2 = await leads.ListLeads(leads_pb2.ListLeadsRequest(page_size=3, page_token=page1.next_page_token))
    assert len(page1.leads) == 3 and len(page2.leads) == 2 and page2.next_page_token == ""
    assert {x.full_name for x in [*page1.leads, *page2.leads]} == {f"Lead {i}" for i in range(5)}


async def test_round_robin_stays_even_under_concurrent_captures(leads) -> None:
    import asyncio
    from collections import Counter

    async def one(i: int) -> str:
        request = leads_pb2.CaptureLeadRequest(full_name=f"Lead {i}", phone_number=f"052-{i:07d}", source="radio")
        return (await leads.CaptureLead(request)).lead.assignment.rep_id

    reps = Counter(await asyncio.gather(*(one(i) for i in range(40))))
    assert reps == Counter({"rep-dana": 20, "rep-moshe": 20})


def error_details(err: grpc.aio.AioRpcError) -> tuple[str, list[str]]:
    """The ErrorInfo reason and the BadRequest field names of a failed call."""
    status = rpc_status.from_call(err)
    assert status is not None
    reason, fields = "", []
    for detail in status.details:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad):
            fields = [v.field for v in bad.field_violations]
    return reason, fields


async def audit_rows(service: Service, record_type: str) -> list[Any]:
    async with service.db.engine.connect() as conn:
        table = messaging.audit_log
        query = select(table).where(table.c.record_type == record_type).order_by(table.c.id)
        return list((await conn.execute(query)).all())


async def lead_rows(service: Service) -> list[Any]:
    async with service.db.engine.connect() as conn:
        return list((await conn.execute(select(lead_table))).all())


async def test_list_leads_by_team_combines_with_the_other_filters_and_pages(leads) -> None:
    captured = {}
    for i, source in enumerate(["radio", "website", "email", "tv", "web_form", "press"]):
        request = leads_pb2.CaptureLeadRequest(full_name=f"Lead {i}", phone_number=f"050-000000{i}", source=source)
        captured[source] = (await leads.CaptureLead(request)).lead
    digital = {captured[s].id for s in ("website", "email", "web_form")}

    pages, token = [], ""
    while True:
        page = await leads.ListLeads(leads_pb2.ListLeadsRequest(team_id="team-digital", page_size=2, page_token=token))
        pages.append([x.id for x in page.leads])
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [2, 1]
    assert {x for p in pages for x in p} == digital

    only_email = await leads.ListLeads(leads_pb2.ListLeadsRequest(team_id="team-digital", source="email"))
    assert [x.id for x in only_email.leads] == [captured["email"].id]
    rep = captured["website"].assignment.rep_id
    by_rep = await leads.ListLeads(leads_pb2.ListLeadsRequest(team_id="team-digital", rep_id=rep))
    reps_leads = await leads.ListLeads(leads_pb2.ListLeadsRequest(rep_id=rep))
    assert {x.id for x in by_rep.leads} == {x.id for x in reps_leads.leads}
    assert captured["website"].id in {x.id for x in by_rep.leads}
    assert all(x.assignment.rep_id == rep for x in by_rep.leads)
    wrong_team = await leads.ListLeads(leads_pb2.ListLeadsRequest(team_id="team-media", rep_id=rep))
    assert list(wrong_team.leads) == []
    media = await leads.ListLeads(leads_pb2.ListLeadsRequest(team_id="team-media"))
    assert {x.assignment.team_id for x in media.leads} == {"team-media"} and len(media.leads) == 3


async def test_conversions_carry_the_owner_team_and_are_audited(leads, service) -> None:
    lead = (
        await leads.CaptureLead(leads_pb2.CaptureLeadRequest(full_name="Noa", phone_number="052-7654321", source="tv"))
    ).lead
    converted = (await leads.ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=lead.id))).conversion
    assert converted.owner_team_id == "team-media" and converted.owner_rep_id == lead.assignment.rep_id
    assert converted.title == "Noa"  # no title: the lead's name

    captured, conversion = await audit_rows(service, "lead")
    assert (captured.action, captured.record_id) == ("leads.CaptureLead", lead.id)
    assert captured.details["source"] == "tv" and captured.details["rep_id"] == lead.assignment.rep_id
    assert "Noa" not in str(captured.details)  # no personal data in the audit log
    assert (conversion.action, conversion.record_id) == ("leads.ConvertLead", lead.id)
    assert conversion.details == {
        "deal_id": converted.deal_id,
        "owner_rep_id": lead.assignment.rep_id,
        "pipeline_id": "",
    }


async def create_campaign(service, source: str, name: str) -> str:
    """A catalogue campaign (captures and keys name existing campaigns only); returns its id."""
    ch = local_channel(service.settings.grpc_port)
    try:
        stub = campaigns_pb2_grpc.CampaignsServiceStub(ch)
        reply = await stub.CreateCampaign(campaigns_pb2.CreateCampaignRequest(source=source, name=name))
    finally:
        await ch.close()
    return reply.campaign.id


async def create_key(leads, **fields: str) -> leads_pb2.CreateWebFormKeyResponse:
    request = leads_pb2.CreateWebFormKeyRequest(**{"display_name": "Landing page", "source": "web_form", **fields})
    response: leads_pb2.CreateWebFormKeyResponse = await leads.CreateWebFormKey(request)
    return response


async def test_a_web_form_key_secret_is_shown_once_and_stored_hashed(leads, service) -> None:
    campaign_id = await create_campaign(service, "web_form", "spring-sale")
    created = await create_key(leads, campaign="spring-sale")
    key, secret = created.web_form_key, created.secret
    assert secret.startswith(f"wfk_{key.id}_") and key.secret_prefix == secret[:12]
    # The key keeps the campaign's id: renaming the campaign never breaks a published form.
    assert (key.display_name, key.source, key.campaign) == ("Landing page", "web_form", campaign_id)
    assert key.create_actor == "unknown"  # no caller context on this channel
    assert key.HasField("create_time") and not key.HasField("revoke_time")

    listed = await leads.ListWebFormKeys(leads_pb2.ListWebFormKeysRequest())
    assert [k.id for k in listed.web_form_keys] == [key.id]
    assert listed.web_form_keys[0].secret_prefix == key.secret_prefix
    assert secret.encode() not in listed.SerializeToString()

    async with service.db.engine.connect() as conn:
        stored = (await conn.execute(select(web_form_keys).where(web_form_keys.c.id == key.id))).one()
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(tuple(stored))

    [audited] = await audit_rows(service, "web_form_key")
    assert (audited.action, audited.record_id) == ("leads.CreateWebFormKey", key.id)
    assert audited.details["source"] == "web_form" and audited.details["secret_prefix"] == key.secret_prefix
    assert secret not in str(audited.details) and stored.secret_hash not in str(audited.details)


async def test_capture_with_a_key_takes_the_keys_source_and_campaign(leads, service) -> None:
    await create_campaign(service, "website", "spring-sale")
    created = await create_key(leads, source="website", campaign="spring-sale")
    request = leads_pb2.CaptureLeadRequest(
        full_name="Dana", phone_number="050-1234567", web_form_key=created.secret, request_id="form-1"
    )
    lead = (await leads.CaptureLead(request)).lead
    assert (lead.source, lead.campaign) == ("website", "spring-sale")
    assert lead.assignment.team_id == "team-digital"
    again = (await leads.CaptureLead(request)).lead
    assert again.id == lead.id  # request_id idempotency holds for keyed captures too
    [row] = await lead_rows(service)
    assert row.web_form_key_id == created.web_form_key.id
    [audited] = await audit_rows(service, "lead")
    assert audited.details["web_form_key_id"] == created.web_form_key.id

    # A web form cannot read another capture's lead by guessing its request_id: the key's request
    # ids are its own, so the same id is this form's own capture (here, Dana again: a touch).
    other = await leads.CaptureLead(
        leads_pb2.CaptureLeadRequest(full_name="Other", phone_number="050-7654321", source="radio", request_id="crm-1")
    )
    guessed = await leads.CaptureLead(
        leads_pb2.CaptureLeadRequest(
            full_name="Dana", phone_number="050-1234567", web_form_key=created.secret, request_id="crm-1"
        )
    )
    assert guessed.lead.id == lead.id != other.lead.id and guessed.duplicate


async def test_a_bad_key_is_permission_denied_and_writes_nothing(leads, service) -> None:
    created = await create_key(leads)
    key_id = created.web_form_key.id
    revoked = await create_key(leads, display_name="Old form")
    await leads.RevokeWebFormKey(leads_pb2.RevokeWebFormKeyRequest(web_form_key_id=revoked.web_form_key.id))

    bad_keys = {
        "malformed": "not-a-key",
        "unknown": f"wfk_{uuid.uuid4()}_{'A' * 43}",
        "wrong secret": f"wfk_{key_id}_{'A' * 43}",
        "revoked": revoked.secret,
    }
    for case, bad in bad_keys.items():
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await leads.CaptureLead(
                leads_pb2.CaptureLeadRequest(full_name="Dana", phone_number="050-1234567", web_form_key=bad)
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, case
        reason, _ = error_details(denied.value)
        assert reason == ("WEB_FORM_KEY_REVOKED" if case == "revoked" else "WEB_FORM_KEY_INVALID"), case
    assert await lead_rows(service) == []
    assert await audit_rows(service, "lead") == []

    # Before the revocation the same request_id was fine; once revoked, the key is refused at once.
    request = leads_pb2.CaptureLeadRequest(
        full_name="Dana", phone_number="050-1234567", web_form_key=created.secret, request_id="form-2"
    )
    await leads.CaptureLead(request)
    await leads.RevokeWebFormKey(leads_pb2.RevokeWebFormKeyRequest(web_form_key_id=key_id))
    with pytest.raises(grpc.aio.AioRpcError) as replay:
        await leads.CaptureLead(request)
    assert replay.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_keyed_capture_must_not_name_source_or_campaign(leads, service) -> None:
    created = await create_key(leads)
    for extra in ({"source": "radio"}, {"campaign": "x"}):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.CaptureLead(
                leads_pb2.CaptureLeadRequest(
                    full_name="Dana", phone_number="050-1234567", web_form_key=created.secret, **extra
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_details(err.value)[1] == list(extra)
    assert await lead_rows(service) == []


async def test_create_key_validates_its_fields(leads) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await create_key(leads, source="tiktok")
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(unknown.value) == ("UNKNOWN_SOURCE", ["source"])
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await create_key(leads, display_name="", campaign="c" * 101)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(error_details(missing.value)[1]) == ["campaign", "display_name"]
    assert list((await leads.ListWebFormKeys(leads_pb2.ListWebFormKeysRequest())).web_form_keys) == []


async def test_keys_list_newest_first_and_revoking_twice_fails(leads, service) -> None:
    ids = [(await create_key(leads, display_name=f"Form {i}")).web_form_key.id for i in range(5)]
    revoked = (await leads.RevokeWebFormKey(leads_pb2.RevokeWebFormKeyRequest(web_form_key_id=ids[1]))).web_form_key
    assert revoked.id == ids[1] and revoked.HasField("revoke_time")
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await leads.RevokeWebFormKey(leads_pb2.RevokeWebFormKeyRequest(web_form_key_id=ids[1]))
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await leads.RevokeWebFormKey(leads_pb2.RevokeWebFormKeyRequest(web_form_key_id=str(uuid.uuid4())))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    async def all_pages(include_revoked: bool) -> list[str]:
        seen, token = [], ""
        while True:
            page = await leads.ListWebFormKeys(
                leads_pb2.ListWebFormKeysRequest(page_size=2, page_token=token, include_revoked=include_revoked)
            )
            seen += [k.id for k in page.web_form_keys]
            if not (token := page.next_page_token):
                return seen

    newest_first = list(reversed(ids))
    assert await all_pages(include_revoked=True) == newest_first
    assert await all_pages(include_revoked=False) == [i for i in newest_first if i != ids[1]]
    actions = [(r.action, r.record_id) for r in await audit_rows(service, "web_form_key")]
    assert actions == [*(("leads.CreateWebFormKey", i) for i in ids), ("leads.RevokeWebFormKey", ids[1])]


async def test_the_callers_actor_creates_the_key_and_is_audited(leads, service) -> None:
    request = leads_pb2.CreateWebFormKeyRequest(display_name="Landing page", source="web_form")
    created = await leads.CreateWebFormKey(request, metadata=(("x-crm-actor", "user:alice"),))
    assert created.web_form_key.create_actor == "user:alice"
    [audited] = await audit_rows(service, "web_form_key")
    assert audited.actor == "user:alice"


async def test_verifying_a_key_answers_its_id_or_exactly_what_capture_answers(leads, service) -> None:
    """The gateway verifies a form's key before counting it against rate limits: a good key gives
    its id, a bad one the same refusal CaptureLead gives (nothing more is learned by asking)."""
    created = await create_key(leads)
    revoked = await create_key(leads, display_name="Old form")
    await leads.RevokeWebFormKey(leads_pb2.RevokeWebFormKeyRequest(web_form_key_id=revoked.web_form_key.id))

    verified = await leads.VerifyWebFormKey(leads_pb2.VerifyWebFormKeyRequest(web_form_key=created.secret))

    assert verified.web_form_key_id == created.web_form_key.id
    for bad in (
        "not-a-key",
        f"wfk_{uuid.uuid4()}_{'A' * 43}",
        f"wfk_{created.web_form_key.id}_{'A' * 43}",
        revoked.secret,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as asked:
            await leads.VerifyWebFormKey(leads_pb2.VerifyWebFormKeyRequest(web_form_key=bad))
        with pytest.raises(grpc.aio.AioRpcError) as captured:
            await leads.CaptureLead(
                leads_pb2.CaptureLeadRequest(full_name="Dana", phone_number="050-1234567", web_form_key=bad)
            )
        assert (asked.value.code(), asked.value.details()) == (captured.value.code(), captured.value.details())
        assert error_details(asked.value) == error_details(captured.value)
    assert await lead_rows(service) == []


async def test_a_source_or_campaign_changed_by_anyone_binds_the_next_capture(leads, service) -> None:
    """Captures keep the catalogue in process (crm_leads.config_cache): a change made outside the
    API (an operator's SQL) is seen by the very next capture all the same."""
    campaign_id = await create_campaign(service, "press", "weekend-edition")
    request = leads_pb2.CaptureLeadRequest(
        full_name="רונית שמש", phone_number="052-765-4321", source="press", campaign="weekend-edition"
    )
    assert (await leads.CaptureLead(request)).lead.campaign_id == campaign_id

    async with service.db.unit_of_work() as uow:
        await uow.conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(name="weekday-edition"))
    with pytest.raises(grpc.aio.AioRpcError) as renamed:
        await leads.CaptureLead(request)
    assert renamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(renamed.value)[0] == "UNKNOWN_CAMPAIGN"

    async with service.db.unit_of_work() as uow:
        await uow.conn.execute(update(sources).where(sources.c.code == "press").values(active=False))
    request.campaign = ""
    with pytest.raises(grpc.aio.AioRpcError) as inactive:
        await leads.CaptureLead(request)
    assert inactive.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(inactive.value)[0] == "UNKNOWN_SOURCE"
