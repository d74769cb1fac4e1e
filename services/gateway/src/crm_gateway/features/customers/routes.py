"""/customers: the company's directory for managers, orders and service; a rep the customers of
leads they own (crm_gateway.records). A customer's timeline; merging a duplicate customer."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import grpc
from fastapi import HTTPException, Path, Query, Response

from crm.customers.v1 import customers_pb2
from crm.sales.v1 import deals_pb2
from crm.support.v1 import support_pb2
from crm_gateway import records
from crm_gateway.convert import Money, enum_value, message_to_dict, to_model, with_etag
from crm_gateway.deps import (
    Caller,
    Clients,
    FilterId,
    IfMatch,
    PageSize,
    PageToken,
    ResourceId,
    api_router,
    etag_of,
    forbidden,
)
from crm_gateway.features.customers.schemas import (
    Address,
    AddressIn,
    AddressList,
    Consents,
    ContactPerson,
    ContactPersonIn,
    ContactPersonList,
    Customer,
    CustomerList,
    CustomerSummary,
    LogTouchIn,
    MergeCustomersIn,
    MergedCustomer,
    OpenDeal,
    RecordConsentIn,
    RecordedConsent,
    Timeline,
    TimelineEntry,
    TouchKind,
    UpdateCustomerIn,
)
from crm_gateway.platform import authz
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()
log = logging.getLogger(__name__)


@router.get("/customers", tags=["customers"], operation_id="listCustomers")
async def list_customers(
    clients: Clients, principal: Caller, lead_id: FilterId = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> CustomerList:
    """The directory for managers, orders and service; a rep finds the customer of a lead they own."""
    if not authz.sees_every_customer(principal):
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


@router.get("/customers/{customer_id}", tags=["customers"], operation_id="getCustomer")
async def get_customer(customer_id: ResourceId, clients: Clients, principal: Caller, response: Response) -> Customer:
    return with_etag(Customer, await records.customer(clients, principal, customer_id), response)


@router.patch("/customers/{customer_id}", tags=["customers"], operation_id="updateCustomer")
async def update_customer(
    customer_id: ResourceId,
    body: UpdateCustomerIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Customer:
    """Change the profile fields the body names (full name, phone number, e-mail, locale), on the
    version read: If-Match is required (428 without; * for any version), 412 when someone changed
    the profile since. Every department edits the one profile; a rep only their own customers."""
    etag = etag_of(if_match, required=True)
    if not body.model_fields_set:
        raise HTTPException(422, "Name at least one field to change.")
    await records.customer(clients, principal, customer_id)
    reply = await clients.customers.UpdateCustomer(body.to_proto(customer_id, etag))
    return with_etag(Customer, reply.customer, response)


@router.get("/customers/{customer_id}/timeline", tags=["customers"], operation_id="listCustomerTimeline")
async def list_timeline(
    customer_id: ResourceId,
    clients: Clients,
    principal: Caller,
    page_size: PageSize = 0,
    page_token: PageToken = "",
    kind: Annotated[list[TouchKind] | None, Query(max_length=20, description="Only these kinds (repeat it)")] = None,
) -> Timeline:
    """The customer's touches in the order they happened; with kind, only those kinds."""
    await records.customer(clients, principal, customer_id)
    reply = await read(
        clients.customers.ListTimeline,
        customers_pb2.ListTimelineRequest(
            customer_id=customer_id,
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            kinds=[enum_value(customers_pb2.TouchKind, k) for k in kind or []],
        ),
    )
    return to_model(Timeline, reply)


@router.post("/customers/{customer_id}/merge", tags=["duplicates"], operation_id="mergeCustomers")
async def merge_customers(
    customer_id: ResourceId, body: MergeCustomersIn, clients: Clients, principal: Caller
) -> MergedCustomer:
    """Merge duplicate_customer_id into this customer: timelines joined, leads moved, the stricter
    consent kept; the duplicate stays readable with merged_into_customer_id. 409 when either is
    already merged."""
    await records.customer(clients, principal, customer_id)
    await records.customer(clients, principal, body.duplicate_customer_id)
    reply = await clients.customers.MergeCustomers(
        customers_pb2.MergeCustomersRequest(customer_id=customer_id, duplicate_customer_id=body.duplicate_customer_id)
    )
    return to_model(MergedCustomer, reply.customer)


@router.get("/customers/{customer_id}/consents", tags=["customers"], operation_id="listCustomerConsents")
async def list_consents(customer_id: ResourceId, clients: Clients, principal: Caller) -> Consents:
    """The customer's consent history (newest first, with who recorded each and its evidence) and
    the state in force per channel and purpose: the record a regulator asks for."""
    await records.customer(clients, principal, customer_id)
    reply = await read(clients.customers.ListConsents, customers_pb2.ListConsentsRequest(customer_id=customer_id))
    return to_model(Consents, reply)


@router.post(
    "/customers/{customer_id}/consents",
    tags=["customers"],
    operation_id="recordCustomerConsent",
    status_code=201,
)
async def record_consent(
    customer_id: ResourceId, body: RecordConsentIn, clients: Clients, principal: Caller
) -> RecordedConsent:
    """Record a consent given or withdrawn for one channel and purpose; it takes effect at once."""
    await records.customer(clients, principal, customer_id)
    reply = await clients.customers.RecordConsent(body.to_proto(customer_id))
    return to_model(RecordedConsent, reply)


@router.post("/customers/{customer_id}/touches", tags=["customers"], operation_id="logCustomerTouch", status_code=201)
async def log_touch(customer_id: ResourceId, body: LogTouchIn, clients: Clients, principal: Caller) -> TimelineEntry:
    """Log a call, meeting, note, e-mail or SMS with the customer on their timeline, as the caller
    (the timeline names them by their subject)."""
    await records.customer(clients, principal, customer_id)
    reply = await clients.customers.LogTouch(body.to_proto(customer_id))
    return to_model(TimelineEntry, reply.entry)


@router.get("/customers/{customer_id}/summary", tags=["customers"], operation_id="getCustomerSummary")
async def get_customer_summary(customer_id: ResourceId, clients: Clients, principal: Caller) -> CustomerSummary:
    """The customer 360's figures: lifetime value, deals won and lost, orders shipped, messages,
    tickets and satisfaction, first and last contact; the open deals of the customer's leads that
    the caller may see; the open tickets now (null when the service desk is down: the profile
    still shows)."""
    customer = await records.customer(clients, principal, customer_id)
    reply, deals, tickets = await asyncio.gather(
        read(clients.customers.GetCustomerSummary, customers_pb2.GetCustomerSummaryRequest(customer_id=customer_id)),
        asyncio.gather(*(_open_deal(clients, principal, lead_id) for lead_id in customer.lead_ids[:20])),
        _open_tickets(clients, customer_id),
    )
    open_deals = [d.model_dump() for d in deals if d is not None]
    return CustomerSummary.model_validate(
        {**message_to_dict(reply.summary), "open_deals": open_deals, "open_tickets": tickets}
    )


async def _open_deal(clients: Clients, principal: Caller, lead_id: str) -> OpenDeal | None:
    """The lead's deal when it is open and the caller may read it (else None, like no deal)."""
    try:
        lead = await records.lead(clients, principal, lead_id)
        if not lead.deal_id:
            return None
        deal = await records.deal(clients, principal, lead.deal_id)
    except HTTPException:
        return None
    if deal.status != deals_pb2.DEAL_STATUS_OPEN:
        return None
    return OpenDeal(
        id=deal.id,
        title=deal.title,
        stage_id=deal.stage_id,
        amount=to_model(Money, deal.amount) if deal.HasField("amount") else None,
        owner_rep_id=deal.owner_rep_id,
    )


async def _open_tickets(clients: Clients, customer_id: str) -> int | None:
    """How many of the customer's tickets are open (new, open, pending customer), up to 100."""
    request = support_pb2.ListTicketsRequest(
        reach=support_pb2.TicketReach(customer_id=customer_id),
        statuses=[
            support_pb2.TICKET_STATUS_NEW,
            support_pb2.TICKET_STATUS_OPEN,
            support_pb2.TICKET_STATUS_PENDING_CUSTOMER,
        ],
        page_size=100,
    )
    try:
        reply = await read(clients.support.ListTickets, request)
    except grpc.aio.AioRpcError as exc:
        log.warning("open tickets unavailable for a customer summary", extra={"code": exc.code().name})
        return None
    return len(reply.tickets)


DetailId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/customers/{customer_id}/contact-persons", tags=["customers"], operation_id="listContactPersons")
async def list_contact_persons(customer_id: ResourceId, clients: Clients, principal: Caller) -> ContactPersonList:
    """A business customer's people, the primary one first."""
    await records.customer(clients, principal, customer_id)
    reply = await read(
        clients.customers.ListCustomerDetails, customers_pb2.ListCustomerDetailsRequest(customer_id=customer_id)
    )
    return ContactPersonList(contact_persons=[to_model(ContactPerson, p) for p in reply.contact_persons])


@router.post(
    "/customers/{customer_id}/contact-persons", status_code=201, tags=["customers"], operation_id="addContactPerson"
)
async def add_contact_person(
    customer_id: ResourceId, body: ContactPersonIn, clients: Clients, principal: Caller
) -> ContactPerson:
    """Add a contact person (a primary one makes the others not primary); 409 at 50."""
    await records.customer(clients, principal, customer_id)
    reply = await records.change(
        "customer", customer_id, clients.customers.AddContactPerson, body.to_proto(customer_id)
    )
    return to_model(ContactPerson, reply.contact_person)


@router.delete(
    "/customers/{customer_id}/contact-persons/{contact_person_id}",
    status_code=204,
    tags=["customers"],
    operation_id="removeContactPerson",
)
async def remove_contact_person(
    customer_id: ResourceId, contact_person_id: DetailId, clients: Clients, principal: Caller
) -> Response:
    await records.customer(clients, principal, customer_id)
    await records.change(
        "contact person",
        str(contact_person_id),
        clients.customers.RemoveContactPerson,
        customers_pb2.RemoveContactPersonRequest(customer_id=customer_id, contact_person_id=contact_person_id),
    )
    return Response(status_code=204)


@router.get("/customers/{customer_id}/addresses", tags=["customers"], operation_id="listAddresses")
async def list_addresses(customer_id: ResourceId, clients: Clients, principal: Caller) -> AddressList:
    await records.customer(clients, principal, customer_id)
    reply = await read(
        clients.customers.ListCustomerDetails, customers_pb2.ListCustomerDetailsRequest(customer_id=customer_id)
    )
    return AddressList(addresses=[to_model(Address, a) for a in reply.addresses])


@router.post("/customers/{customer_id}/addresses", status_code=201, tags=["customers"], operation_id="addAddress")
async def add_address(customer_id: ResourceId, body: AddressIn, clients: Clients, principal: Caller) -> Address:
    """Add a billing, shipping, home, office or other address; 409 at 20."""
    await records.customer(clients, principal, customer_id)
    reply = await records.change("customer", customer_id, clients.customers.AddAddress, body.to_proto(customer_id))
    return to_model(Address, reply.address)


@router.delete(
    "/customers/{customer_id}/addresses/{address_id}", status_code=204, tags=["customers"], operation_id="removeAddress"
)
async def remove_address(
    customer_id: ResourceId, address_id: DetailId, clients: Clients, principal: Caller
) -> Response:
    await records.customer(clients, principal, customer_id)
    await records.change(
        "address",
        str(address_id),
        clients.customers.RemoveAddress,
        customers_pb2.RemoveAddressRequest(customer_id=customer_id, address_id=address_id),
    )
    return Response(status_code=204)
