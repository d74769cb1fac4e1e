"""Application layer of customers: each function runs in the caller's unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.customers.v1 import events_pb2
from crm_customers import domain
from crm_customers.db import customer_leads, customers, timeline
from crm_customers.metrics import CUSTOMERS_CREATED, TIMELINE_ENTRIES
from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_kit.protoconv import to_timestamp


@dataclass
class CustomerView:
    row: Any
    lead_ids: list[str]


@dataclass(frozen=True)
class CapturedLead:
    """The contact details a LeadCaptured event carries."""

    lead_id: str
    full_name: str
    phone_number: str
    email: str
    locale: str


def _customer_not_found(customer_id: str) -> NotFound:
    return NotFound(
        f"customer {customer_id} not found", reason="CUSTOMER_NOT_FOUND", metadata={"customer_id": customer_id}
    )


async def _lead_ids(uow: UnitOfWork, customer_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {cid: [] for cid in customer_ids}
    if not customer_ids:
        return found
    rows = await uow.conn.execute(
        select(customer_leads.c.customer_id, customer_leads.c.lead_id)
        .where(customer_leads.c.customer_id.in_(customer_ids))
        .order_by(customer_leads.c.linked_at, customer_leads.c.lead_id)
    )
    for customer_id, lead_id in rows:
        found[customer_id].append(lead_id)
    return found


async def customer_for_lead(uow: UnitOfWork, lead_id: str) -> str | None:
    """The id of the customer a lead is linked to, or None while the lead is unknown."""
    return (
        await uow.conn.execute(select(customer_leads.c.customer_id).where(customer_leads.c.lead_id == lead_id))
    ).scalar()


async def get_customer(uow: UnitOfWork, customer_id: str) -> CustomerView:
    row = (await uow.conn.execute(select(customers).where(customers.c.id == customer_id))).first()
    if row is None:
        raise _customer_not_found(customer_id)
    return CustomerView(row=row, lead_ids=(await _lead_ids(uow, [customer_id]))[customer_id])


async def list_customers(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, lead_id: str
) -> tuple[list[CustomerView], list[Any] | None]:
    """A page of customers by creation time; with lead_id, only the customer that lead belongs to."""
    query = select(customers).where(customers.c.merged_into_id.is_(None))
    if lead_id:
        query = query.where(
            customers.c.id.in_(select(customer_leads.c.customer_id).where(customer_leads.c.lead_id == lead_id))
        )
    page, next_key = await keyset_page(
        uow.conn, query, customers.c.created_at, customers.c.id, limit=limit, after=after
    )
    lead_ids = await _lead_ids(uow, [r.id for r in page])
    return [CustomerView(row=r, lead_ids=lead_ids[r.id]) for r in page], next_key


async def get_contact(uow: UnitOfWork, *, customer_id: str, lead_id: str) -> Any:
    """The customer row by its id, or else by the id of a lead linked to it."""
    if not customer_id:
        found = await customer_for_lead(uow, lead_id)
        if found is None:
            raise NotFound(
                f"lead {lead_id} is not linked to a customer", reason="LEAD_NOT_FOUND", metadata={"lead_id": lead_id}
            )
        customer_id = found
    row = (await uow.conn.execute(select(customers).where(customers.c.id == customer_id))).first()
    if row is None:
        raise _customer_not_found(customer_id)
    return row


async def list_timeline(
    uow: UnitOfWork, customer_id: str, *, limit: int, after: tuple[Any, ...] | None
) -> tuple[list[Any], list[Any] | None]:
    """A page of a customer's touches in the order they happened."""
    exists = (await uow.conn.execute(select(customers.c.id).where(customers.c.id == customer_id))).scalar()
    if exists is None:
        raise _customer_not_found(customer_id)
    query = select(timeline).where(timeline.c.customer_id == customer_id)
    return await keyset_page(uow.conn, query, timeline.c.occurred_at, timeline.c.id, limit=limit, after=after)


async def _lock_identities(uow: UnitOfWork, lead: CapturedLead) -> None:
    # Replicas may handle two captures of one person at once; transaction-scoped advisory locks
    # on the identities serialize them, so the second sees the first's customer. Sorted: no deadlocks.
    keys = sorted(
        k for k in (f"lead:{lead.lead_id}", f"phone:{lead.phone_number}", f"email:{lead.email}") if not k.endswith(":")
    )
    for key in keys:
        await uow.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


async def _first_customer_where(uow: UnitOfWork, column: Any, value: str) -> str | None:
    if not value:
        return None
    found = (
        await uow.conn.execute(
            select(customers.c.id)
            # A merged customer is a tombstone: new leads go to the survivor.
            .where(column == value, customers.c.merged_into_id.is_(None))
            .order_by(customers.c.created_at, customers.c.id)
            .limit(1)
        )
    ).scalar()
    return str(found) if found else None


async def customer_by_phone(uow: UnitOfWork, phone_number: str) -> str | None:
    """The oldest customer with this E.164 number, or None."""
    return await _first_customer_where(uow, customers.c.phone_number, phone_number)


async def _match_customer(uow: UnitOfWork, lead: CapturedLead) -> str | None:
    return (
        await customer_for_lead(uow, lead.lead_id)
        or await customer_by_phone(uow, lead.phone_number)
        or await _first_customer_where(uow, customers.c.email, lead.email)
    )


_MAX_MERGE_HOPS = 10


async def live_customer(uow: UnitOfWork, customer_id: str) -> str:
    """The customer a change for customer_id lands on: itself, or the one it was merged into.

    The row is share-locked to the end of the transaction: a merge (which locks both customers
    FOR UPDATE first) either waits for this change and then moves what it wrote, or has committed
    and this change follows merged_into_id — a timeline entry or lead link never lands on a
    tombstone.
    """
    for _ in range(_MAX_MERGE_HOPS):
        merged_into = (
            await uow.conn.execute(
                select(customers.c.merged_into_id).where(customers.c.id == customer_id).with_for_update(read=True)
            )
        ).scalar()
        if not merged_into:
            return customer_id
        customer_id = merged_into
    return customer_id


async def attach_lead(uow: UnitOfWork, lead: CapturedLead) -> tuple[str, bool]:
    """Link a captured lead to its customer: matched by phone, then e-mail, else created.

    Returns (customer_id, created). A new customer is announced with CustomerCreated.
    """
    await _lock_identities(uow, lead)
    customer_id = await _match_customer(uow, lead)
    if customer_id is not None:
        customer_id = await live_customer(uow, customer_id)
    created = customer_id is None
    if customer_id is None:
        customer_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        await uow.conn.execute(
            customers.insert().values(
                id=customer_id,
                full_name=lead.full_name,
                phone_number=lead.phone_number,
                email=lead.email,
                locale=lead.locale,
                created_at=now,
            )
        )
        await uow.record_event(
            events_pb2.CustomerCreated(
                customer_id=customer_id,
                lead_id=lead.lead_id,
                full_name=lead.full_name,
                phone_number=lead.phone_number,
                locale=lead.locale,
                create_time=to_timestamp(now),
            ),
            time=now,
        )
        uow.after_commit(CUSTOMERS_CREATED.inc)
    else:
        # A later lead may bring the contact point the profile lacked; never overwrite one.
        for column, value in (("phone_number", lead.phone_number), ("email", lead.email)):
            if value:
                await uow.conn.execute(
                    update(customers)
                    .where(customers.c.id == customer_id, customers.c[column] == "")
                    .values({column: value})
                )
    await uow.conn.execute(
        pg_insert(customer_leads)
        # clock_timestamp, not now(): several leads linked in one transaction keep their order.
        .values(lead_id=lead.lead_id, customer_id=customer_id, linked_at=func.clock_timestamp())
        .on_conflict_do_nothing(index_elements=["lead_id"])
    )
    return customer_id, created


async def add_timeline_entry(
    uow: UnitOfWork,
    *,
    customer_id: str,
    kind: domain.TouchKind,
    summary: str,
    channel: str,
    event_id: str,
    occurred_at: datetime,
) -> bool:
    """Record a touch; False if the event already made its entry."""
    customer_id = await live_customer(uow, customer_id)
    inserted = await uow.conn.execute(
        pg_insert(timeline)
        .values(
            customer_id=customer_id,
            kind=kind.value,
            summary=summary,
            channel=channel,
            event_id=event_id,
            occurred_at=occurred_at,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(timeline.c.id)
    )
    if inserted.first() is None:
        return False
    uow.after_commit(TIMELINE_ENTRIES.labels(kind.value).inc)
    return True
