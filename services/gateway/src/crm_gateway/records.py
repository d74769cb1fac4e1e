"""Reading one record on behalf of a caller: the backend's reply, or 404 when it does not exist or
the caller may not see it — the same answer both ways, so existence never leaks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from fastapi import HTTPException

from crm.customers.v1 import customers_pb2
from crm.leads.v1 import leads_pb2
from crm.orders.v1 import orders_pb2
from crm.sales.v1 import deals_pb2
from crm_gateway.clients import BackendClients
from crm_gateway.platform import authz
from crm_gateway.platform.auth import Principal
from crm_kit.grpc_client import call_idempotent

Req = TypeVar("Req")
Rep = TypeVar("Rep")


async def read(method: Callable[[Req], Awaitable[Rep]], request: Req) -> Rep:
    """An idempotent backend read, retried on UNAVAILABLE/DEADLINE_EXCEEDED. Writes are never retried."""
    return await call_idempotent(lambda: method(request))


def not_found(kind: str, record_id: str) -> HTTPException:
    return HTTPException(404, f"No {kind} with id {record_id!r}.")


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
    if authz.sees_every_customer(principal):
        return reply.customer
    for lead_id in reply.customer.lead_ids:
        try:
            await lead(clients, principal, lead_id)
        except HTTPException:
            continue
        return reply.customer
    raise not_found("customer", customer_id)
