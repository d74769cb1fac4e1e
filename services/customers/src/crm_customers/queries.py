"""Read side of customers: profiles, contact details, lead links and timelines, in the caller's unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from crm_customers.db import customer_leads, customers, timeline
from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page


@dataclass
class CustomerView:
    row: Any
    lead_ids: list[str]


def customer_not_found(customer_id: str) -> NotFound:
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


async def customer_by_email(uow: UnitOfWork, email: str) -> str | None:
    """The oldest customer with this (normalized) e-mail, or None."""
    return await _first_customer_where(uow, customers.c.email, email)


async def get_customer(uow: UnitOfWork, customer_id: str) -> CustomerView:
    row = (await uow.conn.execute(select(customers).where(customers.c.id == customer_id))).first()
    if row is None:
        raise customer_not_found(customer_id)
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
        raise customer_not_found(customer_id)
    return row


async def list_timeline(
    uow: UnitOfWork, customer_id: str, *, limit: int, after: tuple[Any, ...] | None
) -> tuple[list[Any], list[Any] | None]:
    """A page of a customer's touches in the order they happened."""
    exists = (await uow.conn.execute(select(customers.c.id).where(customers.c.id == customer_id))).scalar()
    if exists is None:
        raise customer_not_found(customer_id)
    query = select(timeline).where(timeline.c.customer_id == customer_id)
    return await keyset_page(uow.conn, query, timeline.c.occurred_at, timeline.c.id, limit=limit, after=after)
