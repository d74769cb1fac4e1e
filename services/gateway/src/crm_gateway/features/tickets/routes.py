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
from crm_gateway.convert import enum_value, to_model, with_etag
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
    ChangeTicketStatusIn,
    OpenTicketIn,
    Priority,
    Status,
    Ticket,
    TicketList,
    TicketMessageAdded,
    TicketMessageList,
)
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_gateway.platform.problems import PROBLEM_RESPONSES
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()
# No bearer token: the survey link's token is the credential.
public_router = APIRouter(prefix="/api/v1/public", responses=PROBLEM_RESPONSES)
SurveyToken = Annotated[str, Path(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


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
            support_pb2.GetTicketRequest(ticket_id=ticket_id, reach=records.ticket_reach(principal)),
        )
        return reply.ticket
    if not principal.has_role(authz.Role.SALES_REP):  # e.g. a manager whose token names no team
        raise records.not_found("ticket", ticket_id)
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
    reply = await clients.support.OpenTicket(body.to_proto(records.ticket_reach(principal), idempotency_key or ""))
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
    reach = records.ticket_reach(principal)
    if authz.ticket_reach(principal).empty:
        if not principal.has_role(authz.Role.SALES_REP):
            raise forbidden("Your token names no team (team_id) whose queues to list.")
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
    reach = records.ticket_reach(principal) if desk else support_pb2.TicketReach(customer_id=ticket.customer_id)
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
            reach=records.ticket_reach(principal),
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
            reach=records.ticket_reach(principal),
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
            reach=records.ticket_reach(principal),
        ),
    )
    return with_etag(Ticket, reply.ticket, response)
