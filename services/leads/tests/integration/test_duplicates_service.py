"""Duplicates, touches, merges and incomplete records: the leads service against real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from crm.leads.v1 import duplicates_pb2, duplicates_pb2_grpc, leads_pb2, leads_pb2_grpc
from crm_kit import names
from crm_kit.service import Service
from crm_kit.testing import local_channel
from crm_leads.db import lead_touches, messaging
from crm_leads.db import leads as lead_table
from crm_leads.duplicates import queries as duplicate_queries

pytestmark = pytest.mark.integration


@pytest.fixture
async def stubs(
    service: Service,
) -> AsyncIterator[tuple[leads_pb2_grpc.LeadsServiceStub, duplicates_pb2_grpc.DuplicatesServiceStub]]:
    ch = local_channel(service.settings.grpc_port)
    yield leads_pb2_grpc.LeadsServiceStub(ch), duplicates_pb2_grpc.DuplicatesServiceStub(ch)
    await ch.close()


ADMIN = (("x-crm-actor", "admin"),)
ALL = leads_pb2.LeadReach(all_leads=True)


def as_actor(actor: str) -> tuple[tuple[str, str], ...]:
    return (("x-crm-actor", actor),)


def capture(
    name: str, phone: str = "", email: str = "", source: str = "radio", **kw: Any
) -> leads_pb2.CaptureLeadRequest:
    return leads_pb2.CaptureLeadRequest(full_name=name, phone_number=phone, email=email, source=source, **kw)


async def test_the_same_phone_in_another_format_is_a_touch_of_the_same_lead(stubs, service) -> None:
    leads, _ = stubs
    first = await leads.CaptureLead(capture("משה כהן", "050-123-4567", source="radio", request_id="t-1"))
    again = await leads.CaptureLead(
        capture(
            "Moshe Cohen",
            "+972 50 1234567",
            email="Moshe@Example.com",
            source="web_form",
            request_id="t-2",
            caller_reach=ALL,
        ),
        metadata=ADMIN,
    )
    third = await leads.CaptureLead(capture("מֹשֶׁה כֹּהֵן", "972501234567", source="tv"))
    assert not first.duplicate
    assert again.duplicate and again.matched_on == "phone_number"
    assert again.lead.id == third.lead.id == first.lead.id
    assert third.lead.touch_count == 3
    # survivorship: the admin's touch brought the e-mail the lead lacked; the name stays the first one
    assert third.lead.email == "moshe@example.com" and third.lead.full_name == "משה כהן"
    # e-mail case: a capture with only the e-mail, upper-cased, is the same person
    by_mail = await leads.CaptureLead(capture("M. Cohen", email=" MOSHE@example.COM ", source="email"))
    assert by_mail.duplicate and by_mail.matched_on == "email" and by_mail.lead.touch_count == 4

    replay = await leads.CaptureLead(
        capture("Moshe Cohen", "+972 50 1234567", source="web_form", request_id="t-2"), metadata=ADMIN
    )
    assert replay.duplicate and replay.matched_on == "phone_number" and replay.lead.id == first.lead.id
    assert replay.lead.touch_count == 4  # the replay added nothing
    listed = await leads.ListLeads(leads_pb2.ListLeadsRequest())
    assert [lead.id for lead in listed.leads] == [first.lead.id]
    async with service.db.unit_of_work() as uow:
        touches = (await uow.conn.execute(select(lead_touches).where(lead_touches.c.lead_id == first.lead.id))).all()
    assert sorted(t.source for t in touches) == ["email", "tv", "web_form"]


async def test_concurrent_captures_of_one_new_person_make_one_lead(stubs) -> None:
    leads, _ = stubs
    phone = f"052-{uuid.uuid4().int % 10_000_000:07d}"
    replies = await asyncio.gather(*(leads.CaptureLead(capture("דנה לוי", phone)) for _ in range(8)))
    assert len({r.lead.id for r in replies}) == 1
    assert sum(not r.duplicate for r in replies) == 1
    final = await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=replies[0].lead.id))
    assert final.lead.touch_count == 8


async def test_name_only_matches_create_a_lead_and_a_pair_to_review(stubs) -> None:
    leads, dups = stubs
    a = (await leads.CaptureLead(capture("علیرضا کریمی", "0912 345 6789", locale="fa-IR"))).lead
    b = (await leads.CaptureLead(capture("عليرضا كريمي", "0912 999 8877", locale="fa-IR"))).lead
    c = (await leads.CaptureLead(capture("Alireza Karimi", "0935 111 2233", locale="fa-IR"))).lead
    z1 = (await leads.CaptureLead(capture("محمد\u200cرضا احمدی", "0912 000 1111", locale="fa-IR"))).lead
    z2 = (await leads.CaptureLead(capture("محمد رضا احمدی", "0912 000 2222", locale="fa-IR"))).lead
    assert len({a.id, b.id, c.id}) == 3
    pairs = (await dups.ListPossibleDuplicates(duplicates_pb2.ListPossibleDuplicatesRequest())).possible_duplicates
    found = {(p.lead.id, p.other_lead.id): p for p in pairs}
    assert "same_name" in found[(b.id, a.id)].reasons and found[(b.id, a.id)].score == 80
    assert list(found[(c.id, a.id)].reasons) == ["similar_spelling"]
    assert "same_name_joined" in found[(z2.id, z1.id)].reasons
    assert all(p.status == duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_OPEN for p in pairs)

    dismissed = await dups.DismissPossibleDuplicate(
        duplicates_pb2.DismissPossibleDuplicateRequest(possible_duplicate_id=found[(c.id, a.id)].id)
    )
    assert dismissed.possible_duplicate.status == duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_DISMISSED
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await dups.DismissPossibleDuplicate(
            duplicates_pb2.DismissPossibleDuplicateRequest(possible_duplicate_id=found[(c.id, a.id)].id)
        )
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_merge_keeps_the_survivor_fills_it_and_leaves_a_tombstone(stubs) -> None:
    leads, dups = stubs
    survivor = (await leads.CaptureLead(capture("משה כהן", email="moshe@x.co.il", source="website"))).lead
    assert list(survivor.missing_fields) == ["phone_number"]
    incomplete = (await dups.ListIncompleteLeads(duplicates_pb2.ListIncompleteLeadsRequest())).leads
    assert [lead.id for lead in incomplete] == [survivor.id]
    duplicate = (await leads.CaptureLead(capture("Moshe Cohen", "050-765-4321", source="radio"))).lead
    await leads.CaptureLead(capture("Moshe Cohen", "0507654321", source="tv"))  # a touch of the duplicate
    deal_id = (
        await leads.ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=duplicate.id, title="ספה"))
    ).conversion.deal_id
    [pair] = (
        await dups.ListPossibleDuplicates(duplicates_pb2.ListPossibleDuplicatesRequest(lead_id=survivor.id))
    ).possible_duplicates

    merged = (
        await dups.MergeLeads(duplicates_pb2.MergeLeadsRequest(lead_id=survivor.id, duplicate_lead_id=duplicate.id))
    ).lead
    assert merged.id == survivor.id and merged.assignment.rep_id == survivor.assignment.rep_id
    assert merged.phone_number == "+972507654321" and merged.email == "moshe@x.co.il"
    assert list(merged.missing_fields) == [] and merged.touch_count == 3
    assert merged.deal_id == deal_id and merged.status == leads_pb2.LEAD_STATUS_CONVERTED
    assert merged.create_time.ToDatetime() <= duplicate.create_time.ToDatetime()
    tomb = (await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=duplicate.id))).lead
    assert tomb.merged_into_lead_id == survivor.id
    assert [lead.id for lead in (await leads.ListLeads(leads_pb2.ListLeadsRequest())).leads] == [survivor.id]
    assert not (await dups.ListIncompleteLeads(duplicates_pb2.ListIncompleteLeadsRequest())).leads
    got = await dups.GetPossibleDuplicate(duplicates_pb2.GetPossibleDuplicateRequest(possible_duplicate_id=pair.id))
    assert got.possible_duplicate.status == duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_MERGED
    # the merged person calling again lands on the survivor
    again = await leads.CaptureLead(capture("Moshe", "050-765-4321", source="radio"))
    assert again.duplicate and again.lead.id == survivor.id and again.lead.touch_count == 4

    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await dups.MergeLeads(duplicates_pb2.MergeLeadsRequest(lead_id=survivor.id, duplicate_lead_id=duplicate.id))
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_merge_refuses_two_deals_itself_and_unknown_leads(stubs) -> None:
    leads, dups = stubs
    a = (await leads.CaptureLead(capture("Noa Levi", "052-111-2233"))).lead
    b = (await leads.CaptureLead(capture("Noa Levi", "052-111-4455"))).lead
    for lead in (a, b):
        await leads.ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=lead.id))
    with pytest.raises(grpc.aio.AioRpcError) as both:
        await dups.MergeLeads(duplicates_pb2.MergeLeadsRequest(lead_id=a.id, duplicate_lead_id=b.id))
    assert both.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as itself:
        await dups.MergeLeads(duplicates_pb2.MergeLeadsRequest(lead_id=a.id, duplicate_lead_id=a.id))
    assert itself.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await dups.MergeLeads(duplicates_pb2.MergeLeadsRequest(lead_id=a.id, duplicate_lead_id="nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    # nothing changed
    assert (await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=b.id))).lead.merged_into_lead_id == ""


async def test_a_touch_by_the_leads_team_completes_an_incomplete_lead(stubs) -> None:
    leads, dups = stubs
    lead = (await leads.CaptureLead(capture("שרה אברהם", email="sara@example.com", source="web_form"))).lead
    assert list(lead.missing_fields) == ["phone_number"]
    team = leads_pb2.LeadReach(team_id=lead.assignment.team_id)
    touched = await leads.CaptureLead(
        capture("שרה אברהם", "054-222-3344", email="SARA@example.com", caller_reach=team), metadata=as_actor("manager")
    )
    assert touched.duplicate and touched.matched_on == "email"
    assert touched.lead.phone_number == "+972542223344" and list(touched.lead.missing_fields) == []
    assert not (await dups.ListIncompleteLeads(duplicates_pb2.ListIncompleteLeadsRequest())).leads


@pytest.mark.parametrize(
    "reach",
    [
        leads_pb2.LeadReach(team_id="team-of-others", rep_id="rep-of-others"),
        leads_pb2.LeadReach(),  # marketing, or a call that says nothing
    ],
    ids=["another team's rep or manager", "no reach"],
)
async def test_a_touch_from_outside_the_leads_reach_changes_nothing_on_it(stubs, service, reach) -> None:
    """Filling empty fields is changing the lead: only a caller who may change it does. Anyone else
    (and a web form) adds a touch and nothing else: no planted e-mail on someone else's lead."""
    leads, _ = stubs
    lead = (await leads.CaptureLead(capture("יעל כץ", "054-333-4455", source="radio"))).lead
    touched = await leads.CaptureLead(
        capture("Yael", "0543334455", email="attacker@example.com", city="אילת", caller_reach=reach),
        metadata=as_actor("mallory"),
    )
    assert touched.duplicate and touched.lead.id == lead.id and touched.lead.touch_count == 2
    assert (touched.lead.email, touched.lead.city) == ("", "")
    async with service.db.unit_of_work() as uow:
        [audited] = (
            await uow.conn.execute(
                select(messaging.audit_log.c.details).where(messaging.audit_log.c.action == "leads.AttachTouch")
            )
        ).all()
    assert audited.details["filled_fields"] == []


async def test_a_web_form_touch_changes_nothing_on_the_lead(stubs) -> None:
    leads, _ = stubs
    key = (
        await leads.CreateWebFormKey(leads_pb2.CreateWebFormKeyRequest(display_name="site", source="web_form"))
    ).secret
    lead = (await leads.CaptureLead(capture("נועה", "054-444-5566", source="radio"))).lead
    touched = await leads.CaptureLead(
        leads_pb2.CaptureLeadRequest(
            full_name="נועה", phone_number="054-444-5566", email="planted@example.com", web_form_key=key
        )
    )
    assert touched.duplicate and touched.lead.id == lead.id and touched.lead.email == ""


async def test_a_request_id_is_the_callers_own(stubs) -> None:
    """Another caller's equal request_id is another request: never an answer with the first
    caller's lead (the request id used to be company-wide, so anyone could read a lead with it)."""
    leads, _ = stubs
    alice = await leads.CaptureLead(
        capture("Alice's lead", "054-555-6677", request_id="same"), metadata=as_actor("alice")
    )
    bob = await leads.CaptureLead(capture("Bob's lead", "054-555-8899", request_id="same"), metadata=as_actor("bob"))
    assert not alice.duplicate and not bob.duplicate and bob.lead.id != alice.lead.id
    # Bob's replay is his own capture; Alice's is hers.
    bob_again = await leads.CaptureLead(
        capture("Bob's lead", "054-555-8899", request_id="same"), metadata=as_actor("bob")
    )
    alice_again = await leads.CaptureLead(
        capture("Alice's lead", "054-555-6677", request_id="same"), metadata=as_actor("alice")
    )
    assert (bob_again.lead.id, alice_again.lead.id) == (bob.lead.id, alice.lead.id)
    assert alice_again.lead.touch_count == 1  # a replay, no touch
    # Said so, for the gateway to show the lead as it is now only to who may read it.
    assert (alice.replayed, bob_again.replayed, alice_again.replayed) == (False, True, True)
    # Carol reusing Alice's request id with Alice's person: a touch of her own, not Alice's replay.
    carol = await leads.CaptureLead(capture("Alice", "054-555-6677", request_id="same"), metadata=as_actor("carol"))
    assert carol.duplicate and carol.lead.id == alice.lead.id and carol.lead.touch_count == 2


async def test_every_duplicate_lookup_is_served_by_an_index(service) -> None:
    """With sequential scans priced out, each lookup the capture and the lists make must still
    find an index: none of them walks the leads table as it grows toward a million rows."""
    queries = {
        "phone": duplicate_queries.contact_query("phone_number", "+972501234567"),
        "email": duplicate_queries.contact_query("email", "a@example.com"),
        "names": duplicate_queries.name_candidates_query("x", names.name_keys("משה כהן")),
        "incomplete": duplicate_queries.incomplete_query().order_by(lead_table.c.created_at.desc()).limit(50),
    }
    async with service.db.unit_of_work() as uow:
        await uow.conn.execute(text("SET LOCAL enable_seqscan = off"))
        for name, query in queries.items():
            assert query is not None
            compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
            plan = "\n".join(r[0] for r in await uow.conn.execute(text(f"EXPLAIN {compiled}")))
            assert "Seq Scan on leads" not in plan, (name, plan)
            assert "Index" in plan, (name, plan)


async def test_a_merge_moves_the_duplicates_open_review_pairs_to_the_survivor(stubs, service) -> None:
    leads, dups = stubs
    survivor = (await leads.CaptureLead(capture("דנה לוי", "052-111-2233"))).lead
    duplicate = (await leads.CaptureLead(capture("רחל אברהם", "052-444-5566"))).lead
    third = (await leads.CaptureLead(capture("רחל אברהם", "052-777-8899"))).lead  # a name pair with the duplicate
    [pair] = (
        await dups.ListPossibleDuplicates(duplicates_pb2.ListPossibleDuplicatesRequest(lead_id=third.id))
    ).possible_duplicates
    assert {pair.lead.id, pair.other_lead.id} == {duplicate.id, third.id}

    await dups.MergeLeads(duplicates_pb2.MergeLeadsRequest(lead_id=survivor.id, duplicate_lead_id=duplicate.id))

    settled = await dups.GetPossibleDuplicate(duplicates_pb2.GetPossibleDuplicateRequest(possible_duplicate_id=pair.id))
    assert settled.possible_duplicate.status == duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_MERGED
    [moved] = (
        await dups.ListPossibleDuplicates(duplicates_pb2.ListPossibleDuplicatesRequest(lead_id=third.id))
    ).possible_duplicates
    assert {moved.lead.id, moved.other_lead.id} == {survivor.id, third.id}
    assert moved.status == duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_OPEN
    assert list(moved.reasons) == list(pair.reasons) and moved.score == pair.score
