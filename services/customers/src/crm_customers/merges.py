"""Merging two customer profiles of one person, in the caller's unit of work.

Survivorship (docs/lead-acquisition.md): the survivor keeps its id, name and locale; an empty phone
number or e-mail is filled from the duplicate; the earliest creation time wins; timelines are
joined and the leads moved; consent is the stricter of the two (an opt-out on either wins, marketing
consent only if both gave it); the duplicate stays as a tombstone (merged_into_id).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from crm_customers import commands
from crm_customers.db import customer_leads, customers, timeline
from crm_customers.metrics import CUSTOMERS_MERGED
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition, InvalidArgument, NotFound


def merged_consent(survivor: Any, duplicate: Any) -> dict[str, bool]:
    """An opt-out on either wins; marketing only with both profiles' consent."""
    return {
        "transactional_sms_opt_out": bool(survivor.transactional_sms_opt_out or duplicate.transactional_sms_opt_out),
        "marketing_sms_consent": bool(survivor.marketing_sms_consent and duplicate.marketing_sms_consent),
    }


async def merge_customers(
    uow: UnitOfWork, survivor_id: str, duplicate_id: str, *, field: str = "duplicate_customer_id"
) -> commands.CustomerView:
    """Merge duplicate_id into survivor_id (see the module docstring)."""
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
            raise NotFound(
                f"customer {customer_id} not found",
                reason="CUSTOMER_NOT_FOUND",
                metadata={"customer_id": customer_id},
            )
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
    consent = merged_consent(survivor, duplicate)
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
    return await commands.get_customer(uow, survivor_id)


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
