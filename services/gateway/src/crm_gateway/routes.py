"""The /api/v1 REST routes: validate, call one backend over gRPC, convert the reply."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response

from crm.admin.v1 import audit_pb2
from crm.customers.v1 import customers_pb2
from crm.leads.v1 import leads_pb2
from crm.notifications.v1 import notifications_pb2
from crm.orders.v1 import orders_pb2
from crm.reporting.v1 import reporting_pb2
from crm_gateway import authz, records
from crm_gateway.auth import Caller, authorize
from crm_gateway.clients import BackendClients, get_clients
from crm_gateway.problems import PROBLEM_RESPONSES
from crm_gateway.records import read
from crm_gateway.schemas import (
    AuditRecordList,
    CaptureAttached,
    CapturedLead,
    CaptureLeadIn,
    CaptureReplayed,
    CloseDealIn,
    ConvertLeadIn,
    CreateWebFormKeyIn,
    Customer,
    CustomerList,
    Deal,
    IsoDateTime,
    Lead,
    LeadList,
    Me,
    MessageList,
    NotificationMessage,
    Order,
    OrderList,
    ShipOrderIn,
    SourceList,
    SourceReport,
    Timeline,
    WebFormKey,
    WebFormKeyCreated,
    WebFormKeyList,
    message_to_dict,
    to_model,
    to_timestamp,
)
from crm_gateway.settings import GatewaySettings
from crm_gateway.webforms import html_snippet
from crm_kit import protoconv

Clients = Annotated[BackendClients, Depends(get_clients)]
ResourceId = Annotated[str, Path(min_length=1, max_length=100)]
FilterId = Annotated[str, Query(max_length=100)]
PageSize = Annotated[
    int, Query(ge=0, description=f"0 means the default; above {protoconv.MAX_PAGE_SIZE} it is clamped")
]
PageToken = Annotated[str, Query(max_length=1000, description="next_page_token of the previous page")]


async def json_bodies_only(request: Request) -> None:
    """A POST body must be JSON: anything else is 415, not a confusing 422."""
    if request.method != "POST":
        return
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if has_body and media_type != "application/json":
        raise HTTPException(415, "Send the request body as application/json.")


# Every route: a valid bearer token, the route's policy (crm_gateway.authz), the rate limit, JSON.
router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(authorize), Depends(json_bodies_only)],
    responses=PROBLEM_RESPONSES,
)


def forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)


@router.get("/me", tags=["identity"])
async def get_me(principal: Caller) -> Me:
    """The caller as the gateway sees it: subject, roles, team."""
    return Me(
        subject=principal.subject,
        roles=sorted(principal.roles),
        team_id=principal.team_id,
        rep_id=principal.rep_id,
    )


# ---------------------------------------------------------------- leads and deals


@router.post(
    "/leads",
    status_code=201,
    tags=["leads"],
    responses={
        200: {
            "model": CapturedLead | CaptureAttached,
            "description": "The person is already a lead: the capture was attached to it as a touch. The "
            "lead is in the answer only when the caller may read it; otherwise only duplicate: true.",
        }
    },
)
async def capture_lead(
    body: CaptureLeadIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    idempotency_key: Annotated[
        str, Header(alias="Idempotency-Key", max_length=200, description="request_id when the body has none")
    ] = "",
) -> CapturedLead | CaptureAttached | CaptureReplayed:
    """201 with a new lead, routed to its rep; 200 when the same person (phone number or e-mail)
    is already a lead: the capture is attached to it as a new touch, and the answer is that lead
    if the caller may read it (crm_gateway.authz), else only `{"duplicate": true}`. A request_id
    (or Idempotency-Key) is the caller's own: a repeat answers with the same status, and with the
    lead as it is now only if the caller may read it (else its id, or only `duplicate`); another
    caller's equal id is another request."""
    reach = authz.lead_reach(principal)
    caller_reach = leads_pb2.LeadReach(all_leads=reach.all_leads, team_id=reach.team_id, rep_id=reach.rep_id)
    reply = await clients.leads.CaptureLead(body.to_proto(idempotency_key.strip(), caller_reach))
    if not reply.duplicate and not reply.replayed:
        # A new lead: this caller's request made it, from what it sent.
        return CapturedLead.model_validate({**message_to_dict(reply.lead), "duplicate": False, "matched_on": ""})
    if reply.duplicate:
        response.status_code = 200
    visible = authz.lead_visible(principal, reply.lead)
    if reply.replayed and not visible:
        # A repeat of the caller's own request: the same status, and no more than the first answer
        # gave (a new lead's id, or only "duplicate") — never the lead's state now.
        return CaptureAttached() if reply.duplicate else CaptureReplayed(id=reply.lead.id, duplicate=False)
    if not visible:
        return CaptureAttached()
    fields = {**message_to_dict(reply.lead), "duplicate": reply.duplicate, "matched_on": reply.matched_on}
    return CapturedLead.model_validate(fields)


@router.get("/leads", tags=["leads"])
async def list_leads(
    clients: Clients,
    principal: Caller,
    source: Annotated[str, Query(max_length=64)] = "",
    rep_id: FilterId = "",
    team_id: FilterId = "",
    campaign_id: FilterId = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> LeadList:
    """Admins list every lead; a manager their team's (team_id defaults to it); a rep their own."""
    rep_id, team_id = authz.list_scope(principal, rep_id, team_id, "leads")
    reply = await read(
        clients.leads.ListLeads,
        leads_pb2.ListLeadsRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            source=source,
            rep_id=rep_id,
            team_id=team_id,
            campaign_id=campaign_id,
        ),
    )
    return to_model(LeadList, reply)


@router.get("/leads/{lead_id}", tags=["leads"])
async def get_lead(lead_id: ResourceId, clients: Clients, principal: Caller) -> Lead:
    return to_model(Lead, await records.lead(clients, principal, lead_id))


@router.post("/leads/{lead_id}/convert", status_code=201, tags=["deals"])
async def convert_lead(
    lead_id: ResourceId, clients: Clients, principal: Caller, body: ConvertLeadIn | None = None
) -> Deal:
    await records.lead(clients, principal, lead_id)
    title = body.title if body else ""
    reply = await clients.leads.ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=lead_id, title=title))
    return to_model(Deal, reply.deal)


@router.get("/deals/{deal_id}", tags=["deals"])
async def get_deal(deal_id: ResourceId, clients: Clients, principal: Caller) -> Deal:
    return to_model(Deal, await records.deal(clients, principal, deal_id))


@router.post("/deals/{deal_id}/close", tags=["deals"])
async def close_deal(deal_id: ResourceId, body: CloseDealIn, clients: Clients, principal: Caller) -> Deal:
    await records.deal(clients, principal, deal_id)
    reply = await clients.leads.CloseDeal(body.to_proto(deal_id))
    return to_model(Deal, reply.deal)


@router.get("/sources", tags=["leads"])
async def list_sources(clients: Clients, principal: Caller) -> SourceList:
    reply = await read(clients.leads.ListSources, leads_pb2.ListSourcesRequest())
    return to_model(SourceList, reply)


# ---------------------------------------------------------------- orders


@router.get("/orders", tags=["orders"])
async def list_orders(
    clients: Clients, principal: Caller, deal_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> OrderList:
    """The orders department and service agents list every order; sales list a deal's orders."""
    if not records.authz.sees_every_order(principal):
        if not deal_id:
            raise forbidden("Sales roles list orders of one deal: give deal_id.")
        await records.deal(clients, principal, deal_id)
    reply = await read(
        clients.orders.ListOrders,
        orders_pb2.ListOrdersRequest(page_size=protoconv.page_size(page_size), page_token=page_token, deal_id=deal_id),
    )
    return to_model(OrderList, reply)


@router.get("/orders/{order_id}", tags=["orders"])
async def get_order(order_id: ResourceId, clients: Clients, principal: Caller) -> Order:
    return to_model(Order, await records.order(clients, principal, order_id))


@router.post("/orders/{order_id}/ship", tags=["orders"])
async def ship_order(order_id: ResourceId, body: ShipOrderIn, clients: Clients, principal: Caller) -> Order:
    reply = await clients.orders.ShipOrder(body.to_proto(order_id))
    return to_model(Order, reply.order)


# ---------------------------------------------------------------- customers


@router.get("/customers", tags=["customers"])
async def list_customers(
    clients: Clients, principal: Caller, lead_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> CustomerList:
    """The directory for managers, orders and service; a rep finds the customer of a lead they own."""
    if not records.authz.sees_every_customer(principal):
        if not lead_id:
            raise forbidden("Reps look customers up by a lead they own: give lead_id.")
        await records.lead(clients, principal, lead_id)
    reply = await read(
        clients.customers.ListCustomers,
        customers_pb2.ListCustomersRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, lead_id=lead_id
        ),
    )
    return to_model(CustomerList, reply)


@router.get("/customers/{customer_id}", tags=["customers"])
async def get_customer(customer_id: ResourceId, clients: Clients, principal: Caller) -> Customer:
    return to_model(Customer, await records.customer(clients, principal, customer_id))


@router.get("/customers/{customer_id}/timeline", tags=["customers"])
async def list_timeline(
    customer_id: ResourceId, clients: Clients, principal: Caller, page_size: PageSize = 0, page_token: PageToken = ""
) -> Timeline:
    await records.customer(clients, principal, customer_id)
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
    principal: Caller,
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
async def get_message(message_id: ResourceId, clients: Clients, principal: Caller) -> NotificationMessage:
    reply = await read(clients.notifications.GetMessage, notifications_pb2.GetMessageRequest(message_id=message_id))
    return to_model(NotificationMessage, reply.message)


# ---------------------------------------------------------------- reports


@router.get("/reports/sources", tags=["reports"])
async def source_report(
    clients: Clients,
    principal: Caller,
    start_time: Annotated[IsoDateTime | None, Query(description="ISO 8601; without a zone it is UTC")] = None,
    end_time: Annotated[IsoDateTime | None, Query(description="ISO 8601; without a zone it is UTC")] = None,
) -> SourceReport:
    reply = await read(
        clients.reporting.GetSourceReport,
        reporting_pb2.GetSourceReportRequest(start_time=to_timestamp(start_time), end_time=to_timestamp(end_time)),
    )
    return to_model(SourceReport, reply)


# ---------------------------------------------------------------- web-to-lead keys


@router.post("/web-form-keys", status_code=201, tags=["web forms"])
async def create_web_form_key(
    body: CreateWebFormKeyIn, clients: Clients, principal: Caller, request: Request
) -> WebFormKeyCreated:
    """A key for one public form, scoped to a source (and campaign). The secret and a ready-to-embed
    HTML form are in this response only: the key is stored hashed."""
    reply = await clients.leads.CreateWebFormKey(body.to_proto())
    settings: GatewaySettings = request.app.state.settings
    return WebFormKeyCreated(
        web_form_key=to_model(WebFormKey, reply.web_form_key),
        secret=reply.secret,
        html_snippet=html_snippet(settings.public_base_url, reply.secret),
    )


@router.get("/web-form-keys", tags=["web forms"])
async def list_web_form_keys(
    clients: Clients,
    principal: Caller,
    include_revoked: bool = False,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> WebFormKeyList:
    reply = await read(
        clients.leads.ListWebFormKeys,
        leads_pb2.ListWebFormKeysRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, include_revoked=include_revoked
        ),
    )
    return to_model(WebFormKeyList, reply)


@router.post("/web-form-keys/{key_id}/revoke", tags=["web forms"])
async def revoke_web_form_key(key_id: ResourceId, clients: Clients, principal: Caller) -> WebFormKey:
    """Submissions with the key are refused from now on."""
    reply = await clients.leads.RevokeWebFormKey(leads_pb2.RevokeWebFormKeyRequest(web_form_key_id=key_id))
    return to_model(WebFormKey, reply.web_form_key)


# ---------------------------------------------------------------- audit


@router.get("/audit-records", tags=["audit"])
async def list_audit_records(
    clients: Clients,
    principal: Caller,
    service: Literal["leads", "customers", "orders", "notifications", "reporting"],
    record_type: Annotated[str, Query(max_length=64)] = "",
    record_id: FilterId = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> AuditRecordList:
    """Who changed what in one service, newest first."""
    reply = await read(
        clients.audit[service].ListAuditRecords,
        audit_pb2.ListAuditRecordsRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            record_type=record_type,
            record_id=record_id,
            actor=actor,
        ),
    )
    return to_model(AuditRecordList, reply)
