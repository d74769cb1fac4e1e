"""The /api/v1 REST routes: validate, call one backend over gRPC, convert the reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query

from crm.customers.v1 import customers_pb2
from crm.leads.v1 import leads_pb2
from crm.notifications.v1 import notifications_pb2
from crm.orders.v1 import orders_pb2
from crm.reporting.v1 import reporting_pb2
from crm_gateway.auth import authenticate
from crm_gateway.clients import BackendClients, get_clients
from crm_gateway.problems import PROBLEM_RESPONSES
from crm_gateway.schemas import (
    CaptureLeadIn,
    CloseDealIn,
    ConvertLeadIn,
    Customer,
    CustomerList,
    Deal,
    Lead,
    LeadList,
    MessageList,
    NotificationMessage,
    Order,
    OrderList,
    ShipOrderIn,
    SourceList,
    SourceReport,
    Timeline,
    to_model,
    to_timestamp,
)
from crm_kit import protoconv
from crm_kit.grpc_client import call_idempotent

Req = TypeVar("Req")
Rep = TypeVar("Rep")

Clients = Annotated[BackendClients, Depends(get_clients)]
ResourceId = Annotated[str, Path(min_length=1, max_length=100)]
FilterId = Annotated[str, Query(max_length=100)]
PageSize = Annotated[
    int, Query(ge=0, description=f"0 means the default; above {protoconv.MAX_PAGE_SIZE} it is clamped")
]
PageToken = Annotated[str, Query(max_length=1000, description="next_page_token of the previous page")]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(authenticate)], responses=PROBLEM_RESPONSES)


async def read(method: Callable[[Req], Awaitable[Rep]], request: Req) -> Rep:
    """An idempotent backend read, retried on UNAVAILABLE/DEADLINE_EXCEEDED. Writes are never retried."""
    return await call_idempotent(lambda: method(request))


# ---------------------------------------------------------------- leads and deals


@router.post("/leads", status_code=201, tags=["leads"])
async def capture_lead(
    body: CaptureLeadIn,
    clients: Clients,
    idempotency_key: Annotated[
        str, Header(alias="Idempotency-Key", max_length=200, description="request_id when the body has none")
    ] = "",
) -> Lead:
    reply = await clients.leads.CaptureLead(body.to_proto(idempotency_key.strip()))
    return to_model(Lead, reply.lead)


@router.get("/leads", tags=["leads"])
async def list_leads(
    clients: Clients,
    source: Annotated[str, Query(max_length=64)] = "",
    rep_id: FilterId = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> LeadList:
    reply = await read(
        clients.leads.ListLeads,
        leads_pb2.ListLeadsRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, source=source, rep_id=rep_id
        ),
    )
    return to_model(LeadList, reply)


@router.get("/leads/{lead_id}", tags=["leads"])
async def get_lead(lead_id: ResourceId, clients: Clients) -> Lead:
    reply = await read(clients.leads.GetLead, leads_pb2.GetLeadRequest(lead_id=lead_id))
    return to_model(Lead, reply.lead)


@router.post("/leads/{lead_id}/convert", status_code=201, tags=["deals"])
async def convert_lead(lead_id: ResourceId, clients: Clients, body: ConvertLeadIn | None = None) -> Deal:
    title = body.title if body else ""
    reply = await clients.leads.ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=lead_id, title=title))
    return to_model(Deal, reply.deal)


@router.get("/deals/{deal_id}", tags=["deals"])
async def get_deal(deal_id: ResourceId, clients: Clients) -> Deal:
    reply = await read(clients.leads.GetDeal, leads_pb2.GetDealRequest(deal_id=deal_id))
    return to_model(Deal, reply.deal)


@router.post("/deals/{deal_id}/close", tags=["deals"])
async def close_deal(deal_id: ResourceId, body: CloseDealIn, clients: Clients) -> Deal:
    reply = await clients.leads.CloseDeal(body.to_proto(deal_id))
    return to_model(Deal, reply.deal)


@router.get("/sources", tags=["leads"])
async def list_sources(clients: Clients) -> SourceList:
    reply = await read(clients.leads.ListSources, leads_pb2.ListSourcesRequest())
    return to_model(SourceList, reply)


# ---------------------------------------------------------------- orders


@router.get("/orders", tags=["orders"])
async def list_orders(
    clients: Clients, deal_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> OrderList:
    reply = await read(
        clients.orders.ListOrders,
        orders_pb2.ListOrdersRequest(page_size=protoconv.page_size(page_size), page_token=page_token, deal_id=deal_id),
    )
    return to_model(OrderList, reply)


@router.get("/orders/{order_id}", tags=["orders"])
async def get_order(order_id: ResourceId, clients: Clients) -> Order:
    reply = await read(clients.orders.GetOrder, orders_pb2.GetOrderRequest(order_id=order_id))
    return to_model(Order, reply.order)


@router.post("/orders/{order_id}/ship", tags=["orders"])
async def ship_order(order_id: ResourceId, body: ShipOrderIn, clients: Clients) -> Order:
    reply = await clients.orders.ShipOrder(body.to_proto(order_id))
    return to_model(Order, reply.order)


# ---------------------------------------------------------------- customers


@router.get("/customers", tags=["customers"])
async def list_customers(
    clients: Clients, lead_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> CustomerList:
    reply = await read(
        clients.customers.ListCustomers,
        customers_pb2.ListCustomersRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, lead_id=lead_id
        ),
    )
    return to_model(CustomerList, reply)


@router.get("/customers/{customer_id}", tags=["customers"])
async def get_customer(customer_id: ResourceId, clients: Clients) -> Customer:
    reply = await read(clients.customers.GetCustomer, customers_pb2.GetCustomerRequest(customer_id=customer_id))
    return to_model(Customer, reply.customer)


@router.get("/customers/{customer_id}/timeline", tags=["customers"])
async def list_timeline(
    customer_id: ResourceId, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
) -> Timeline:
    reply = await read(
        clients.customers.ListTimeline,
        customers_pb2.ListTimelineRequest(
            customer_id=customer_id, page_size=protoconv.page_size(page_size), page_token=page_token
        ),
    )
    return to_model(Timeline, reply)


# ---------------------------------------------------------------- notifications


@router.get("/messages", tags=["messages"])
async def list_messages(
    clients: Clients,
    order_id: FilterId = "",
    lead_id: FilterId = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> MessageList:
    reply = await read(
        clients.notifications.ListMessages,
        notifications_pb2.ListMessagesRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            order_id=order_id,
            lead_id=lead_id,
        ),
    )
    return to_model(MessageList, reply)


@router.get("/messages/{message_id}", tags=["messages"])
async def get_message(message_id: ResourceId, clients: Clients) -> NotificationMessage:
    reply = await read(clients.notifications.GetMessage, notifications_pb2.GetMessageRequest(message_id=message_id))
    return to_model(NotificationMessage, reply.message)


# ---------------------------------------------------------------- reports


@router.get("/reports/sources", tags=["reports"])
async def source_report(
    clients: Clients,
    start_time: Annotated[datetime | None, Query(description="ISO 8601; without a zone it is UTC")] = None,
    end_time: Annotated[datetime | None, Query(description="ISO 8601; without a zone it is UTC")] = None,
) -> SourceReport:
    reply = await read(
        clients.reporting.GetSourceReport,
        reporting_pb2.GetSourceReportRequest(start_time=to_timestamp(start_time), end_time=to_timestamp(end_time)),
    )
    return to_model(SourceReport, reply)
