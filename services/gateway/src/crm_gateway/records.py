"""Reading one record on behalf of a caller: the backend's reply, or 404 when it does not exist or
the caller may not see it — the same answer both ways, so existence never leaks. Targets are seen by
their subject, so the scope of a caller's targets (a manager's team and its reps) is here too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from fastapi import HTTPException, Request

from crm.customers.v1 import customers_pb2
from crm.leads.v1 import leads_pb2, routing_pb2
from crm.orders.v1 import orders_pb2
from crm.reporting.v1 import targets_pb2
from crm.sales.v1 import deals_pb2, quotes_pb2
from crm.support.v1 import support_pb2
from crm_gateway.clients import BackendClients
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal, refuse_anonymous_flood
from crm_kit.grpc_client import call_idempotent

Req = TypeVar("Req")
Rep = TypeVar("Rep")


async def read(method: Callable[[Req], Awaitable[Rep]], request: Req) -> Rep:
    """An idempotent backend read, retried on UNAVAILABLE/DEADLINE_EXCEEDED. Writes are never retried."""
    return await call_idempotent(lambda: method(request))


def not_found(kind: str, record_id: str) -> HTTPException:
    return HTTPException(404, f"No {kind} with id {record_id!r}.")


async def change(kind: str, record_id: str, method: Callable[[Req], Awaitable[Rep]], request: Req) -> Rep:
    """Change one record (sent once: a write is not retried here); a NOT_FOUND becomes the
    route's 404."""
    try:
        return await method(request)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise not_found(kind, record_id) from exc
        raise


async def change_by_token(request: Request, kind: str, method: Callable[[Req], Awaitable[Rep]], message: Req) -> Rep:
    """A change on behalf of an anonymous holder of a link's token (a survey, an unsubscribe, a
    short link): refused once the address spent its anonymous budget (429, checked before the
    call), and a token that names nothing (404) counts against that budget like a bad credential,
    so guessing tokens costs the guesser, not the backend."""
    refuse_anonymous_flood(request, count=False)
    try:
        return await change(kind, "link", method, message)
    except HTTPException as exc:
        if exc.status_code == 404:
            refuse_anonymous_flood(request)
        raise


async def get(kind: str, record_id: str, method: Callable[[Req], Awaitable[Rep]], request: Req) -> Rep:
    """Read one record (retried when idempotent-safe); a NOT_FOUND becomes the route's 404."""
    try:
        return await read(method, request)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise not_found(kind, record_id) from exc
        raise


async def lead(clients: BackendClients, principal: Principal, lead_id: str) -> leads_pb2.Lead:
    reply: leads_pb2.GetLeadResponse = await get(
        "lead", lead_id, clients.leads.GetLead, leads_pb2.GetLeadRequest(lead_id=lead_id)
    )
    if not authz.lead_visible(principal, reply.lead):
        raise not_found("lead", lead_id)
    return reply.lead


async def live_lead(clients: BackendClients, principal: Principal, lead_id: str) -> leads_pb2.Lead:
    """The lead work on lead_id lands on: the lead itself, or the lead it was merged into — which
    the caller must be allowed to see too (a merge can move a person to another team's lead)."""
    found = await lead(clients, principal, lead_id)
    for _ in range(10):  # merges chain at most a few deep; the bound only guards against a cycle
        if not found.merged_into_lead_id:
            return found
        try:
            found = await lead(clients, principal, found.merged_into_lead_id)
        except HTTPException as exc:
            raise not_found("lead", lead_id) from exc
    raise not_found("lead", lead_id)


async def deal(clients: BackendClients, principal: Principal, deal_id: str) -> deals_pb2.Deal:
    reply: deals_pb2.GetDealResponse = await get(
        "deal", deal_id, clients.deals.GetDeal, deals_pb2.GetDealRequest(deal_id=deal_id)
    )
    if not authz.deal_visible(principal, reply.deal):
        raise not_found("deal", deal_id)
    return reply.deal


async def quote(clients: BackendClients, principal: Principal, quote_id: str) -> quotes_pb2.Quote:
    """A quote is visible with its deal: a caller who may not read the deal gets the quote's 404."""
    reply: quotes_pb2.GetQuoteResponse = await get(
        "quote", quote_id, clients.quotes.GetQuote, quotes_pb2.GetQuoteRequest(quote_id=quote_id)
    )
    try:
        await deal(clients, principal, reply.quote.deal_id)
    except HTTPException as exc:
        raise not_found("quote", quote_id) from exc
    return reply.quote


async def order(clients: BackendClients, principal: Principal, order_id: str) -> orders_pb2.Order:
    reply: orders_pb2.GetOrderResponse = await get(
        "order", order_id, clients.orders.GetOrder, orders_pb2.GetOrderRequest(order_id=order_id)
    )
    if authz.sees_every_order(principal):
        return reply.order
    try:
        await deal(clients, principal, reply.order.deal_id)
    except HTTPException as exc:
        raise not_found("order", order_id) from exc
    return reply.order


async def customer(clients: BackendClients, principal: Principal, customer_id: str) -> customers_pb2.Customer:
    reply: customers_pb2.GetCustomerResponse = await get(
        "customer",
        customer_id,
        clients.customers.GetCustomer,
        customers_pb2.GetCustomerRequest(customer_id=customer_id),
    )
    if await customer_visible(clients, principal, reply.customer):
        return reply.customer
    raise not_found("customer", customer_id)


async def customer_visible(clients: BackendClients, principal: Principal, found: customers_pb2.Customer) -> bool:
    """Whether the caller may read this customer: the whole directory for those who see it, else
    a customer of a lead the caller may read (a rep's own, a manager's team's)."""
    if authz.sees_every_customer(principal):
        return True
    for lead_id in found.lead_ids:
        try:
            await lead(clients, principal, lead_id)
        except HTTPException:
            continue
        return True
    return False


def ticket_reach(principal: Principal) -> support_pb2.TicketReach:
    """The caller's reach over the service desk's tickets, as the support service applies it
    (a ticket outside it is NOT_FOUND there, the same as one that does not exist)."""
    reach = authz.ticket_reach(principal)
    return support_pb2.TicketReach(all_tickets=reach.all_tickets, agent_id=reach.agent_id, team_id=reach.team_id)


# ---------------------------------------------------------------- targets: by their subject


async def _reps(clients: BackendClients, *, team_id: str = "", rep_id: str = "") -> list[routing_pb2.Rep]:
    """Reps without their load (REP_VIEW_BASIC): who is in a team, never a count of the leads
    table, which every targets call would otherwise cost the leads database."""
    request = routing_pb2.ListRepsRequest(team_id=team_id, rep_id=rep_id, view=routing_pb2.REP_VIEW_BASIC)
    reply: routing_pb2.ListRepsResponse = await read(clients.routing.ListReps, request)
    return list(reply.reps)


async def rep_of(clients: BackendClients, rep_id: str) -> routing_pb2.Rep | None:
    """The rep with this id (without its load), or None when there is none."""
    if not rep_id:  # an empty filter lists every rep
        return None
    found = await _reps(clients, rep_id=rep_id)
    return found[0] if found else None


async def target_scope(clients: BackendClients, reach: authz.TargetReach) -> targets_pb2.TargetScope:
    """The scope reporting holds a caller's targets to: a manager's team with the reps it has now
    (a rep who moved takes their targets along), a rep's own, every source's. A reach that names
    nothing is 403 (fail closed: reporting reads an empty scope as nothing, never as everything)."""
    if reach.every_target:
        return targets_pb2.TargetScope(every_target=True)
    subjects: list[targets_pb2.TargetSubject] = []
    if reach.team_id:
        reps = await _reps(clients, team_id=reach.team_id)
        subjects.append(targets_pb2.TargetSubject(kind=targets_pb2.TARGET_SUBJECT_KIND_TEAM, id=reach.team_id))
        subjects += [targets_pb2.TargetSubject(kind=targets_pb2.TARGET_SUBJECT_KIND_REP, id=r.id) for r in reps]
    if reach.rep_id:
        subjects.append(targets_pb2.TargetSubject(kind=targets_pb2.TARGET_SUBJECT_KIND_REP, id=reach.rep_id))
    kinds = [targets_pb2.TARGET_SUBJECT_KIND_SOURCE] if reach.sources else []
    if not subjects and not kinds:
        raise HTTPException(403, "Your token names no team (team_id) or rep (rep_id) to see targets of.")
    return targets_pb2.TargetScope(subjects=subjects, kinds=kinds)


async def subject_within(
    clients: BackendClients, reach: authz.TargetReach, kind: targets_pb2.TargetSubjectKind.ValueType, subject_id: str
) -> bool:
    """Whether a target of this subject is within the reach (a rep by the team they are in now)."""
    if reach.every_target:
        return True
    if kind == targets_pb2.TARGET_SUBJECT_KIND_SOURCE:
        return reach.sources
    if kind == targets_pb2.TARGET_SUBJECT_KIND_TEAM:
        return bool(reach.team_id) and subject_id == reach.team_id
    if kind != targets_pb2.TARGET_SUBJECT_KIND_REP:
        return False
    if reach.rep_id and subject_id == reach.rep_id:
        return True
    if not reach.team_id:
        return False
    rep = await rep_of(clients, subject_id)
    return rep is not None and rep.team_id == reach.team_id


async def target(
    clients: BackendClients, principal: Principal, target_id: str, *, manage: bool = False
) -> targets_pb2.Target:
    """A target the caller may read (404 otherwise); with manage, one they may also change (403
    for a target they read but do not set, e.g. a source's)."""
    reply: targets_pb2.GetTargetResponse = await get(
        "target", target_id, clients.targets.GetTarget, targets_pb2.GetTargetRequest(target_id=target_id)
    )
    found = reply.target
    if not await subject_within(clients, authz.target_reach(principal), found.subject_kind, found.subject_id):
        raise not_found("target", target_id)
    reach = authz.target_manage_reach(principal)
    if manage and not await subject_within(clients, reach, found.subject_kind, found.subject_id):
        raise HTTPException(403, "Managers change the targets of their own team and its reps only.")
    return found
