"""/search: finding a record by what a caller on the phone says: a customer by a name in any
spelling, a phone number in any format or an e-mail address (the customers service ranks), or by
the number of a ticket or the id of an order they quote (support and orders say whose it is)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

import grpc
from fastapi import HTTPException, Query

from crm.customers.v1 import customers_pb2
from crm.support.v1 import support_pb2
from crm_gateway import records
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.customers.schemas import Customer
from crm_gateway.features.search.schemas import CustomerMatch, CustomerSearch
from crm_gateway.records import read

router = api_router()

# A ticket's number as a customer reads it out ("1042", "#1042", "T-1042"): shorter than any phone.
TICKET_NUMBER = re.compile(r"^\s*(?:#|[Tt]-?)?(\d{1,9})\s*$")
ORDER_ID = re.compile(r"^\s*([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\s*$")


async def _customer_of_lead(clients: Clients, lead_id: str) -> customers_pb2.Customer | None:
    reply = await read(clients.customers.ListCustomers, customers_pb2.ListCustomersRequest(lead_id=lead_id))
    return reply.customers[0] if reply.customers else None


async def _quoted_record(clients: Clients, principal: Caller, query: str) -> CustomerMatch | None:
    """The customer of the ticket number or order id the query is, when the caller may read both
    (the same None as no such record: a search never tells what exists beyond the caller's reach)."""
    try:
        if number := TICKET_NUMBER.match(query):
            everyone = support_pb2.TicketReach(all_tickets=True)
            found = await read(
                clients.support.GetTicket, support_pb2.GetTicketRequest(number=int(number.group(1)), reach=everyone)
            )
            customer = await records.customer(clients, principal, found.ticket.customer_id)
            return CustomerMatch(customer=to_model(Customer, customer), match="ticket_number")
        if order_id := ORDER_ID.match(query):
            order = await records.order(clients, principal, order_id.group(1).lower())
            owner = await _customer_of_lead(clients, order.lead_id)
            if owner is None or not await records.customer_visible(clients, principal, owner):
                return None
            return CustomerMatch(customer=to_model(Customer, owner), match="order")
    except HTTPException:
        return None
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return None
        raise
    return None


@router.get("/search/customers", tags=["customers"], operation_id="searchCustomers")
async def search_customers(
    clients: Clients,
    principal: Caller,
    query: Annotated[str, Query(min_length=1, max_length=200, description="A name, phone number or e-mail")],
    page_size: Annotated[int, Query(ge=0, le=50, description="At most 50 (also when 0)")] = 0,
) -> CustomerSearch:
    """Customers matching a name in any spelling (Hebrew, Persian or Latin letters, any word
    order, the last word as a prefix), a phone number in any format or an e-mail address, best
    first; or the customer of a ticket number ("1042", "#1042", "T-1042") or an order id, first of
    all. A rep sees only customers of leads they own; fewer than 2 letters or digits is a 422."""
    quoted = TICKET_NUMBER.match(query) or ORDER_ID.match(query)
    searched, record = await asyncio.gather(
        read(clients.customers.SearchCustomers, customers_pb2.SearchCustomersRequest(query=query, page_size=page_size)),
        _quoted_record(clients, principal, query) if quoted else asyncio.sleep(0, result=None),
    )
    matches = list(searched.matches)
    # Admins, managers, clerks and agents see the directory; for a rep, one visibility check per
    # match (at most 50), side by side.
    visible = await asyncio.gather(*(records.customer_visible(clients, principal, m.customer) for m in matches))
    shown = customers_pb2.SearchCustomersResponse(matches=[m for m, ok in zip(matches, visible, strict=True) if ok])
    result = to_model(CustomerSearch, shown)
    if record is not None:
        result.matches = [record, *(m for m in result.matches if m.customer.id != record.customer.id)]
    return result
