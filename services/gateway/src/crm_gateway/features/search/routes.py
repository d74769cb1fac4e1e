"""/search: finding a record by what a caller on the phone says: a customer by a name in any
spelling, a phone number in any format or an e-mail address (the customers service ranks)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Query

from crm.customers.v1 import customers_pb2
from crm_gateway import records
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.search.schemas import CustomerSearch
from crm_gateway.records import read

router = api_router()


@router.get("/search/customers", tags=["customers"], operation_id="searchCustomers")
async def search_customers(
    clients: Clients,
    principal: Caller,
    query: Annotated[str, Query(min_length=1, max_length=200, description="A name, phone number or e-mail")],
    page_size: Annotated[int, Query(ge=0, le=50, description="At most 50 (also when 0)")] = 0,
) -> CustomerSearch:
    """Customers matching a name in any spelling (Hebrew, Persian or Latin letters, any word
    order, the last word as a prefix), a phone number in any format or an e-mail address, best
    first. A rep sees only customers of leads they own; fewer than 2 letters or digits is a 422."""
    reply = await read(
        clients.customers.SearchCustomers,
        customers_pb2.SearchCustomersRequest(query=query, page_size=page_size),
    )
    matches = list(reply.matches)
    # Admins, managers, clerks and agents see the directory; for a rep, one visibility check per
    # match (at most 50), side by side.
    visible = await asyncio.gather(*(records.customer_visible(clients, principal, m.customer) for m in matches))
    shown = customers_pb2.SearchCustomersResponse(matches=[m for m, ok in zip(matches, visible, strict=True) if ok])
    return to_model(CustomerSearch, shown)
