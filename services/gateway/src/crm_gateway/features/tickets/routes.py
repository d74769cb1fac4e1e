"""The service desk: /tickets and their messages, the queues, categories, SLA policy and
calendars, the support report, and the customer's public survey answer.

Who reaches which ticket is decided once, in the support service, from the caller's reach
(crm_gateway.platform.authz.ticket_reach): a ticket outside it is 404, like one that does not
exist. Sales reps have no reach of their own: they read the tickets of a customer they may read
(records.customer), without internal notes, and change none."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from crm.support.v1 import support_pb2
from crm_gateway import records
from crm_gateway.convert import IsoDateTime, enum_value, to_model, to_timestamp, with_etag
from crm_gateway.deps import (
    Caller,
    Clients,
    FilterId,
    IdempotencyKey,
    IfMatch,
    PageSize,
    PageToken,
    ResourceId,
    api_router,
    etag_of,
    forbidden,
)
from crm_gateway.features.tickets.schemas import (
    AddTicketMessageIn,
    AssignTicketIn,
    CalendarList,
    CategoryList,
    ChangeTicketStatusIn,
    OpenTicketIn,
    Priority,
    PutCalendarIn,
    QueueList,
    SlaPolicy,
    Status,
    SupportReport,
    SurveyAnswered,
    SurveyAnswerIn,
    Ticket,
    TicketList,
    TicketMessageAdded,
    TicketMessageList,
    UpdateQueueIn,
    UpdateSlaPolicyIn,
)
from crm_gateway.features.tickets.schemas import Calendar as CalendarOut
from crm_gateway.features.tickets.schemas import Queue as QueueOut
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.platform.problems import PROBLEM_RESPONSES
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()
# No bearer token: the survey link's token is the credential.
public_router = APIRouter(prefix="/api/v1/public", responses=PROBLEM_RESPONSES)
SurveyToken = Annotated[str, Path(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


def _reach(principal: Principal) -> support_pb2.TicketReach:
    reach = authz.ticket_reach(principal)
    return support_pb2.TicketReach(all_tickets=reach.all_tickets, agent_id=reach.agent_id, team_id=reach.team_id)


async def _customer_reach(clients: Clients, principal: Principal, customer_id: str) -> support_pb2.TicketReach:
    """A rep's reach: one customer's tickets, once records.customer has said the rep may read them."""
    await records.customer(clients, principal, customer_id)
    return support_pb2.TicketReach(customer_id=customer_id)


async def _read_ticket(clients: Clients, principal: Principal, ticket_id: str) -> support_pb2.Ticket:
    """The ticket within the caller's reach; for a rep, a ticket of a customer they may read."""
    desk = authz.ticket_reach(principal)
    if not desk.empty:
        reply: support_pb2.GetTicketResponse = await records.get(
            "ticket",
            ticket_id,
            clients.support.GetTicket,
            support_pb2.GetTicketRequest(ticket_id=ticket_id, reach=_reach(principal)),
        )
        return reply.ticket
    everyone = support_pb2.TicketReach(all_tickets=True)
    found: support_pb2.GetTicketResponse = await records.get(
        "ticket",
        ticket_id,
        clients.support.GetTicket,
        support_pb2.GetTicketRequest(ticket_id=ticket_id, reach=everyone),
    )
    try:
        await records.customer(clients, principal, found.ticket.customer_id)
    except HTTPException as exc:
        raise records.not_found("ticket", ticket_id) from exc
    return found.ticket


@router.post("/tickets", status_code=201, tags=["tickets"], operation_id="openTicket")
async def open_ticket(
    body: OpenTicketIn, clients: Clients, principal: Caller, response: Response, idempotency_key: IdempotencyKey = None
) -> Ticket:
    """Open a ticket for a customer the caller may read, about an order if it names one (which
    must exist). The category chooses the queue, the queue's strategy the agent; the SLA targets
    come from the policy in force. A repeated request_id (or Idempotency-Key) returns the first."""
    await records.customer(clients, principal, body.customer_id)
    if body.order_id:
        await records.order(clients, principal, body.order_id)
    reply = await clients.support.OpenTicket(body.to_proto(_reach(principal), idempotency_key or ""))
    return with_etag(Ticket, reply.ticket, response)


@router.get("/tickets", tags=["tickets"], operation_id="listTickets")
async def list_tickets(
    clients: Clients,
    principal: Caller,
    status: Annotated[list[Status] | None, Query(max_length=5)] = None,
    queue_id: FilterId = "",
    assignee_id: FilterId = "",
    customer_id: FilterId = "",
    priority: Annotated[Priority | None, Query()] = None,
    at_risk: bool = False,
    number: Annotated[int, Query(ge=0, le=10**12, description="One ticket by the number a customer quotes")] = 0,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> TicketList:
    """Newest first, within the caller's reach: an agent's queues and own tickets, a manager's
    team's queues, everything for admins; a rep lists one customer's tickets (give customer_id)."""
    reach = _reach(principal)
    if authz.ticket_reach(principal).empty:
        if not customer_id:
            raise forbidden("Sales reps list the tickets of one customer: give customer_id.")
        reach = await _customer_reach(clients, principal, customer_id)
    if number:
        try:
            found = await read(clients.support.GetTicket, support_pb2.GetTicketRequest(number=number, reach=reach))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # none, or not the caller's: an empty list either way
                return TicketList(tickets=[], next_page_token="")
            raise
        return TicketList(tickets=[to_model(Ticket, found.ticket)], next_page_token="")
    request = support_pb2.ListTicketsRequest(
        page_size=protoconv.page_size(page_size),
        page_token=page_token,
        reach=reach,
        statuses=[enum_value(support_pb2.TicketStatus, s) for s in status or []],
        queue_id=queue_id,
        assignee_id=assignee_id,
        customer_id=customer_id,
        priority=enum_value(support_pb2.TicketPriority, priority)
        if priority
        else support_pb2.TICKET_PRIORITY_UNSPECIFIED,
        at_risk=at_risk,
    )
    return to_model(TicketList, await read(clients.support.ListTickets, request))


@router.get("/tickets/{ticket_id}", tags=["tickets"], operation_id="getTicket")
async def get_ticket(ticket_id: ResourceId, clients: Clients, principal: Caller, response: Response) -> Ticket:
    """The ticket with its SLA clocks as of now (state, due time, pause reason, escalation level)."""
    return with_etag(Ticket, await _read_ticket(clients, principal, ticket_id), response)


@router.get("/tickets/{ticket_id}/messages", tags=["tickets"], operation_id="listTicketMessages")
async def list_ticket_messages(ticket_id: ResourceId, clients: Clients, principal: Caller) -> TicketMessageList:
    """Oldest first; sales reps see what the customer was told and said, not the internal notes."""
    ticket = await _read_ticket(clients, principal, ticket_id)
    desk = not authz.ticket_reach(principal).empty
    reach = _reach(principal) if desk else support_pb2.TicketReach(customer_id=ticket.customer_id)
    reply = await read(
        clients.support.ListTicketMessages,
        support_pb2.ListTicketMessagesRequest(ticket_id=ticket_id, reach=reach, public_only=not desk),
    )
    return to_model(TicketMessageList, reply)


@router.post("/tickets/{ticket_id}/messages", status_code=201, tags=["tickets"], operation_id="addTicketMessage")
async def add_ticket_message(
    ticket_id: ResourceId, body: AddTicketMessageIn, clients: Clients, principal: Caller, request: Request
) -> TicketMessageAdded:
    """A public reply, an internal note or the customer's own message, as the caller."""
    reply = await records.change(
        "ticket",
        ticket_id,
        clients.support.AddTicketMessage,
        support_pb2.AddTicketMessageRequest(
            ticket_id=ticket_id,
            visibility=enum_value(support_pb2.MessageVisibility, body.visibility),
            body=body.body,
            author_name=principal.subject,
            request_id=body.request_id,
            reach=_reach(principal),
        ),
    )
    return to_model(TicketMessageAdded, reply)


@router.post("/tickets/{ticket_id}/status", tags=["tickets"], operation_id="changeTicketStatus")
async def change_ticket_status(
    ticket_id: ResourceId,
    body: ChangeTicketStatusIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Ticket:
    """new → open → pending_customer (the SLA clock pauses) → resolved (the customer is sent the
    survey) → closed; resolved → open reopens. 409 naming `status` for a move the lifecycle does
    not allow or a ticket with open child tasks; 412 when If-Match is stale."""
    reply = await records.change(
        "ticket",
        ticket_id,
        clients.support.ChangeTicketStatus,
        support_pb2.ChangeTicketStatusRequest(
            ticket_id=ticket_id,
            status=enum_value(support_pb2.TicketStatus, body.status),
            note=body.note,
            etag=etag_of(if_match),
            reach=_reach(principal),
        ),
    )
    return with_etag(Ticket, reply.ticket, response)


@router.post("/tickets/{ticket_id}/assign", tags=["tickets"], operation_id="assignTicket")
async def assign_ticket(
    ticket_id: ResourceId,
    body: AssignTicketIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Ticket:
    reply = await records.change(
        "ticket",
        ticket_id,
        clients.support.AssignTicket,
        support_pb2.AssignTicketRequest(
            ticket_id=ticket_id,
            queue_id=body.queue_id,
            assignee_id=body.assignee_id,
            etag=etag_of(if_match),
            reach=_reach(principal),
        ),
    )
    return with_etag(Ticket, reply.ticket, response)


@router.get("/ticket-categories", tags=["tickets"], operation_id="listTicketCategories")
async def list_ticket_categories(clients: Clients, principal: Caller) -> CategoryList:
    """The category tree, parents first, with names in he/fa/en."""
    return to_model(CategoryList, await read(clients.support.ListCategories, support_pb2.ListCategoriesRequest()))


@router.get("/support-queues", tags=["tickets"], operation_id="listSupportQueues")
async def list_support_queues(clients: Clients, principal: Caller) -> QueueList:
    return to_model(QueueList, await read(clients.support.ListQueues, support_pb2.ListQueuesRequest()))


@router.put("/support-queues/{queue_id}", tags=["tickets"], operation_id="updateSupportQueue")
async def update_support_queue(
    queue_id: ResourceId, body: UpdateQueueIn, clients: Clients, principal: Caller
) -> QueueOut:
    """A queue's members (agent ids), assignment strategy, team and calendar."""
    reply = await records.change(
        "queue",
        queue_id,
        clients.support.UpdateQueue,
        support_pb2.UpdateQueueRequest(
            queue_id=queue_id,
            strategy=enum_value(support_pb2.AssignmentStrategy, body.strategy),
            member_ids=body.member_ids,
            team_id=body.team_id,
            calendar_code=body.calendar_code,
        ),
    )
    return to_model(QueueOut, reply.queue)


@router.get("/sla-policy", tags=["tickets"], operation_id="getSlaPolicy")
async def get_sla_policy(
    clients: Clients, principal: Caller, version: Annotated[int, Query(ge=0, le=10**6)] = 0
) -> SlaPolicy:
    """The version in force (or an older one, by version)."""
    reply = await records.get(
        "SLA policy version",
        str(version),
        clients.support.GetSlaPolicy,
        support_pb2.GetSlaPolicyRequest(version=version),
    )
    return to_model(SlaPolicy, reply.policy)


@router.put("/sla-policy", tags=["tickets"], operation_id="updateSlaPolicy")
async def update_sla_policy(body: UpdateSlaPolicyIn, clients: Clients, principal: Caller) -> SlaPolicy:
    reply = await clients.support.UpdateSlaPolicy(body.to_proto())
    return to_model(SlaPolicy, reply.policy)


@router.get("/sla-calendars", tags=["tickets"], operation_id="listSlaCalendars")
async def list_sla_calendars(clients: Clients, principal: Caller) -> CalendarList:
    return to_model(CalendarList, await read(clients.support.ListCalendars, support_pb2.ListCalendarsRequest()))


@router.put("/sla-calendars/{code}", tags=["tickets"], operation_id="putSlaCalendar")
async def put_sla_calendar(
    code: Annotated[str, Path(pattern=r"^[A-Z][A-Z0-9_-]{1,19}$")],
    body: PutCalendarIn,
    clients: Clients,
    principal: Caller,
) -> CalendarOut:
    """Replace a calendar's hours and holidays; 422 naming the field for overlapping hours."""
    reply = await clients.support.PutCalendar(body.to_proto(code))
    return to_model(CalendarOut, reply.calendar)


@router.get("/reports/support", tags=["tickets"], operation_id="supportReport")
async def support_report(
    clients: Clients,
    principal: Caller,
    group_by: Annotated[str, Query(pattern="^(queue|agent|category)$")] = "queue",
    from_time: IsoDateTime | None = None,
    to_time: IsoDateTime | None = None,
) -> SupportReport:
    """Tickets opened in the period (default the last 30 days), per queue, agent or category:
    opened, resolved, backlog now, SLA attainment per metric, CSAT — within the caller's reach."""
    request = support_pb2.GetSupportReportRequest(
        reach=_reach(principal),
        group_by=enum_value(support_pb2.ReportGrouping, group_by),
        from_time=to_timestamp(from_time),
        to_time=to_timestamp(to_time),
    )
    return to_model(SupportReport, await read(clients.support.GetSupportReport, request))


@public_router.post("/surveys/{token}", tags=["tickets"], operation_id="submitSurvey")
async def submit_survey(token: SurveyToken, body: SurveyAnswerIn, clients: Clients) -> SurveyAnswered:
    """The customer's score (1-5) from the survey link; the latest answer counts. 404 for a link
    that is not one."""
    reply = await records.change(
        "survey",
        "link",
        clients.support.SubmitSurvey,
        support_pb2.SubmitSurveyRequest(token=token, score=body.score, comment=body.comment),
    )
    return to_model(SurveyAnswered, reply)
