"""The support service in process against real PostgreSQL and NATS JetStream: the ticket
lifecycle, assignment, the SLA clock and its scan, surveys, policies and calendars, bad input."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import nats
import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from crm.support.v1 import events_pb2, support_pb2, support_pb2_grpc
from crm_kit.db import Database
from crm_kit.testing import eventually, field_violations, free_port, local_channel, reset_stream, running_service
from crm_support import scan
from crm_support.db import messaging, ticket_history, tickets
from crm_support.main import MIGRATIONS_DIR, SupportSettings, setup

pytestmark = pytest.mark.integration

ALL = support_pb2.TicketReach(all_tickets=True)
S = support_pb2


@dataclass
class Support:
    stub: support_pb2_grpc.SupportServiceStub
    nats_url: str
    database_url: str
    db: Database


@pytest.fixture
async def support(fresh_database, nats_server) -> AsyncIterator[Support]:
    await reset_stream(nats_server)
    port = free_port()
    database_url = await fresh_database("support")
    settings = SupportSettings(
        database_url=database_url,
        nats_url=nats_server,
        grpc_port=port,
        metrics_port=free_port(),
        sla_scan_interval_seconds=3600,
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup):
        ch = local_channel(port)
        db = Database(database_url, messaging, source="/crm/support-test", pool_size=2)
        stub = support_pb2_grpc.SupportServiceStub(ch)
        await stub.UpdateQueue(
            S.UpdateQueueRequest(
                queue_id="complaints",
                strategy=S.ASSIGNMENT_STRATEGY_LEAST_LOADED,
                member_ids=["agent-a", "agent-b"],
                team_id="team-service",
            )
        )
        await stub.UpdateQueue(
            S.UpdateQueueRequest(
                queue_id="general", strategy=S.ASSIGNMENT_STRATEGY_ROUND_ROBIN, member_ids=["agent-c", "agent-d"]
            )
        )
        yield Support(stub, nats_server, database_url, db)
        await db.dispose()
        await ch.close()


def complaint(**overrides: object) -> support_pb2.OpenTicketRequest:
    fields: dict[str, object] = {
        "customer_id": "cust-1",
        "order_id": "order-9",
        "kind": S.TICKET_KIND_COMPLAINT,
        "channel": S.TICKET_CHANNEL_PHONE,
        "priority": S.TICKET_PRIORITY_HIGH,
        "category_id": "product.delivery",
        "subject": "הספה הגיעה שבורה",
        "description": "הרגל השמאלית שבורה",
        "reach": ALL,
    }
    fields.update(overrides)
    return support_pb2.OpenTicketRequest(**fields)  # type: ignore[arg-type]


async def published(nats_url: str, subject: str) -> list[bytes]:
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe(subject, durable=f"test-{uuid.uuid4().hex[:8]}")
        data: list[bytes] = []
        while True:
            try:
                data += [m.data for m in await sub.fetch(100, timeout=0.5)]
            except (NatsTimeoutError, TimeoutError):
                return data
    finally:
        await nc.close()


def clock(ticket: support_pb2.Ticket, metric: int) -> support_pb2.SlaClock:
    (found,) = [c for c in ticket.sla if c.metric == metric]
    return found


async def backdate(database_url: str, ticket_id: str, delta: timedelta) -> None:
    """Move a ticket's past (creation and status history) back by delta, as if opened earlier."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(tickets)
                .where(tickets.c.id == ticket_id)
                .values(created_at=tickets.c.created_at - delta, sla_check_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            await conn.execute(
                update(ticket_history)
                .where(ticket_history.c.ticket_id == ticket_id)
                .values(at=ticket_history.c.at - delta)
            )
    finally:
        await engine.dispose()


async def test_a_complaint_is_routed_by_category_assigned_least_loaded_and_given_its_targets(support) -> None:
    first = (await support.stub.OpenTicket(complaint())).ticket
    second = (await support.stub.OpenTicket(complaint(customer_id="cust-2"))).ticket
    assert first.queue_id == "complaints" and first.queue_team_id == "team-service"
    assert {first.assignee_id, second.assignee_id} == {"agent-a", "agent-b"}  # least loaded spreads them
    assert second.number == first.number + 1
    assert first.status == S.TICKET_STATUS_NEW and first.sla_policy_version == 1 and first.calendar_code == "IL"
    targets = {c.metric: c.target_seconds for c in first.sla}
    assert targets == {S.SLA_METRIC_FIRST_RESPONSE: 3600, S.SLA_METRIC_RESOLUTION: 9 * 3600}
    # A VIP's delivery complaint of normal priority has the category's own first-response target.
    vip = (await support.stub.OpenTicket(complaint(priority=S.TICKET_PRIORITY_NORMAL, customer_tier="vip"))).ticket
    assert clock(vip, S.SLA_METRIC_FIRST_RESPONSE).target_seconds == 3600
    events = [
        events_pb2.TicketOpened.FromString(d) for d in await published(support.nats_url, "crm.support.ticket_opened")
    ]
    assert [(e.number, e.kind, e.customer_id) for e in events][:1] == [
        (first.number, S.TICKET_KIND_COMPLAINT, "cust-1")
    ]
    by_number = await support.stub.GetTicket(S.GetTicketRequest(number=first.number, reach=ALL))
    assert by_number.ticket.id == first.id


async def test_round_robin_takes_turns_and_a_repeated_request_opens_one_ticket(support) -> None:
    question = {"kind": S.TICKET_KIND_QUESTION, "category_id": "general", "order_id": ""}
    a = (await support.stub.OpenTicket(complaint(**question, request_id="req-1"))).ticket
    again = (await support.stub.OpenTicket(complaint(**question, request_id="req-1"))).ticket
    b = (await support.stub.OpenTicket(complaint(**question))).ticket
    c = (await support.stub.OpenTicket(complaint(**question))).ticket
    assert again.id == a.id
    assert [a.assignee_id, b.assignee_id, c.assignee_id] == ["agent-c", "agent-d", "agent-c"]


async def test_the_reach_hides_other_queues_tickets_as_not_found(support) -> None:
    ticket = (await support.stub.OpenTicket(complaint())).ticket
    member = S.TicketReach(agent_id="agent-a")
    outsider = S.TicketReach(agent_id="agent-c")
    manager = S.TicketReach(team_id="team-service")
    for reach in (member, manager, S.TicketReach(customer_id="cust-1")):
        assert (
            await support.stub.GetTicket(S.GetTicketRequest(ticket_id=ticket.id, reach=reach))
        ).ticket.id == ticket.id
    for reach in (outsider, S.TicketReach(), S.TicketReach(team_id="team-other")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await support.stub.GetTicket(S.GetTicketRequest(ticket_id=ticket.id, reach=reach))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        listed = await support.stub.ListTickets(S.ListTicketsRequest(reach=reach))
        assert ticket.id not in [t.id for t in listed.tickets]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await support.stub.AddTicketMessage(
            S.AddTicketMessageRequest(
                ticket_id=ticket.id, visibility=S.MESSAGE_VISIBILITY_PUBLIC_REPLY, body="שלום", reach=outsider
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_answered_paused_for_the_customer_resolved_and_surveyed(support) -> None:
    ticket = (await support.stub.OpenTicket(complaint())).ticket
    note = await support.stub.AddTicketMessage(
        S.AddTicketMessageRequest(
            ticket_id=ticket.id, visibility=S.MESSAGE_VISIBILITY_INTERNAL_NOTE, body="לבדוק מול המחסן", reach=ALL
        )
    )
    assert clock(note.ticket, S.SLA_METRIC_FIRST_RESPONSE).state != S.SLA_STATE_MET  # a note answers no one
    reply = await support.stub.AddTicketMessage(
        S.AddTicketMessageRequest(
            ticket_id=ticket.id, visibility=S.MESSAGE_VISIBILITY_PUBLIC_REPLY, body="נשלח טכנאי מחר", reach=ALL
        )
    )
    assert reply.ticket.status == S.TICKET_STATUS_OPEN
    assert clock(reply.ticket, S.SLA_METRIC_FIRST_RESPONSE).state == S.SLA_STATE_MET
    pending = await support.stub.ChangeTicketStatus(
        S.ChangeTicketStatusRequest(
            ticket_id=ticket.id, status=S.TICKET_STATUS_PENDING_CUSTOMER, etag=reply.ticket.etag, reach=ALL
        )
    )
    resolution = clock(pending.ticket, S.SLA_METRIC_RESOLUTION)
    assert resolution.state == S.SLA_STATE_PAUSED and resolution.paused_reason
    assert not resolution.HasField("due_time")
    # The customer calls back: the ticket is open again and the next response is due.
    back = await support.stub.AddTicketMessage(
        S.AddTicketMessageRequest(
            ticket_id=ticket.id, visibility=S.MESSAGE_VISIBILITY_CUSTOMER_MESSAGE, body="מתי?", reach=ALL
        )
    )
    assert back.ticket.status == S.TICKET_STATUS_OPEN
    assert clock(back.ticket, S.SLA_METRIC_NEXT_RESPONSE).state in (S.SLA_STATE_RUNNING, S.SLA_STATE_BREACHED)
    resolved = await support.stub.ChangeTicketStatus(
        S.ChangeTicketStatusRequest(ticket_id=ticket.id, status=S.TICKET_STATUS_RESOLVED, note="הוחלפה רגל", reach=ALL)
    )
    assert resolved.ticket.status == S.TICKET_STATUS_RESOLVED and resolved.ticket.HasField("resolve_time")
    events = [
        events_pb2.TicketResolved.FromString(d)
        for d in await eventually(lambda: published(support.nats_url, "crm.support.ticket_resolved"))
    ]
    (event,) = [e for e in events if e.ticket_id == ticket.id]
    assert event.survey_token and event.customer_id == "cust-1"
    answer = await support.stub.SubmitSurvey(S.SubmitSurveyRequest(token=event.survey_token, score=5))
    assert (answer.score, answer.ticket_number) == (5, ticket.number)
    corrected = await support.stub.SubmitSurvey(S.SubmitSurveyRequest(token=event.survey_token, score=4))
    assert corrected.score == 4
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await support.stub.SubmitSurvey(S.SubmitSurveyRequest(token="not-a-token", score=5))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await support.stub.SubmitSurvey(S.SubmitSurveyRequest(token=event.survey_token, score=9))
    assert "score" in field_violations(caught.value)
    report = await support.stub.GetSupportReport(S.GetSupportReportRequest(reach=ALL, group_by=S.REPORT_GROUPING_QUEUE))
    (row,) = [r for r in report.rows if r.key == "complaints"]
    assert (row.opened, row.resolved, row.survey_answers, row.csat_average) == (1, 1, 1, 4.0)
    first_response = next(a for a in row.sla if a.metric == S.SLA_METRIC_FIRST_RESPONSE)
    assert (first_response.met, first_response.breached, first_response.attainment) == (1, 0, 1.0)
    messages = await support.stub.ListTicketMessages(
        S.ListTicketMessagesRequest(ticket_id=ticket.id, public_only=True, reach=ALL)
    )
    assert [m.visibility for m in messages.messages] == [
        S.MESSAGE_VISIBILITY_PUBLIC_REPLY,
        S.MESSAGE_VISIBILITY_CUSTOMER_MESSAGE,
    ]


async def test_lifecycle_refusals_name_the_field_and_change_nothing(support) -> None:
    parent = (await support.stub.OpenTicket(complaint())).ticket
    child = (
        await support.stub.OpenTicket(
            complaint(kind=S.TICKET_KIND_TASK, parent_ticket_id=parent.id, subject="ביקור טכנאי")
        )
    ).ticket
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await support.stub.ChangeTicketStatus(
            S.ChangeTicketStatusRequest(ticket_id=parent.id, status=S.TICKET_STATUS_RESOLVED, reach=ALL)
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "status" in field_violations(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await support.stub.ChangeTicketStatus(
            S.ChangeTicketStatusRequest(ticket_id=child.id, status=S.TICKET_STATUS_CLOSED, reach=ALL)
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # closed only after resolved
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await support.stub.ChangeTicketStatus(
            S.ChangeTicketStatusRequest(ticket_id=child.id, status=S.TICKET_STATUS_RESOLVED, etag='"99"', reach=ALL)
        )
    assert caught.value.code() == grpc.StatusCode.ABORTED
    unchanged = (await support.stub.GetTicket(S.GetTicketRequest(ticket_id=parent.id, reach=ALL))).ticket
    assert unchanged.status == S.TICKET_STATUS_NEW and unchanged.open_child_count == 1
    for bad, fields in (
        (complaint(category_id="no.such"), {"category_id"}),
        (complaint(subject=" ", kind=0), {"subject", "kind"}),
        (complaint(kind=S.TICKET_KIND_TASK), {"parent_ticket_id"}),
        (complaint(assignee_id="agent-c"), {"assignee_id"}),
        (complaint(customer_tier="platinum"), {"customer_tier"}),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await support.stub.OpenTicket(bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert fields <= set(field_violations(caught.value)), bad
    listed = await support.stub.ListTickets(S.ListTicketsRequest(reach=ALL))
    assert len(listed.tickets) == 2


async def test_the_scan_warns_breaches_reassigns_and_escalates_once_per_level(support) -> None:
    ticket = (await support.stub.OpenTicket(complaint(priority=S.TICKET_PRIORITY_URGENT))).ticket
    first_agent = ticket.assignee_id
    await backdate(support.database_url, ticket.id, timedelta(days=20))
    looked, raised = await scan.scan(support.db)
    assert looked >= 1 and raised >= 1
    again = await scan.scan(support.db)
    assert again[1] == 0  # each level is announced once
    after = (await support.stub.GetTicket(S.GetTicketRequest(ticket_id=ticket.id, reach=ALL))).ticket
    assert clock(after, S.SLA_METRIC_RESOLUTION).state == S.SLA_STATE_BREACHED
    assert clock(after, S.SLA_METRIC_RESOLUTION).escalation_level == 3
    assert after.assignee_id != first_agent and after.assignee_id in {"agent-a", "agent-b"}
    events = [
        events_pb2.TicketSlaBreached.FromString(d)
        for d in await eventually(lambda: published(support.nats_url, "crm.support.ticket_sla_breached"))
    ]
    mine = [(e.metric, e.level) for e in events if e.ticket_id == ticket.id]
    assert sorted(mine) == [(S.SLA_METRIC_FIRST_RESPONSE, 3), (S.SLA_METRIC_RESOLUTION, 3)]
    assert any(e.reassigned_to == after.assignee_id for e in events if e.ticket_id == ticket.id)
    at_risk = await support.stub.ListTickets(S.ListTicketsRequest(reach=ALL, at_risk=True))
    assert [t.id for t in at_risk.tickets] == [ticket.id]


async def test_a_new_policy_version_leaves_past_tickets_their_targets(support) -> None:
    before = (await support.stub.OpenTicket(complaint())).ticket
    policy = (await support.stub.GetSlaPolicy(S.GetSlaPolicyRequest())).policy
    targets = [S.SlaTarget(metric=S.SLA_METRIC_FIRST_RESPONSE, priority=S.TICKET_PRIORITY_HIGH, target_minutes=15)]
    updated = await support.stub.UpdateSlaPolicy(
        S.UpdateSlaPolicyRequest(
            targets=targets, warn_before_minutes=5, escalate_after_minutes=60, based_on_version=policy.version
        )
    )
    assert updated.policy.version == policy.version + 1
    after = (await support.stub.OpenTicket(complaint(customer_id="cust-3"))).ticket
    assert {c.metric: c.target_seconds for c in after.sla} == {S.SLA_METRIC_FIRST_RESPONSE: 900}
    again = (await support.stub.GetTicket(S.GetTicketRequest(ticket_id=before.id, reach=ALL))).ticket
    assert clock(again, S.SLA_METRIC_FIRST_RESPONSE).target_seconds == 3600 and again.sla_policy_version == 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # edited from the old version: someone else won
        await support.stub.UpdateSlaPolicy(S.UpdateSlaPolicyRequest(targets=targets, based_on_version=policy.version))
    assert caught.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await support.stub.UpdateSlaPolicy(
            S.UpdateSlaPolicyRequest(
                targets=[
                    S.SlaTarget(
                        metric=S.SLA_METRIC_RESOLUTION,
                        priority=S.TICKET_PRIORITY_LOW,
                        category_id="nope",
                        target_minutes=0,
                    )
                ],
                based_on_version=updated.policy.version,
            )
        )
    assert {"targets[0].category_id", "targets[0].target_minutes"} <= set(field_violations(caught.value))


async def test_calendars_ship_for_israel_and_iran_and_refuse_overlapping_hours(support) -> None:
    found = {c.code: c for c in (await support.stub.ListCalendars(S.ListCalendarsRequest())).calendars}
    assert set(found) == {"IL", "IR"}
    assert found["IL"].time_zone == "Asia/Jerusalem" and found["IR"].time_zone == "Asia/Tehran"
    il_days = {d.weekday for d in found["IL"].weekly if d.windows}
    assert il_days == {"sunday", "monday", "tuesday", "wednesday", "thursday"}
    assert any(h.date == "2026-09-21" for h in found["IL"].holidays)  # Yom Kippur
    bad = S.Calendar(
        code="IL",
        name="ישראל",
        time_zone="Asia/Jerusalem",
        weekly=[
            S.CalendarDay(
                weekday="sunday",
                windows=[S.BusinessWindow(start="08:00", end="13:00"), S.BusinessWindow(start="12:00", end="17:00")],
            )
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await support.stub.PutCalendar(S.PutCalendarRequest(calendar=bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f.startswith("weekly.sunday") for f in field_violations(caught.value))
    split = S.Calendar(
        code="IL",
        name="ישראל",
        time_zone="Asia/Jerusalem",
        weekly=[
            S.CalendarDay(
                weekday=day,
                windows=[S.BusinessWindow(start="08:00", end="12:00"), S.BusinessWindow(start="13:00", end="17:00")],
            )
            for day in ("sunday", "monday", "tuesday", "wednesday", "thursday")
        ],
        holidays=list(found["IL"].holidays),
    )
    saved = (await support.stub.PutCalendar(S.PutCalendarRequest(calendar=split))).calendar
    assert [len(d.windows) for d in saved.weekly if d.weekday == "sunday"] == [2]


async def test_a_customer_writing_after_the_resolution_reopens_it_and_its_survey_link_expires(support) -> None:
    ticket = (await support.stub.OpenTicket(complaint())).ticket
    resolved = await support.stub.ChangeTicketStatus(
        S.ChangeTicketStatusRequest(ticket_id=ticket.id, status=S.TICKET_STATUS_RESOLVED, reach=ALL)
    )
    # Resolved without a reply: the resolution was the answer.
    assert clock(resolved.ticket, S.SLA_METRIC_FIRST_RESPONSE).state == S.SLA_STATE_MET
    events = [
        events_pb2.TicketResolved.FromString(d)
        for d in await eventually(lambda: published(support.nats_url, "crm.support.ticket_resolved"))
    ]
    (event,) = [e for e in events if e.ticket_id == ticket.id]
    again = await support.stub.AddTicketMessage(
        S.AddTicketMessageRequest(
            ticket_id=ticket.id, visibility=S.MESSAGE_VISIBILITY_CUSTOMER_MESSAGE, body="זה שוב נשבר", reach=ALL
        )
    )
    assert again.ticket.status == S.TICKET_STATUS_OPEN and not again.ticket.HasField("resolve_time")
    assert clock(again.ticket, S.SLA_METRIC_RESOLUTION).state in (S.SLA_STATE_RUNNING, S.SLA_STATE_BREACHED)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await support.stub.SubmitSurvey(S.SubmitSurveyRequest(token=event.survey_token, score=1))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_request_id_belongs_to_the_caller_who_sent_it(support) -> None:
    def as_(actor: str) -> tuple[tuple[str, str]]:
        return (("x-crm-actor", actor),)

    mine = (await support.stub.OpenTicket(complaint(request_id="r-1"), metadata=as_("agent-a"))).ticket
    again = (await support.stub.OpenTicket(complaint(request_id="r-1"), metadata=as_("agent-a"))).ticket
    theirs = (await support.stub.OpenTicket(complaint(request_id="r-1"), metadata=as_("agent-b"))).ticket
    assert again.id == mine.id and theirs.id != mine.id
    note = S.AddTicketMessageRequest(
        ticket_id=mine.id, visibility=S.MESSAGE_VISIBILITY_INTERNAL_NOTE, body="x", request_id="m-1", reach=ALL
    )
    first = await support.stub.AddTicketMessage(note, metadata=as_("agent-a"))
    repeat = await support.stub.AddTicketMessage(note, metadata=as_("agent-a"))
    assert repeat.message.id == first.message.id
    elsewhere = S.AddTicketMessageRequest(
        ticket_id=theirs.id, visibility=S.MESSAGE_VISIBILITY_INTERNAL_NOTE, body="y", request_id="m-1", reach=ALL
    )
    other = await support.stub.AddTicketMessage(elsewhere, metadata=as_("agent-a"))
    assert other.message.ticket_id == theirs.id and other.message.id != first.message.id


def test_a_clock_exactly_at_its_target_after_hours_is_checked_at_the_next_opening() -> None:
    from crm_support import clocks
    from crm_support.sla import clock as sla_clock
    from crm_support.sla.calendar import shipped_calendar

    cal = shipped_calendar("IL")
    friday_night = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)  # closed until Sunday 08:00 Asia/Jerusalem
    state = sla_clock.ClockState(
        elapsed_seconds=3600,
        target_seconds=3600,
        due_at=friday_night - timedelta(hours=5),
        state="running",
        paused_reason="",
        breached_at=None,
        remaining_seconds=0,
    )
    for level in (0, 1):
        check = clocks._next_check(cal, state, level, 1800, 3600, friday_night, met=False)
        assert check > friday_night
        assert check.astimezone(ZoneInfo("Asia/Jerusalem")).weekday() == 6  # Sunday's opening
