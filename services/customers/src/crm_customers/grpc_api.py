"""CustomersService: proto ↔ application functions. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc

from crm.common.v1 import types_pb2
from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm_customers import audiences, commands, consent_proto, domain, list_store, queries
from crm_customers.consent_rules import ConsentRules
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, NotFound, require
from crm_kit.etags import etag
from crm_kit.protoconv import encode_page_token, from_timestamp, page_position, page_size, to_timestamp

# Every domain kind has its proto value of the same name (a unit test holds them together).
_TOUCH_KIND = {kind.value: customers_pb2.TouchKind.Value(f"TOUCH_KIND_{kind.name}") for kind in domain.TouchKind}
_KIND_OF_VALUE = {value: kind for kind, value in _TOUCH_KIND.items()}
_SEARCH_MATCH = {
    how: customers_pb2.SearchMatch.Value(f"SEARCH_MATCH_{how.upper()}")
    for how in ("phone", "email", "name", "name_prefix", "name_sounds_like")
}


def _record_id(value: Any) -> int:
    """A consent record id from a page token: a whole number a bigint column holds."""
    number = int(value)
    if not 0 <= number < 2**63:
        raise ValueError("out of range")
    return number


CONSENT_EXPORT_PAGE = 500
CONSENT_EXPORT_MAX_PAGE = 1000


def consent_to_proto(r: Any) -> customers_pb2.ConsentRecord:
    return customers_pb2.ConsentRecord(
        id=r.id,
        customer_id=r.customer_id,
        channel=consent_proto.channel(r.channel),
        purpose=consent_proto.purpose(r.purpose),
        granted=r.granted,
        source=consent_proto.source(r.source),
        evidence=r.evidence,
        actor=r.actor,
        occur_time=to_timestamp(r.occurred_at),
        record_time=to_timestamp(r.recorded_at),
    )


def state_to_proto(state: domain.ConsentState) -> customers_pb2.ConsentState:
    return customers_pb2.ConsentState(
        channel=consent_proto.channel(state.channel),
        purpose=consent_proto.purpose(state.purpose),
        granted=state.granted,
        record_id=state.record.id if state.record is not None else 0,
        since=to_timestamp(state.record.occurred_at) if state.record is not None else None,
    )


# Longer text is cut, not refused: nobody's name, number or address is longer.
MAX_QUERY_CHARS = 200
# One ranked page: a search is narrowed by typing more, not paged.
MAX_SEARCH_RESULTS = 50


def customer_to_proto(view: queries.CustomerView) -> customers_pb2.Customer:
    r = view.row
    return customers_pb2.Customer(
        id=r.id,
        full_name=r.full_name,
        phone_number=r.phone_number,
        email=r.email,
        locale=r.locale,
        lead_ids=view.lead_ids,
        create_time=to_timestamp(r.created_at),
        merged_into_customer_id=r.merged_into_id or "",
        etag=etag(r.row_version),
        tags=list(r.tags),
    )


def contact_to_proto(r: Any) -> customers_pb2.ContactPerson:
    return customers_pb2.ContactPerson(
        id=r.id,
        full_name=r.full_name,
        role=r.role,
        phone_number=r.phone_number,
        email=r.email,
        is_primary=r.is_primary,
        create_time=to_timestamp(r.created_at),
    )


def address_to_proto(r: Any) -> customers_pb2.Address:
    return customers_pb2.Address(
        id=r.id,
        kind=r.kind,
        line1=r.line1,
        line2=r.line2,
        city=r.city,
        postal_code=r.postal_code,
        country_code=r.country_code,
        create_time=to_timestamp(r.created_at),
    )


def entry_to_proto(row: Any) -> customers_pb2.TimelineEntry:
    return customers_pb2.TimelineEntry(
        id=str(row.id),
        kind=_TOUCH_KIND.get(row.kind, customers_pb2.TOUCH_KIND_UNSPECIFIED),
        summary=row.summary,
        channel=row.channel,
        event_id=row.event_id,
        occur_time=to_timestamp(row.occurred_at),
        facts={name: str(value) for name, value in (row.facts or {}).items()},
    )


def _audience(
    f: customers_pb2.AudienceFilter, channel: str, purpose: str, more: list[tuple[str, str]]
) -> domain.Audience:
    """The request's audience, or INVALID_ARGUMENT naming every wrong field (the request's own
    `more` too): a filter's field by its name (tags, currency_code, purchased_before…)."""
    found, problems = domain.audience(
        channel=channel,
        purpose=purpose,
        lists={name: getattr(f, name) for name in domain.AUDIENCE_LISTS},
        purchased_after=from_timestamp(f.purchased_after, f.HasField("purchased_after")),
        purchased_before=from_timestamp(f.purchased_before, f.HasField("purchased_before")),
        min_lifetime_value_minor=f.min_lifetime_value_minor,
        currency_code=f.currency_code,
        include_open_complaints=f.include_open_complaints,
        include_low_satisfaction=f.include_low_satisfaction,
        list_id=f.list_id,
        last_purchased_after=from_timestamp(f.last_purchased_after, f.HasField("last_purchased_after")),
        last_purchased_before=from_timestamp(f.last_purchased_before, f.HasField("last_purchased_before")),
        open_tickets=f.open_tickets,
    )
    if problems + more:
        raise InvalidArgument("the audience cannot be resolved", field_violations=problems + more)
    return found


async def _known_list(uow: Any, wanted: domain.Audience) -> None:
    """INVALID_ARGUMENT on list_id when the audience names a list that does not exist."""
    if wanted.list_id and not await list_store.exists(uow, wanted.list_id):
        raise InvalidArgument("no such audience list", field_violations=[("list_id", "no such audience list")])


def list_to_proto(row: Any, *, with_errors: bool = True) -> customers_pb2.AudienceList:
    return customers_pb2.AudienceList(
        id=row.id,
        name=row.name,
        members=row.members,
        lines=row.lines,
        error_count=row.error_count,
        errors=[customers_pb2.AudienceListError(**e) for e in row.errors] if with_errors else [],
        created_by=row.created_by,
        create_time=to_timestamp(row.created_at),
    )


def member_to_proto(member: audiences.Member) -> customers_pb2.AudienceMember:
    return customers_pb2.AudienceMember(
        customer_id=member.customer_id, full_name=member.full_name, address=member.address, locale=member.locale
    )


class CustomersServicer(customers_pb2_grpc.CustomersServiceServicer):
    def __init__(self, db: Database, consent_rules: ConsentRules) -> None:
        self.db = db
        self.consent_rules = consent_rules

    async def GetCustomer(
        self, request: customers_pb2.GetCustomerRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.GetCustomerResponse:
        require({"customer_id": request.customer_id})
        async with self.db.unit_of_work() as uow:
            view = await queries.get_customer(uow, request.customer_id)
        return customers_pb2.GetCustomerResponse(customer=customer_to_proto(view))

    async def ListCustomers(
        self, request: customers_pb2.ListCustomersRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.ListCustomersResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            views, next_key = await queries.list_customers(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                lead_id=request.lead_id,
            )
        return customers_pb2.ListCustomersResponse(
            customers=[customer_to_proto(v) for v in views],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def GetContactInfo(
        self, request: customers_pb2.GetContactInfoRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.GetContactInfoResponse:
        if not request.customer_id and not request.lead_id:
            raise InvalidArgument(
                "customer_id or lead_id is required",
                field_violations=[("customer_id", "customer_id or lead_id is required")],
            )
        async with self.db.unit_of_work() as uow:
            row = await queries.get_contact(uow, customer_id=request.customer_id, lead_id=request.lead_id)
        return customers_pb2.GetContactInfoResponse(
            customer_id=row.id,
            full_name=row.full_name,
            phone_number=row.phone_number,
            email=row.email,
            locale=row.locale,
            transactional_sms_allowed=domain.transactional_sms_allowed(
                opted_out=row.transactional_sms_opt_out, phone_number=row.phone_number
            ),
            marketing_sms_consent=row.marketing_sms_consent,
            transactional_email_allowed=domain.transactional_email_allowed(
                opted_out=row.transactional_email_opt_out, email=row.email
            ),
            marketing_email_consent=row.marketing_email_consent,
        )

    async def ListTimeline(
        self, request: customers_pb2.ListTimelineRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.ListTimelineResponse:
        require({"customer_id": request.customer_id})
        if unknown := [k for k in request.kinds if k not in _KIND_OF_VALUE]:
            raise InvalidArgument(
                f"unknown touch kinds {unknown}", field_violations=[("kinds", "a kind of TouchKind, not unspecified")]
            )
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_timeline(
                uow,
                request.customer_id,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, int),
                kinds=[_KIND_OF_VALUE[k] for k in request.kinds],
            )
        return customers_pb2.ListTimelineResponse(
            entries=[entry_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def MergeCustomers(
        self, request: customers_pb2.MergeCustomersRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.MergeCustomersResponse:
        require({"customer_id": request.customer_id, "duplicate_customer_id": request.duplicate_customer_id})
        async with self.db.unit_of_work() as uow:
            view = await commands.merge_customers(uow, request.customer_id, request.duplicate_customer_id)
        return customers_pb2.MergeCustomersResponse(customer=customer_to_proto(view))

    async def SearchCustomers(
        self, request: customers_pb2.SearchCustomersRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.SearchCustomersResponse:
        query = domain.parse_search(request.query[:MAX_QUERY_CHARS])
        limit = min(page_size(request.page_size), MAX_SEARCH_RESULTS)
        async with self.db.unit_of_work() as uow:
            found = await queries.search_customers(uow, query, limit=limit)
        return customers_pb2.SearchCustomersResponse(
            matches=[
                customers_pb2.CustomerMatch(customer=customer_to_proto(view), match=_SEARCH_MATCH[how])
                for view, how in found
            ]
        )

    async def UpdateCustomer(
        self, request: customers_pb2.UpdateCustomerRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.UpdateCustomerResponse:
        require({"customer.id": request.customer.id})
        c = request.customer
        values = {"full_name": c.full_name, "phone_number": c.phone_number, "email": c.email, "locale": c.locale}
        async with self.db.unit_of_work() as uow:
            view = await commands.update_customer(
                uow, c.id, list(request.update_mask.paths), values, request.etag, tags=list(c.tags)
            )
        return customers_pb2.UpdateCustomerResponse(customer=customer_to_proto(view))

    async def RecordConsent(
        self, request: customers_pb2.RecordConsentRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.RecordConsentResponse:
        require({"customer_id": request.customer_id})
        now = datetime.now(UTC)
        occurred = request.occur_time.ToDatetime(tzinfo=UTC) if request.HasField("occur_time") else now
        change = domain.consent_change(
            channel=consent_proto.channel_word(request.channel),
            purpose=consent_proto.purpose_word(request.purpose),
            granted=request.granted,
            source=consent_proto.source_word(request.source),
            evidence=request.evidence,
            occurred=occurred,
            now=now,
            rules=self.consent_rules,
        )
        async with self.db.unit_of_work() as uow:
            record, states = await commands.record_consent(
                uow, request.customer_id, change, occurred, self.consent_rules
            )
        return customers_pb2.RecordConsentResponse(
            record=consent_to_proto(record), states=[state_to_proto(s) for s in states]
        )

    async def ListConsents(
        self, request: customers_pb2.ListConsentsRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.ListConsentsResponse:
        require({"customer_id": request.customer_id})
        async with self.db.unit_of_work() as uow:
            await queries.get_customer(uow, request.customer_id)
            records = await queries.consent_records(uow, request.customer_id)
        return customers_pb2.ListConsentsResponse(
            records=[consent_to_proto(r) for r in records],
            states=[state_to_proto(s) for s in domain.consent_states(records, self.consent_rules)],
        )

    async def LogTouch(
        self, request: customers_pb2.LogTouchRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.LogTouchResponse:
        require({"customer_id": request.customer_id})
        now = datetime.now(UTC)
        occurred = request.occur_time.ToDatetime(tzinfo=UTC) if request.HasField("occur_time") else now
        domain.check_touch(
            kind=request.kind,
            text=request.text,
            outcome=request.outcome,
            duration_seconds=request.duration_seconds,
            occurred=occurred,
            now=now,
        )
        async with self.db.unit_of_work() as uow:
            row = await commands.log_touch(
                uow,
                request.customer_id,
                kind=request.kind,
                text=request.text.strip(),
                outcome=request.outcome,
                duration_seconds=request.duration_seconds,
                actor_name=request.actor_name[:200],
                occurred_at=occurred,
                request_id=request.request_id[:100],
            )
        return customers_pb2.LogTouchResponse(entry=entry_to_proto(row))

    async def GetCustomerSummary(
        self, request: customers_pb2.GetCustomerSummaryRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.GetCustomerSummaryResponse:
        require({"customer_id": request.customer_id})
        async with self.db.unit_of_work() as uow:
            await queries.get_customer(uow, request.customer_id)  # NOT_FOUND for no such customer
            row, totals, (surveys, satisfaction) = await queries.summary(uow, request.customer_id)
        return customers_pb2.GetCustomerSummaryResponse(
            summary=customers_pb2.CustomerSummary(
                customer_id=request.customer_id,
                lifetime_value=[types_pb2.Money(amount_minor=total, currency_code=code) for code, total in totals],
                touches=row.touches,
                surveys_answered=surveys,
                satisfaction_average=satisfaction,
                first_contact_time=to_timestamp(row.first_contact) if row.first_contact else None,
                last_contact_time=to_timestamp(row.last_contact) if row.last_contact else None,
                **{name: getattr(row, name) for name in queries.SUMMARY_COUNTS},
            )
        )

    async def ListConsentRecords(
        self, request: customers_pb2.ListConsentRecordsRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.ListConsentRecordsResponse:
        since = request.from_time.ToDatetime(tzinfo=UTC) if request.HasField("from_time") else None
        until = request.to_time.ToDatetime(tzinfo=UTC) if request.HasField("to_time") else None
        if since is not None and until is not None and until <= since:
            raise InvalidArgument(
                "the period ends before it starts", field_violations=[("to_time", "must be after from_time")]
            )
        limit = min(request.page_size or CONSENT_EXPORT_PAGE, CONSENT_EXPORT_MAX_PAGE)
        after = page_position(request.page_token, _record_id)
        async with self.db.unit_of_work() as uow:
            rows = await queries.consent_records_between(
                uow, since=since, until=until, after_id=after[0] if after else 0, limit=limit
            )
        return customers_pb2.ListConsentRecordsResponse(
            records=[
                customers_pb2.ExportedConsent(
                    record=consent_to_proto(r), full_name=r.full_name, phone_number=r.phone_number, email=r.email
                )
                for r in rows
            ],
            next_page_token=encode_page_token(rows[-1].id) if len(rows) == limit else "",
        )

    async def ListCustomerDetails(
        self, request: customers_pb2.ListCustomerDetailsRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.ListCustomerDetailsResponse:
        require({"customer_id": request.customer_id})
        async with self.db.unit_of_work() as uow:
            await queries.get_customer(uow, request.customer_id)
            contacts, addresses = await queries.customer_details(uow, request.customer_id)
        return customers_pb2.ListCustomerDetailsResponse(
            contact_persons=[contact_to_proto(r) for r in contacts],
            addresses=[address_to_proto(r) for r in addresses],
        )

    async def AddContactPerson(
        self, request: customers_pb2.AddContactPersonRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.AddContactPersonResponse:
        require({"customer_id": request.customer_id})
        c = request.contact_person
        async with self.db.unit_of_work() as uow:
            row = await commands.add_contact_person(
                uow,
                request.customer_id,
                lambda locale: domain.contact_person(
                    full_name=c.full_name,
                    role=c.role,
                    phone_number=c.phone_number,
                    email=c.email,
                    is_primary=c.is_primary,
                    locale=locale,
                ),
            )
        return customers_pb2.AddContactPersonResponse(contact_person=contact_to_proto(row))

    async def RemoveContactPerson(
        self, request: customers_pb2.RemoveContactPersonRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.RemoveContactPersonResponse:
        require({"customer_id": request.customer_id, "contact_person_id": request.contact_person_id})
        async with self.db.unit_of_work() as uow:
            await commands.remove_detail(uow, "contact_person", request.customer_id, request.contact_person_id)
        return customers_pb2.RemoveContactPersonResponse()

    async def AddAddress(
        self, request: customers_pb2.AddAddressRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.AddAddressResponse:
        require({"customer_id": request.customer_id})
        a = request.address
        new = domain.address(
            kind=a.kind,
            line1=a.line1,
            line2=a.line2,
            city=a.city,
            postal_code=a.postal_code,
            country_code=a.country_code,
        )
        async with self.db.unit_of_work() as uow:
            row = await commands.add_address(uow, request.customer_id, new)
        return customers_pb2.AddAddressResponse(address=address_to_proto(row))

    async def RemoveAddress(
        self, request: customers_pb2.RemoveAddressRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.RemoveAddressResponse:
        require({"customer_id": request.customer_id, "address_id": request.address_id})
        async with self.db.unit_of_work() as uow:
            await commands.remove_detail(uow, "address", request.customer_id, request.address_id)
        return customers_pb2.RemoveAddressResponse()

    async def CountAudience(
        self, request: customers_pb2.CountAudienceRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.CountAudienceResponse:
        wanted = _audience(
            request.filter, request.channel, request.purpose, domain.audience_sample(request.sample_size)
        )
        async with self.db.unit_of_work() as uow:
            await _known_list(uow, wanted)
            counted = await audiences.count(uow, wanted, request.sample_size)
        return customers_pb2.CountAudienceResponse(
            **counted.figures,
            reachable_by_locale=counted.reachable_by_locale,
            sample=[member_to_proto(m) for m in counted.sample],
        )

    async def ResolveAudience(
        self, request: customers_pb2.ResolveAudienceRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.ResolveAudienceResponse:
        limit, paging = domain.audience_page(request.page_size, request.after_customer_id)
        wanted = _audience(request.filter, request.channel, request.purpose, paging)
        async with self.db.unit_of_work() as uow:
            await _known_list(uow, wanted)
            # One more than the page: whether another follows, without an empty last call.
            members = await audiences.page(uow, wanted, limit=limit + 1, after=request.after_customer_id)
        return customers_pb2.ResolveAudienceResponse(
            members=[member_to_proto(m) for m in members[:limit]],
            next_after_customer_id=members[limit - 1].customer_id if len(members) > limit else "",
        )

    async def ImportAudienceList(
        self, request: customers_pb2.ImportAudienceListRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.ImportAudienceListResponse:
        async with self.db.unit_of_work() as uow:
            row = await commands.import_audience_list(
                uow,
                name=request.name,
                content=request.content,
                all_or_nothing=request.all_or_nothing,
                request_id=request.request_id,
            )
        return customers_pb2.ImportAudienceListResponse(list=list_to_proto(row))

    async def GetAudienceList(
        self, request: customers_pb2.GetAudienceListRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.GetAudienceListResponse:
        require({"list_id": request.list_id})
        async with self.db.unit_of_work() as uow:
            row = await list_store.get(uow, request.list_id)
        if row is None:
            raise NotFound(f"audience list {request.list_id} not found", reason="AUDIENCE_LIST_NOT_FOUND")
        return customers_pb2.GetAudienceListResponse(list=list_to_proto(row))

    async def ListAudienceLists(
        self, request: customers_pb2.ListAudienceListsRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.ListAudienceListsResponse:
        async with self.db.unit_of_work() as uow:
            rows, next_key = await list_store.page(
                uow,
                limit=page_size(request.page_size),
                after=page_position(request.page_token, datetime.fromisoformat, str),
            )
        return customers_pb2.ListAudienceListsResponse(
            lists=[list_to_proto(r, with_errors=False) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )
