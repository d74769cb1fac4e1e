"""Write side of customers: lead links, timeline entries and merges, each in the caller's unit of work.

Merge survivorship (docs/lead-acquisition.md): the survivor keeps its id, name and locale; an empty
phone number or e-mail is filled from the duplicate; the earliest creation time wins; timelines are
joined and the leads moved; consent is the stricter of the two (`domain.merged_consent`); the
duplicate stays as a tombstone (merged_into_id).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.customers.v1 import events_pb2
from crm_customers import domain, queries
from crm_customers.db import customer_leads, customers, timeline
from crm_customers.metrics import CUSTOMERS_CREATED, CUSTOMERS_MERGED, TIMELINE_ENTRIES
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_kit.protoconv import to_timestamp


@dataclass(frozen=True)
class CapturedLead:
    """The contact details a LeadCaptured event carries."""

    lead_id: str
    full_name: str
    phone_number: str
    email: str
    locale: str


async def _lock_identities(uow: UnitOfWork, lead: CapturedLead) -> None:
    # Replicas may handle two captures of one person at once; transaction-scoped advisory locks
    # on the identities serialize them, so the second sees the first's customer. Sorted: no deadlocks.
    keys = sorted(
        k for k in (f"lead:{lead.lead_id}", f"phone:{lead.phone_number}", f"email:{lead.email}") if not k.endswith(":")
    )
    for key in keys:
        await uow.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


async def _match_customer(uow: UnitOfWork, lead: CapturedLead) -> str | None:
    return (
        await queries.customer_for_lead(uow, lead.lead_id)
        or await queries.customer_by_phone(uow, lead.phone_number)
        or await queries.customer_by_email(uow, lead.email)
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


async def merge_customers(
    uow: UnitOfWork, survivor_id: str, duplicate_id: str, *, field: str = "duplicate_customer_id"
) -> queries.CustomerView:
    """Merge duplicate_id into survivor_id (survivorship: see the module docstring)."""
    if survivor_id == duplicate_id:
        raise InvalidArgument(
            "a customer cannot be merged into itself", field_violations=[(field, "must differ from the survivor")]
        )
    rows = {
        r.id: r
        for r in (
            await uow.conn.execute(
                select(customers)
                .where(customers.c.id.in_([survivor_id, duplicate_id]))
                .order_by(customers.c.id)
                .with_for_update()
            )
        ).all()
    }
    for customer_id in (survivor_id, duplicate_id):
        row = rows.get(customer_id)
        if row is None:
            raise queries.customer_not_found(customer_id)
        if row.merged_into_id:
            raise FailedPrecondition(
                f"customer {customer_id} is already merged into {row.merged_into_id}",
                reason="CUSTOMER_ALREADY_MERGED",
                metadata={"customer_id": customer_id, "merged_into_customer_id": row.merged_into_id},
            )
    survivor, duplicate = rows[survivor_id], rows[duplicate_id]
    filled = {
        name: getattr(duplicate, name)
        for name in ("phone_number", "email")
        if getattr(duplicate, name) and not getattr(survivor, name)
    }
    consent = domain.merged_consent(survivor, duplicate)
    await uow.conn.execute(
        update(customers)
        .where(customers.c.id == survivor_id)
        .values(**filled, **consent, created_at=min(survivor.created_at, duplicate.created_at))
    )
    moved_entries = (
        await uow.conn.execute(
            update(timeline).where(timeline.c.customer_id == duplicate_id).values(customer_id=survivor_id)
        )
    ).rowcount
    moved_leads = (
        await uow.conn.execute(
            update(customer_leads)
            .where(customer_leads.c.customer_id == duplicate_id)
            .values(customer_id=survivor_id)
            .returning(customer_leads.c.lead_id)
        )
    ).all()
    await uow.conn.execute(update(customers).where(customers.c.id == duplicate_id).values(merged_into_id=survivor_id))
    # No names, numbers or addresses in the audit log: field names and ids only.
    uow.audit(
        "customers.MergeCustomers",
        "customer",
        survivor_id,
        {
            "merged_customer_id": duplicate_id,
            "filled_fields": sorted(filled),
            "moved_lead_ids": sorted(r.lead_id for r in moved_leads),
            "moved_timeline_entries": moved_entries,
            **consent,
        },
    )
    uow.audit("customers.MergedInto", "customer", duplicate_id, {"survivor_customer_id": survivor_id})
    uow.after_commit(CUSTOMERS_MERGED.inc)
    return await queries.get_customer(uow, survivor_id)


async def merge_customers_of_leads(uow: UnitOfWork, survivor_customer: str, duplicate_customer: str) -> bool:
    """After a lead merge: join the two leads' customers (if they are two live ones). False when
    there was nothing to do."""
    if survivor_customer == duplicate_customer:
        return False
    live = (
        await uow.conn.execute(
            select(customers.c.id).where(
                customers.c.id.in_([survivor_customer, duplicate_customer]), customers.c.merged_into_id.is_(None)
            )
        )
    ).all()
    if len(live) != 2:
        return False
    await merge_customers(uow, survivor_customer, duplicate_customer)
    return True
