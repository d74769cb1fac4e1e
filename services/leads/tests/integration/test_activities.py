"""Activities and the speed-to-lead clock: the leads service in process against real PostgreSQL
and NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import nats
import pytest
from google.protobuf.duration_pb2 import Duration
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from crm.leads.v1 import activities_pb2, activities_pb2_grpc, events_pb2, leads_pb2, leads_pb2_grpc
from crm_kit.protoconv import to_timestamp
from crm_kit.service import Service
from crm_kit.testing import field_violations, local_channel
from crm_leads.activities import commands as activity_commands
from crm_leads.db import activities as activity_table
from crm_leads.db import leads as lead_table

pytestmark = pytest.mark.integration
ACTOR = (("x-crm-actor", "rep-dana"),)


@pytest.fixture
async def service(leads_server) -> AsyncIterator[Service]:
    async with leads_server(
        # The tests call the reminder job themselves.
        task_reminder_interval_seconds=3600,
    ) as running:
        yield running


@pytest.fixture
async def stubs(
    service: Service,
) -> AsyncIterator[tuple[leads_pb2_grpc.LeadsServiceStub, activities_pb2_grpc.ActivitiesServiceStub]]:
    ch = local_channel(service.settings.grpc_port)
    yield leads_pb2_grpc.LeadsServiceStub(ch), activities_pb2_grpc.ActivitiesServiceStub(ch)
    await ch.close()


async def new_lead(leads: leads_pb2_grpc.LeadsServiceStub, source: str = "radio") -> leads_pb2.Lead:
    phone = f"050-{uuid.uuid4().int % 10_000_000:07d}"
    reply = await leads.CaptureLead(
        leads_pb2.CaptureLeadRequest(full_name="דנה כהן", phone_number=phone, source=source, locale="he-IL")
    )
    return reply.lead


def call(lead_id: str, **extra: object) -> activities_pb2.LogActivityRequest:
    fields: dict[str, object] = {"outcome": activities_pb2.CALL_OUTCOME_ANSWERED, "subject": "שיחת היכרות", **extra}
    return activities_pb2.LogActivityRequest(lead_id=lead_id, kind=activities_pb2.ACTIVITY_KIND_CALL, **fields)  # type: ignore[arg-type]


def task(lead_id: str, due: datetime, remind: datetime | None = None, subject: str = "להתקשר שוב") -> object:
    return activities_pb2.LogActivityRequest(
        lead_id=lead_id,
        kind=activities_pb2.ACTIVITY_KIND_TASK,
        subject=subject,
        due_time=to_timestamp(due),
        remind_time=to_timestamp(remind),
    )


def first_response_count(source: str) -> float:
    return REGISTRY.get_sample_value("crm_lead_first_response_seconds_count", {"source": source}) or 0.0


async def test_the_first_call_stops_the_clock_once_and_is_measured_per_source(stubs) -> None:
    leads, acts = stubs
    lead = await new_lead(leads, source="exhibition")
    before = first_response_count("exhibition")

    note = await acts.LogActivity(
        activities_pb2.LogActivityRequest(lead_id=lead.id, kind=activities_pb2.ACTIVITY_KIND_NOTE, body="ביקש מחיר")
    )
    assert not note.activity.first_response
    assert not (await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=lead.id))).lead.HasField("first_response_time")

    first = await acts.LogActivity(call(lead.id, duration=Duration(seconds=95)), metadata=ACTOR)
    second = await acts.LogActivity(
        activities_pb2.LogActivityRequest(lead_id=lead.id, kind=activities_pb2.ACTIVITY_KIND_SMS, body="שלום")
    )

    assert first.activity.first_response and not second.activity.first_response
    assert first.activity.actor == "rep-dana" and first.activity.duration.seconds == 95
    assert first.activity.rep_id == lead.assignment.rep_id
    stopped = (await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=lead.id))).lead
    assert stopped.first_response_time == first.activity.occur_time
    assert first_response_count("exhibition") == before + 1


async def test_concurrent_responses_stop_the_clock_exactly_once(stubs) -> None:
    leads, acts = stubs
    lead = await new_lead(leads, source="press")
    before = first_response_count("press")
    replies = await asyncio.gather(*(acts.LogActivity(call(lead.id)) for _ in range(8)))
    assert sum(r.activity.first_response for r in replies) == 1
    assert first_response_count("press") == before + 1


async def test_a_back_dated_call_never_answers_before_the_capture(stubs) -> None:
    leads, acts = stubs
    lead = await new_lead(leads)
    long_ago = lead.create_time.ToDatetime(tzinfo=UTC) - timedelta(days=2)
    logged = await acts.LogActivity(call(lead.id, occur_time=to_timestamp(long_ago)))
    assert logged.activity.occur_time == to_timestamp(long_ago)
    stopped = (await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=lead.id))).lead
    assert stopped.first_response_time == lead.create_time


async def test_bad_input_names_every_bad_field_and_writes_nothing(stubs, service) -> None:
    leads, acts = stubs
    lead = await new_lead(leads)
    future = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(grpc.aio.AioRpcError) as note_with_call_fields:
        await acts.LogActivity(
            activities_pb2.LogActivityRequest(
                lead_id=lead.id,
                kind=activities_pb2.ACTIVITY_KIND_NOTE,
                body="x",
                outcome=activities_pb2.CALL_OUTCOME_BUSY,
                due_time=to_timestamp(future),
                occur_time=to_timestamp(future),
                subject="א" * 201,
            )
        )
    assert note_with_call_fields.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(note_with_call_fields.value)) == {"outcome", "due_time", "occur_time", "subject"}

    with pytest.raises(grpc.aio.AioRpcError) as unknown_kind:
        await acts.LogActivity(activities_pb2.LogActivityRequest(lead_id=lead.id, kind=99, outcome=42))
    assert set(field_violations(unknown_kind.value)) == {"kind", "outcome"}

    with pytest.raises(grpc.aio.AioRpcError) as call_without_outcome:
        await acts.LogActivity(
            activities_pb2.LogActivityRequest(lead_id=lead.id, kind=activities_pb2.ACTIVITY_KIND_CALL)
        )
    assert set(field_violations(call_without_outcome.value)) == {"outcome"}

    with pytest.raises(grpc.aio.AioRpcError) as meeting_backwards:
        now = datetime.now(UTC)
        await acts.LogActivity(
            activities_pb2.LogActivityRequest(
                lead_id=lead.id,
                kind=activities_pb2.ACTIVITY_KIND_MEETING,
                start_time=to_timestamp(now),
                end_time=to_timestamp(now - timedelta(minutes=1)),
            )
        )
    assert set(field_violations(meeting_backwards.value)) == {"end_time"}

    with pytest.raises(grpc.aio.AioRpcError) as both_targets:
        await acts.LogActivity(call(lead.id, deal_id="d-1"))
    assert set(field_violations(both_targets.value)) == {"lead_id"}

    with pytest.raises(grpc.aio.AioRpcError) as missing_lead:
        await acts.LogActivity(call("no-such-lead"))
    assert missing_lead.value.code() == grpc.StatusCode.NOT_FOUND

    async with service.db.unit_of_work() as uow:
        assert (await uow.conn.execute(select(activity_table))).all() == []
    assert not (await leads.GetLead(leads_pb2.GetLeadRequest(lead_id=lead.id))).lead.HasField("first_response_time")


async def test_a_repeated_request_id_returns_the_first_activity(stubs) -> None:
    leads, acts = stubs
    lead = await new_lead(leads)
    first, again = [await acts.LogActivity(call(lead.id, request_id="act-1")) for _ in range(2)]
    assert again.activity.id == first.activity.id
    listed = await acts.ListActivities(activities_pb2.ListActivitiesRequest(lead_id=lead.id))
    assert [a.id for a in listed.activities] == [first.activity.id]

    # The same request_id on another lead reveals nothing of the first one.
    other = await new_lead(leads)
    with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
        await acts.LogActivity(call(other.id, request_id="act-1"))
    assert elsewhere.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert first.activity.subject not in elsewhere.value.details()


async def test_deal_activities_keep_their_lead_and_list_newest_first_in_pages(stubs) -> None:
    leads, acts = stubs
    lead = await new_lead(leads)
    converted = await leads.ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=lead.id, title="ספה"))
    deal_id = converted.conversion.deal_id
    start = datetime.now(UTC) - timedelta(hours=5)
    on_lead = await acts.LogActivity(call(lead.id, occur_time=to_timestamp(start)))
    on_deal = []
    for i in range(3):
        reply = await acts.LogActivity(
            activities_pb2.LogActivityRequest(
                deal_id=deal_id,
                kind=activities_pb2.ACTIVITY_KIND_EMAIL,
                subject=f"הצעת מחיר {i}",
                occur_time=to_timestamp(start + timedelta(hours=i + 1)),
            )
        )
        assert reply.activity.lead_id == lead.id and reply.activity.deal_id == deal_id
        on_deal.append(reply.activity.id)

    async def pages(request: activities_pb2.ListActivitiesRequest) -> list[str]:
        seen: list[str] = []
        while True:
            page = await acts.ListActivities(request)
            seen += [a.id for a in page.activities]
            if not page.next_page_token:
                return seen
            request.page_token = page.next_page_token

    assert await pages(activities_pb2.ListActivitiesRequest(deal_id=deal_id, page_size=2)) == on_deal[::-1]
    everything = await pages(activities_pb2.ListActivitiesRequest(lead_id=lead.id, page_size=2))
    assert everything == [*on_deal[::-1], on_lead.activity.id]


async def test_tasks_list_by_due_time_and_complete_once(stubs) -> None:
    leads, acts = stubs
    lead = await new_lead(leads)
    now = datetime.now(UTC)
    later = await acts.LogActivity(task(lead.id, now + timedelta(days=2)))
    overdue = await acts.LogActivity(task(lead.id, now - timedelta(hours=1)))
    soon = await acts.LogActivity(task(lead.id, now + timedelta(hours=1)))
    a_call = await acts.LogActivity(call(lead.id))
    rep = lead.assignment.rep_id

    listed = await acts.ListTasks(activities_pb2.ListTasksRequest(rep_id=rep))
    mine = [t.id for t in listed.tasks if t.lead_id == lead.id]
    assert mine == [overdue.activity.id, soon.activity.id, later.activity.id]
    assert {t.rep_id for t in listed.tasks} == {rep}
    other_rep = await acts.ListTasks(activities_pb2.ListTasksRequest(rep_id="rep-nobody"))
    assert list(other_rep.tasks) == []

    done = await acts.CompleteTask(activities_pb2.CompleteTaskRequest(activity_id=overdue.activity.id))
    assert done.activity.HasField("complete_time")
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await acts.CompleteTask(activities_pb2.CompleteTaskRequest(activity_id=overdue.activity.id))
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as not_a_task:
        await acts.CompleteTask(activities_pb2.CompleteTaskRequest(activity_id=a_call.activity.id))
    assert not_a_task.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await acts.CompleteTask(activities_pb2.CompleteTaskRequest(activity_id="nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    still_open = await acts.ListTasks(activities_pb2.ListTasksRequest(rep_id=rep))
    assert [t.id for t in still_open.tasks if t.lead_id == lead.id] == [soon.activity.id, later.activity.id]


async def test_reminders_go_out_once_even_from_concurrent_runs(stubs, service, nats_server) -> None:
    leads, acts = stubs
    lead = await new_lead(leads)
    now = datetime.now(UTC)
    due = [
        await acts.LogActivity(task(lead.id, now + timedelta(hours=1), now - timedelta(minutes=i), f"משימה {i}"))
        for i in range(5)
    ]
    not_yet = await acts.LogActivity(task(lead.id, now + timedelta(hours=2), now + timedelta(hours=1)))
    done = await acts.LogActivity(task(lead.id, now + timedelta(hours=1), now - timedelta(minutes=9)))
    await acts.CompleteTask(activities_pb2.CompleteTaskRequest(activity_id=done.activity.id))

    sent = await asyncio.gather(*(activity_commands.send_due_reminders(service.db, batch=2) for _ in range(3)))
    assert sum(sent) == 5
    assert await activity_commands.send_due_reminders(service.db) == 0

    nc = await nats.connect(nats_server)
    try:
        sub = await nc.jetstream().pull_subscribe("crm.leads.task_reminder_due", durable="test-reminders")
        reminders: list[events_pb2.TaskReminderDue] = []
        # The outbox relay publishes them a moment apart; a fetch returns what is there already.
        while len(reminders) < len(due):
            msgs = await sub.fetch(len(due) - len(reminders), timeout=10)
            reminders += [events_pb2.TaskReminderDue.FromString(m.data) for m in msgs]
    finally:
        await nc.close()
    assert sorted(r.activity_id for r in reminders) == sorted(d.activity.id for d in due)
    assert {r.rep_id for r in reminders} == {lead.assignment.rep_id}
    listed = await acts.ListActivities(activities_pb2.ListActivitiesRequest(lead_id=lead.id, page_size=100))
    reminded = {a.id for a in listed.activities if a.HasField("remind_sent_time")}
    assert reminded == {d.activity.id for d in due}
    assert not_yet.activity.id not in reminded


async def test_activity_logged_is_published_with_who_did_what(stubs, nats_server) -> None:
    leads, acts = stubs
    lead = await new_lead(leads)
    logged = await acts.LogActivity(
        call(lead.id, outcome=activities_pb2.CALL_OUTCOME_NO_ANSWER, subject="", body="לא ענה, לנסות בערב"),
        metadata=ACTOR,
    )
    nc = await nats.connect(nats_server)
    try:
        sub = await nc.jetstream().pull_subscribe("crm.leads.activity_logged", durable="test-activities")
        [msg] = await sub.fetch(1, timeout=10)
    finally:
        await nc.close()
    event = events_pb2.ActivityLogged.FromString(msg.data)
    assert event.activity_id == logged.activity.id and event.lead_id == lead.id
    assert (event.kind, event.outcome, event.actor, event.actor_name) == ("call", "no_answer", "rep-dana", "דנה לוי")
    assert event.summary == "לא ענה, לנסות בערב"
    assert event.first_response


async def test_open_tasks_follow_their_lead_to_its_new_rep(stubs, service) -> None:
    leads, acts = stubs
    lead = await new_lead(leads)
    old_rep = lead.assignment.rep_id
    new_rep = "rep-moshe" if old_rep != "rep-moshe" else "rep-dana"
    logged = await acts.LogActivity(task(lead.id, datetime.now(UTC) + timedelta(hours=3)))
    assert logged.activity.rep_id == old_rep

    # The lead is reassigned (as routing does): the open task goes to the new rep's list.
    async with service.db.unit_of_work() as uow:
        await uow.conn.execute(update(lead_table).where(lead_table.c.id == lead.id).values(rep_id=new_rep))

    def ids(reply: activities_pb2.ListTasksResponse) -> list[str]:
        return [t.id for t in reply.tasks if t.lead_id == lead.id]

    assert ids(await acts.ListTasks(activities_pb2.ListTasksRequest(rep_id=old_rep))) == []
    moved = await acts.ListTasks(activities_pb2.ListTasksRequest(rep_id=new_rep))
    assert ids(moved) == [logged.activity.id]
    assert {t.rep_id for t in moved.tasks} == {new_rep}
    team = await acts.ListTasks(activities_pb2.ListTasksRequest(team_id=lead.assignment.team_id))
    assert logged.activity.id in ids(team)
