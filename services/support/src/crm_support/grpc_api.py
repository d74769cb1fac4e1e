"""SupportService: proto ↔ application functions. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from crm.support.v1 import support_pb2, support_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, require
from crm_kit.etags import etag
from crm_kit.objectstore import ObjectStore
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_support import attachments, clocks, commands, domain, queries, report
from crm_support.proto_maps import ENUM_OF, VALUE_OF
from crm_support.sla.calendar import Calendar, calendar_from_dict, calendar_to_dict

MAX_REPORT_DAYS = 400


def reach_of(reach: support_pb2.TicketReach) -> queries.Reach:
    return queries.Reach(
        all_tickets=reach.all_tickets, agent_id=reach.agent_id, team_id=reach.team_id, customer_id=reach.customer_id
    )


def clock_to_proto(c: clocks.Clock) -> support_pb2.SlaClock:
    return support_pb2.SlaClock(
        metric=ENUM_OF["metric"][c.metric.value],
        state=ENUM_OF["sla_state"][c.state],
        target_seconds=c.target_seconds,
        elapsed_seconds=c.elapsed_seconds,
        due_time=to_timestamp(c.due_at) if c.due_at else None,
        met_time=to_timestamp(c.met_at) if c.met_at else None,
        breach_time=to_timestamp(c.breached_at) if c.breached_at else None,
        paused_reason=c.paused_reason,
        escalation_level=c.level,
    )


def ticket_to_proto(row: Any, found: list[clocks.Clock], open_children: int) -> support_pb2.Ticket:
    return support_pb2.Ticket(
        id=row.id,
        number=row.number,
        customer_id=row.customer_id,
        order_id=row.order_id,
        product_sku=row.product_sku,
        kind=ENUM_OF["kind"][row.kind],
        channel=ENUM_OF["channel"][row.channel],
        priority=ENUM_OF["priority"][row.priority],
        category_id=row.category_id,
        subject=row.subject,
        description=row.description,
        status=ENUM_OF["status"][row.status],
        queue_id=row.queue_id,
        queue_team_id=row.queue_team_id,
        assignee_id=row.assignee_id,
        parent_ticket_id=row.parent_ticket_id or "",
        customer_tier=row.customer_tier,
        sla_policy_version=row.sla_policy_version,
        calendar_code=row.calendar_code,
        sla=[clock_to_proto(c) for c in found],
        open_child_count=open_children,
        satisfaction_score=row.satisfaction_score,
        create_time=to_timestamp(row.created_at),
        update_time=to_timestamp(row.updated_at),
        resolve_time=to_timestamp(row.resolved_at) if row.resolved_at else None,
        row_version=row.row_version,
        created_by=row.created_by,
        etag=etag(row.row_version),
    )


async def tickets_to_proto(uow: Any, rows: list[Any]) -> list[support_pb2.Ticket]:
    """Tickets with their clocks as of now: one history and one children query for the page."""
    ids = [r.id for r in rows]
    found, children = await queries.histories(uow, ids), await queries.open_children(uow, ids)
    now = datetime.now(UTC)
    out = []
    for r in rows:
        cal = await clocks.calendar(uow, r.calendar_code)
        policy = await clocks.policy_version(uow, r.sla_policy_version)
        out.append(ticket_to_proto(r, clocks.ticket_clocks(r, found[r.id], cal, policy, now), children.get(r.id, 0)))
    return out


def message_to_proto(m: Any) -> support_pb2.TicketMessage:
    return support_pb2.TicketMessage(
        id=m.id,
        ticket_id=m.ticket_id,
        visibility=ENUM_OF["visibility"][m.visibility],
        body=m.body,
        author_id=m.author_id,
        author_name=m.author_name,
        create_time=to_timestamp(m.created_at),
    )


def attachment_to_proto(a: Any) -> support_pb2.TicketAttachment:
    return support_pb2.TicketAttachment(
        id=a.id,
        ticket_id=a.ticket_id,
        filename=a.filename,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        sha256=a.sha256,
        uploaded_by=a.uploaded_by,
        create_time=to_timestamp(a.created_at),
    )


def queue_to_proto(q: Any, load: dict[str, int]) -> support_pb2.Queue:
    return support_pb2.Queue(
        id=q.id,
        names=q.names,
        team_id=q.team_id,
        strategy=ENUM_OF["strategy"][q.strategy],
        member_ids=list(q.member_ids),
        calendar_code=q.calendar_code,
        open_by_member={m: load.get(m, 0) for m in q.member_ids},
    )


def policy_to_proto(p: Any) -> support_pb2.SlaPolicy:
    return support_pb2.SlaPolicy(
        version=p.version,
        targets=[
            support_pb2.SlaTarget(
                metric=ENUM_OF["metric"][t.metric.value],
                priority=ENUM_OF["priority"][t.priority.value],
                category_id=t.category_id,
                customer_tier=t.customer_tier,
                target_minutes=t.minutes,
            )
            for t in queries.targets_of(p)
        ],
        warn_before_minutes=p.warn_before_minutes,
        escalate_after_minutes=p.escalate_after_minutes,
        reassign_on_breach=p.reassign_on_breach,
        create_time=to_timestamp(p.created_at),
        created_by=p.created_by,
    )


def _windows(windows: Any) -> list[list[str]]:
    return [[w.start, w.end] for w in windows]


def calendar_to_proto(cal: Calendar) -> support_pb2.Calendar:
    body = calendar_to_dict(cal)
    return support_pb2.Calendar(
        code=body["code"],
        name=body["name"],
        time_zone=body["time_zone"],
        weekly=[
            support_pb2.CalendarDay(
                weekday=day, windows=[support_pb2.BusinessWindow(start=s, end=e) for s, e in windows]
            )
            for day, windows in body["weekly"].items()
        ],
        holidays=[
            support_pb2.Holiday(
                date=h["date"],
                name=h["name"],
                windows=[support_pb2.BusinessWindow(start=s, end=e) for s, e in h["windows"]],
            )
            for h in body["holidays"]
        ],
    )


def calendar_from_proto(c: support_pb2.Calendar) -> Calendar:
    """An administrator's calendar through the same validation as the shipped ones."""
    return calendar_from_dict(
        {
            "code": c.code,
            "name": c.name,
            "time_zone": c.time_zone,
            "weekly": {d.weekday: _windows(d.windows) for d in c.weekly},
            "holidays": [{"date": h.date, "name": h.name, "windows": _windows(h.windows)} for h in c.holidays],
        }
    )


def _report_row(row: report.Row) -> support_pb2.SupportReportRow:
    average, satisfied = report.csat(row)
    return support_pb2.SupportReportRow(
        key=row.key,
        opened=row.opened,
        resolved=row.resolved,
        backlog=row.backlog,
        sla=[
            support_pb2.SlaAttainment(
                metric=ENUM_OF["metric"][m.value],
                met=row.met[m.value],
                breached=row.breached[m.value],
                attainment=report.attainment(row, m.value),
            )
            for m in domain.Metric
        ],
        survey_answers=len(row.scores),
        csat_average=average,
        csat_satisfied=satisfied,
    )


class SupportServicer(support_pb2_grpc.SupportServiceServicer):
    def __init__(self, db: Database, store: ObjectStore | None = None) -> None:
        self.db = db
        # Where attachments' bytes go; None when the service has no object store configured.
        self.store = store

    async def OpenTicket(
        self, request: support_pb2.OpenTicketRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.OpenTicketResponse:
        new = domain.new_ticket(
            customer_id=request.customer_id,
            order_id=request.order_id,
            product_sku=request.product_sku,
            kind=VALUE_OF["kind"].get(request.kind, ""),
            channel=VALUE_OF["channel"].get(request.channel, ""),
            priority=VALUE_OF["priority"].get(request.priority, ""),
            category_id=request.category_id,
            subject=request.subject,
            description=request.description,
            parent_ticket_id=request.parent_ticket_id,
            customer_tier=request.customer_tier,
            assignee_id=request.assignee_id,
        )
        async with self.db.unit_of_work() as uow:
            row = await commands.open_ticket(uow, new, reach_of(request.reach), request.request_id)
            (ticket,) = await tickets_to_proto(uow, [row])
        return support_pb2.OpenTicketResponse(ticket=ticket)

    async def GetTicket(
        self, request: support_pb2.GetTicketRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.GetTicketResponse:
        if not request.ticket_id and request.number <= 0:
            raise InvalidArgument("give ticket_id or number", field_violations=[("ticket_id", "is required")])
        async with self.db.unit_of_work() as uow:
            row = await queries.ticket(uow, reach_of(request.reach), ticket_id=request.ticket_id, number=request.number)
            (ticket,) = await tickets_to_proto(uow, [row])
        return support_pb2.GetTicketResponse(ticket=ticket)

    async def ListTickets(
        self, request: support_pb2.ListTicketsRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.ListTicketsResponse:
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_tickets(
                uow,
                reach_of(request.reach),
                limit=page_size(request.page_size),
                after=page_position(request.page_token, datetime.fromisoformat, str),
                statuses=[VALUE_OF["status"][s] for s in request.statuses if s in VALUE_OF["status"]],
                queue_id=request.queue_id,
                assignee_id=request.assignee_id,
                customer_id=request.customer_id,
                priority=VALUE_OF["priority"].get(request.priority, ""),
                at_risk=request.at_risk,
            )
            found = await tickets_to_proto(uow, rows)
        return support_pb2.ListTicketsResponse(
            tickets=found, next_page_token=encode_page_token(*next_key) if next_key else ""
        )

    async def AddTicketMessage(
        self, request: support_pb2.AddTicketMessageRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.AddTicketMessageResponse:
        require({"ticket_id": request.ticket_id})
        visibility, body = domain.validate_message(VALUE_OF["visibility"].get(request.visibility, ""), request.body)
        async with self.db.unit_of_work() as uow:
            message, row = await commands.add_message(
                uow,
                request.ticket_id,
                reach_of(request.reach),
                visibility,
                body,
                request.author_name,
                request.request_id,
            )
            (ticket,) = await tickets_to_proto(uow, [row])
        return support_pb2.AddTicketMessageResponse(message=message_to_proto(message), ticket=ticket)

    async def ListTicketMessages(
        self, request: support_pb2.ListTicketMessagesRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.ListTicketMessagesResponse:
        require({"ticket_id": request.ticket_id})
        async with self.db.unit_of_work() as uow:
            await queries.ticket(uow, reach_of(request.reach), ticket_id=request.ticket_id)
            found = await queries.messages(uow, request.ticket_id, public_only=request.public_only)
        return support_pb2.ListTicketMessagesResponse(messages=[message_to_proto(m) for m in found])

    async def AddTicketAttachment(
        self, request: support_pb2.AddTicketAttachmentRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.AddTicketAttachmentResponse:
        require({"ticket_id": request.ticket_id})
        new = domain.validate_attachment(request.filename, request.content_type, len(request.data))
        row = await attachments.add(self.db, self.store, request.ticket_id, reach_of(request.reach), new, request.data)
        return support_pb2.AddTicketAttachmentResponse(attachment=attachment_to_proto(row))

    async def ListTicketAttachments(
        self, request: support_pb2.ListTicketAttachmentsRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.ListTicketAttachmentsResponse:
        require({"ticket_id": request.ticket_id})
        rows = await attachments.listed(self.db, request.ticket_id, reach_of(request.reach))
        return support_pb2.ListTicketAttachmentsResponse(attachments=[attachment_to_proto(r) for r in rows])

    async def GetTicketAttachment(
        self, request: support_pb2.GetTicketAttachmentRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.GetTicketAttachmentResponse:
        require({"ticket_id": request.ticket_id, "attachment_id": request.attachment_id})
        row, data = await attachments.fetched(
            self.db, self.store, request.ticket_id, request.attachment_id, reach_of(request.reach)
        )
        return support_pb2.GetTicketAttachmentResponse(attachment=attachment_to_proto(row), data=data)

    async def ChangeTicketStatus(
        self, request: support_pb2.ChangeTicketStatusRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.ChangeTicketStatusResponse:
        require({"ticket_id": request.ticket_id})
        wanted = VALUE_OF["status"].get(request.status, "")
        if not wanted:
            raise InvalidArgument("status is required", field_violations=[("status", "is required")])
        if len(request.note) > domain.MAX_NOTE:
            raise InvalidArgument("note is too long", field_violations=[("note", f"at most {domain.MAX_NOTE}")])
        async with self.db.unit_of_work() as uow:
            row = await commands.change_status(
                uow,
                request.ticket_id,
                reach_of(request.reach),
                domain.Status(wanted),
                request.note.strip(),
                request.etag,
            )
            (ticket,) = await tickets_to_proto(uow, [row])
        return support_pb2.ChangeTicketStatusResponse(ticket=ticket)

    async def AssignTicket(
        self, request: support_pb2.AssignTicketRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.AssignTicketResponse:
        require({"ticket_id": request.ticket_id})
        async with self.db.unit_of_work() as uow:
            row = await commands.assign(
                uow,
                request.ticket_id,
                reach_of(request.reach),
                request.queue_id,
                request.assignee_id,
                request.etag,
            )
            (ticket,) = await tickets_to_proto(uow, [row])
        return support_pb2.AssignTicketResponse(ticket=ticket)

    async def ListCategories(
        self, request: support_pb2.ListCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.ListCategoriesResponse:
        async with self.db.unit_of_work() as uow:
            rows = await queries.category_rows(uow)
        return support_pb2.ListCategoriesResponse(
            categories=[
                support_pb2.Category(id=r.id, parent_id=r.parent_id or "", names=r.names, queue_id=r.queue_id)
                for r in rows
            ]
        )

    async def ListQueues(
        self, request: support_pb2.ListQueuesRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.ListQueuesResponse:
        async with self.db.unit_of_work() as uow:
            rows, load = await queries.queue_rows(uow), await queries.open_by_member(uow)
        return support_pb2.ListQueuesResponse(queues=[queue_to_proto(q, load) for q in rows])

    async def UpdateQueue(
        self, request: support_pb2.UpdateQueueRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.UpdateQueueResponse:
        require({"queue_id": request.queue_id})
        async with self.db.unit_of_work() as uow:
            row = await commands.update_queue(
                uow,
                request.queue_id,
                VALUE_OF["strategy"].get(request.strategy, ""),
                list(request.member_ids),
                request.team_id,
                request.calendar_code,
            )
            load = await queries.open_by_member(uow, row.id)
        return support_pb2.UpdateQueueResponse(queue=queue_to_proto(row, load))

    async def GetSlaPolicy(
        self, request: support_pb2.GetSlaPolicyRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.GetSlaPolicyResponse:
        async with self.db.unit_of_work() as uow:
            row = await queries.policy(uow, request.version)
        return support_pb2.GetSlaPolicyResponse(policy=policy_to_proto(row))

    async def UpdateSlaPolicy(
        self, request: support_pb2.UpdateSlaPolicyRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.UpdateSlaPolicyResponse:
        raw = [
            {
                "metric": VALUE_OF["metric"].get(t.metric, ""),
                "priority": VALUE_OF["priority"].get(t.priority, ""),
                "category_id": t.category_id,
                "customer_tier": t.customer_tier,
                "target_minutes": t.target_minutes,
            }
            for t in request.targets
        ]
        async with self.db.unit_of_work() as uow:
            row = await commands.update_policy(
                uow,
                raw,
                request.warn_before_minutes,
                request.escalate_after_minutes,
                request.reassign_on_breach,
                request.based_on_version,
            )
        return support_pb2.UpdateSlaPolicyResponse(policy=policy_to_proto(row))

    async def ListCalendars(
        self, request: support_pb2.ListCalendarsRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.ListCalendarsResponse:
        async with self.db.unit_of_work() as uow:
            rows = await queries.calendar_rows(uow)
        return support_pb2.ListCalendarsResponse(
            calendars=[calendar_to_proto(calendar_from_dict(r.body)) for r in rows]
        )

    async def PutCalendar(
        self, request: support_pb2.PutCalendarRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.PutCalendarResponse:
        cal = calendar_from_proto(request.calendar)
        async with self.db.unit_of_work() as uow:
            saved = await commands.put_calendar(uow, cal)
        return support_pb2.PutCalendarResponse(calendar=calendar_to_proto(saved))

    async def GetSupportReport(
        self, request: support_pb2.GetSupportReportRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.GetSupportReportResponse:
        now = datetime.now(UTC)
        until = request.to_time.ToDatetime(tzinfo=UTC) if request.HasField("to_time") else now
        since = (
            request.from_time.ToDatetime(tzinfo=UTC) if request.HasField("from_time") else until - timedelta(days=30)
        )
        if not since < until or until - since > timedelta(days=MAX_REPORT_DAYS):
            raise InvalidArgument(
                "the period must start before it ends and span at most 400 days",
                field_violations=[("from_time", f"before to_time, at most {MAX_REPORT_DAYS} days before it")],
            )
        group_by = VALUE_OF["grouping"].get(request.group_by, "") or "queue"
        async with self.db.unit_of_work() as uow:
            rows, total = await report.support_report(uow, reach_of(request.reach), group_by, since, until, now)
        return support_pb2.GetSupportReportResponse(rows=[_report_row(r) for r in rows], total=_report_row(total))

    async def SubmitSurvey(
        self, request: support_pb2.SubmitSurveyRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.SubmitSurveyResponse:
        require({"token": request.token})
        async with self.db.unit_of_work() as uow:
            row = await commands.submit_survey(uow, request.token, request.score, request.comment)
        return support_pb2.SubmitSurveyResponse(score=row.satisfaction_score, ticket_number=row.number)
