"""Write side of customers: lead links, timeline entries and merges, each in the caller's unit of work.

Merge survivorship (docs/lead-acquisition.md): the survivor keeps its id, name and locale; an empty
phone number or e-mail is filled from the duplicate; the earliest creation time wins; timelines are
joined and the leads moved; consent is the stricter of the two (`domain.merged_consent`); the
duplicate stays as a tombstone (merged_into_id).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    Text,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.customers.v1 import events_pb2
from crm_customers import audience_lists, consent_proto, domain, list_store, queries
from crm_customers.consent_rules import ConsentRules
from crm_customers.db import (
    consents,
    customer_addresses,
    customer_contacts,
    customer_leads,
    customer_name_words,
    customer_purchases,
    customer_tickets,
    customers,
    timeline,
)
from crm_customers.metrics import CUSTOMERS_CREATED, CUSTOMERS_MERGED, TIMELINE_ENTRIES
from crm_kit import caller
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from crm_kit.etags import check_etag
from crm_kit.protoconv import to_timestamp


@dataclass(frozen=True)
class CapturedLead:
    """The contact details a LeadCaptured event carries."""

    lead_id: str
    full_name: str
    phone_number: str
    email: str
    locale: str
    # Where the lead came from: the customer's acquiring source when it is their earliest capture.
    source: str = ""


@dataclass(frozen=True)
class TimelineEntry:
    """A touch to record on a customer's timeline, once per event."""

    kind: domain.TouchKind
    summary: str
    channel: str
    event_id: str
    occurred_at: datetime
    facts: dict[str, str] = field(default_factory=dict)


# One statement for all of a capture's identities, taken in the array's (sorted) order.
_LOCK_KEYS = text(
    "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(k, n) ORDER BY n"
)


async def _lock_identities(uow: UnitOfWork, lead: CapturedLead) -> None:
    # Replicas may handle two captures of one person at once; transaction-scoped advisory locks
    # on the identities serialize them, so the second sees the first's customer. Sorted: no
    # deadlocks. Their own statement, before any look-up: a statement sees what was committed when
    # it started, so a look-up in the locking statement would miss the customer it waited for.
    keys = sorted(
        k for k in (f"lead:{lead.lead_id}", f"phone:{lead.phone_number}", f"email:{lead.email}") if not k.endswith(":")
    )
    await uow.conn.execute(_LOCK_KEYS, {"keys": keys})


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


async def _announce(uow: UnitOfWork, lead: CapturedLead, customer_id: str, now: datetime) -> None:
    """CustomerCreated for a customer this transaction created, counted once it commits."""
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


async def _fill_and_link(uow: UnitOfWork, lead: CapturedLead, customer_id: str) -> None:
    # A later lead may bring the contact point the profile lacked; never overwrite one.
    for column, value in (("phone_number", lead.phone_number), ("email", lead.email)):
        if value:
            await uow.conn.execute(
                update(customers)
                .where(customers.c.id == customer_id, customers.c[column] == "")
                .values({column: value})
            )
    await _link(uow, lead, customer_id)


async def _note_acquisition(uow: UnitOfWork, customer_id: str, source: str, captured_at: datetime) -> None:
    """The lead's source becomes the customer's acquiring source when it is their earliest capture."""
    await uow.conn.execute(
        update(customers)
        .where(
            customers.c.id == customer_id,
            or_(customers.c.acquired_at.is_(None), customers.c.acquired_at > captured_at),
        )
        .values(acquiring_source=source[: domain.MAX_SOURCE], acquired_at=captured_at)
    )


async def _link(uow: UnitOfWork, lead: CapturedLead, customer_id: str) -> None:
    await uow.conn.execute(
        pg_insert(customer_leads)
        # clock_timestamp, not now(): several leads linked in one transaction keep their order.
        .values(lead_id=lead.lead_id, customer_id=customer_id, linked_at=func.clock_timestamp())
        .on_conflict_do_nothing(index_elements=["lead_id"])
    )


def _capture_statement() -> Select[tuple[str | None, str | None, bool, bool]]:
    """The customer (matched or new) and the timeline entry for a captured lead as one statement (after the locks):
    match (lead link, else the oldest live customer by phone, then by e-mail), share-lock the
    match as live_customer does, create the customer when there is none, fill an empty phone or
    e-mail, link the lead and write the timeline entry. Built once, at import: a statement object
    keeps its cache key, so an event pays for neither building nor traversing it.

    Answers (customer_id, matched_id, created, entry_added). When the match turns out to be merged
    (a merge committed while the lock waited) it writes nothing and customer_id is null: the
    caller follows merged_into_id the long way (rare: merges are rare)."""
    # Parameters are named p_*: a DML statement (these CTEs too) would take any parameter named
    # like one of its table's columns as a value for that column.
    empty: ColumnElement[str] = literal_column("''")
    lead_id = bindparam("p_lead_id", type_=String)
    phone = bindparam("p_phone_number", type_=String)
    email = bindparam("p_email", type_=String)
    source = bindparam("p_source", type_=String)
    # The capture's time (the timeline entry's): the customer's acquisition when it is the earliest.
    captured_at = bindparam("p_occurred_at", type_=DateTime(timezone=True))

    def oldest_live(column: Any, value: Any) -> Any:
        # A merged customer is a tombstone: new leads go to the survivor (queries._first_customer_where).
        return (
            select(customers.c.id)
            .where(value != empty, column == value, customers.c.merged_into_id.is_(None))
            .order_by(customers.c.created_at, customers.c.id)
            .limit(literal_column("1"))
            .scalar_subquery()
        )

    linked = select(customer_leads.c.customer_id).where(customer_leads.c.lead_id == lead_id).scalar_subquery()
    # coalesce stops at the first non-null: the phone is looked up only without a link, and so on.
    matched = select(
        func.coalesce(
            linked, oldest_live(customers.c.phone_number, phone), oldest_live(customers.c.email, email)
        ).label("id")
    ).cte("matched")
    matched_id = select(matched.c.id).scalar_subquery()
    locked = (
        select(customers.c.id, customers.c.merged_into_id)
        .where(customers.c.id == matched_id)
        .with_for_update(read=True)
        .cte("locked")
    )
    created = (
        customers.insert()
        .from_select(
            ["id", "full_name", "phone_number", "email", "locale", "created_at", "acquiring_source", "acquired_at"],
            select(
                bindparam("p_new_id", type_=String),
                bindparam("p_full_name", type_=String),
                phone,
                email,
                bindparam("p_locale", type_=String),
                bindparam("p_created_at", type_=DateTime(timezone=True)),
                source,
                captured_at,
            ).where(matched_id.is_(None)),
        )
        .returning(customers.c.id)
        .cte("created")
    )
    # The words a new customer is searched by (domain.name_words), numbered from 1.
    spelled = (
        func.unnest(bindparam("p_words", type_=ARRAY(String)), bindparam("p_skeletons", type_=ARRAY(String)))
        .table_valued("word", "skeleton", with_ordinality="position")
        .render_derived(name="spelled")
    )
    named = (
        customer_name_words.insert()
        .from_select(
            ["customer_id", "position", "word", "skeleton", "created_at"],
            select(
                created.c.id,
                spelled.c.position,
                spelled.c.word,
                spelled.c.skeleton,
                bindparam("p_created_at", type_=DateTime(timezone=True)),
            ).select_from(created.join(spelled, true())),
        )
        .cte("named")
    )
    # A later lead may bring the contact point the profile lacked; never overwrite one. A lead
    # captured before the customer's first known one (an import of old leads, a lagging consumer)
    # is their acquisition.
    earlier = or_(customers.c.acquired_at.is_(None), customers.c.acquired_at > captured_at)
    filled = (
        update(customers)
        .where(
            customers.c.id == locked.c.id,
            locked.c.merged_into_id.is_(None),
            or_(
                and_(customers.c.phone_number == empty, phone != empty),
                and_(customers.c.email == empty, email != empty),
                earlier,
            ),
        )
        .values(
            phone_number=case((customers.c.phone_number == empty, phone), else_=customers.c.phone_number),
            email=case((customers.c.email == empty, email), else_=customers.c.email),
            acquiring_source=case((earlier, source), else_=customers.c.acquiring_source),
            acquired_at=case((earlier, captured_at), else_=customers.c.acquired_at),
        )
        .cte("filled")
    )
    target = select(
        func.coalesce(
            select(created.c.id).scalar_subquery(),
            select(locked.c.id).where(locked.c.merged_into_id.is_(None)).scalar_subquery(),
        ).label("id")
    ).cte("target")
    link = (
        pg_insert(customer_leads)
        .from_select(
            ["lead_id", "customer_id", "linked_at"],
            # clock_timestamp, not now(): several leads linked in one transaction keep their order.
            select(lead_id, target.c.id, func.clock_timestamp()).where(target.c.id.is_not(None)),
        )
        .on_conflict_do_nothing(index_elements=["lead_id"])
        .cte("link")
    )
    entry = (
        pg_insert(timeline)
        .from_select(
            ["customer_id", "kind", "summary", "channel", "event_id", "occurred_at", "facts"],
            select(
                target.c.id,
                bindparam("p_kind", type_=String),
                bindparam("p_summary", type_=Text),
                bindparam("p_channel", type_=String),
                bindparam("p_event_id", type_=String),
                bindparam("p_occurred_at", type_=DateTime(timezone=True)),
                bindparam("p_facts", type_=JSONB),
            ).where(target.c.id.is_not(None)),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(timeline.c.id)
        .cte("entry")
    )
    return select(
        select(target.c.id).scalar_subquery().label("customer_id"),
        matched_id.label("matched_id"),
        exists(select(created.c.id)).label("created"),
        exists(select(entry.c.id)).label("entry_added"),
    ).add_cte(filled, link, named)


_CAPTURE = _capture_statement()


async def capture_lead(uow: UnitOfWork, lead: CapturedLead, entry: TimelineEntry) -> tuple[str, bool]:
    """Attach a captured lead to its customer (matched by lead, phone or e-mail, else new; the
    missing contact point filled) and add the capture's timeline entry, in two statements (the
    identity locks, then everything else) where it took eight to eleven.

    Returns (customer_id, created)."""
    await _lock_identities(uow, lead)
    spelled = domain.name_words(lead.full_name)
    now = datetime.now(UTC)
    new_id = str(uuid.uuid4())
    row = (
        await uow.conn.execute(
            _CAPTURE,
            {
                "p_lead_id": lead.lead_id,
                "p_phone_number": lead.phone_number,
                "p_email": lead.email,
                "p_new_id": new_id,
                "p_full_name": lead.full_name,
                "p_words": [w.word for w in spelled],
                "p_skeletons": [w.skeleton for w in spelled],
                "p_locale": lead.locale,
                "p_created_at": now,
                "p_kind": entry.kind.value,
                "p_summary": entry.summary,
                "p_channel": entry.channel,
                "p_event_id": entry.event_id,
                "p_occurred_at": entry.occurred_at,
                "p_facts": entry.facts,
                "p_source": lead.source[: domain.MAX_SOURCE],
            },
        )
    ).one()
    if row.customer_id is None:
        # The match was merged meanwhile; nothing was written: follow it to the survivor.
        customer_id = await live_customer(uow, row.matched_id)
        await _fill_and_link(uow, lead, customer_id)
        await _note_acquisition(uow, customer_id, lead.source, entry.occurred_at)
        await add_timeline_entry(
            uow,
            customer_id=customer_id,
            kind=entry.kind,
            summary=entry.summary,
            channel=entry.channel,
            event_id=entry.event_id,
            occurred_at=entry.occurred_at,
            facts=entry.facts,
        )
        return customer_id, False
    if row.created:
        await _announce(uow, lead, row.customer_id, now)
    if row.entry_added:
        uow.after_commit(TIMELINE_ENTRIES.labels(entry.kind.value).inc)
    return row.customer_id, row.created


async def add_timeline_entry(
    uow: UnitOfWork,
    *,
    customer_id: str,
    kind: domain.TouchKind,
    summary: str,
    channel: str,
    event_id: str,
    occurred_at: datetime,
    facts: dict[str, str] | None = None,
) -> bool:
    """Record a touch (its English summary and its facts); False if the event already made its entry."""
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
            facts=facts or {},
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
        .values(
            **filled,
            **consent,
            **domain.merged_facts(survivor, duplicate),
            created_at=min(survivor.created_at, duplicate.created_at),
        )
    )
    moved_entries = await _move_history(uow, survivor_id, duplicate_id)
    moved_leads = (
        await uow.conn.execute(
            update(customer_leads)
            .where(customer_leads.c.customer_id == duplicate_id)
            .values(customer_id=survivor_id)
            .returning(customer_leads.c.lead_id)
        )
    ).all()
    await uow.conn.execute(update(customers).where(customers.c.id == duplicate_id).values(merged_into_id=survivor_id))
    # A tombstone is not found by a search; the survivor ranks by its (possibly earlier) creation.
    await uow.conn.execute(delete(customer_name_words).where(customer_name_words.c.customer_id == duplicate_id))
    await uow.conn.execute(
        update(customer_name_words)
        .where(customer_name_words.c.customer_id == survivor_id)
        .values(created_at=min(survivor.created_at, duplicate.created_at))
    )
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


async def _move_history(uow: UnitOfWork, survivor_id: str, duplicate_id: str) -> int:
    """The duplicate's timeline, purchases, tickets and list memberships become the survivor's (its
    lifetime value, purchases and open complaints count for the survivor, and a list that named
    the duplicate names the survivor). Returns the timeline entries moved."""
    moved = await uow.conn.execute(
        update(timeline).where(timeline.c.customer_id == duplicate_id).values(customer_id=survivor_id)
    )
    for table in (customer_purchases, customer_tickets):
        await uow.conn.execute(update(table).where(table.c.customer_id == duplicate_id).values(customer_id=survivor_id))
    await list_store.move_members(uow, duplicate_id, survivor_id)
    return int(moved.rowcount)


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


# ---------------------------------------------------------------- profile edits


async def _live_for_change(uow: UnitOfWork, customer_id: str) -> Any:
    """The customer's row, locked for a change; a merged customer is changed through its survivor
    (FAILED_PRECONDITION naming it), an unknown one is NOT_FOUND."""
    row = (await uow.conn.execute(select(customers).where(customers.c.id == customer_id).with_for_update())).first()
    if row is None:
        raise queries.customer_not_found(customer_id)
    if row.merged_into_id:
        raise FailedPrecondition(
            f"customer {customer_id} was merged into {row.merged_into_id}: change that customer",
            reason="CUSTOMER_MERGED",
            metadata={"customer_id": customer_id, "merged_into_customer_id": row.merged_into_id},
        )
    return row


async def update_customer(
    uow: UnitOfWork,
    customer_id: str,
    mask: list[str],
    values: dict[str, str],
    etag: str,
    *,
    tags: Sequence[str] = (),
) -> queries.CustomerView:
    """Change the profile fields the mask names, on the version the caller read (etag), in one
    transaction: the row, its search words when the name changes, the audit record (field names
    only: no names, numbers or addresses in the audit log)."""
    row = await _live_for_change(uow, customer_id)
    check_etag(etag, row.row_version, f"customer {customer_id}")
    changes = domain.profile_changes(mask, values, row, tags)
    await uow.conn.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(**changes, row_version=customers.c.row_version + 1)
    )
    if "full_name" in changes and changes["full_name"] != row.full_name:
        await uow.conn.execute(delete(customer_name_words).where(customer_name_words.c.customer_id == customer_id))
        spelled = domain.name_words(changes["full_name"])
        if spelled:
            await uow.conn.execute(
                customer_name_words.insert(),
                [
                    {
                        "customer_id": customer_id,
                        "position": i,
                        "word": w.word,
                        "skeleton": w.skeleton,
                        "created_at": row.created_at,
                    }
                    for i, w in enumerate(spelled, start=1)
                ],
            )
    uow.audit("customers.UpdateCustomer", "customer", customer_id, {"fields": sorted(changes)})
    return await queries.get_customer(uow, customer_id)


# ---------------------------------------------------------------- contact persons and addresses

_DETAILS = {
    "contact_person": (customer_contacts, domain.MAX_CONTACTS),
    "address": (customer_addresses, domain.MAX_ADDRESSES),
}


async def _room_for(uow: UnitOfWork, customer_id: str, what: str) -> Any:
    """The live customer (locked), when it has room for one more contact person or address."""
    row = await _live_for_change(uow, customer_id)
    table, limit = _DETAILS[what]
    count = (await uow.conn.execute(select(func.count()).where(table.c.customer_id == customer_id))).scalar_one()
    if count >= limit:
        raise FailedPrecondition(
            f"a customer has at most {limit} of these",
            reason="CUSTOMER_DETAILS_FULL",
            field_violations=[(what, f"at most {limit}: remove one first")],
        )
    return row


async def add_contact_person(uow: UnitOfWork, customer_id: str, make: Callable[[str], domain.ContactPerson]) -> Any:
    """Add a contact person (validated in the customer's locale); a primary one makes the others not."""
    row = await _room_for(uow, customer_id, "contact_person")
    person = make(row.locale)
    if person.is_primary:
        await uow.conn.execute(
            update(customer_contacts).where(customer_contacts.c.customer_id == customer_id).values(is_primary=False)
        )
    added = (
        await uow.conn.execute(
            customer_contacts.insert()
            .values(customer_id=customer_id, **dataclasses.asdict(person))
            .returning(customer_contacts)
        )
    ).one()
    uow.audit("customers.AddContactPerson", "customer", customer_id, {"contact_person_id": added.id})
    return added


async def add_address(uow: UnitOfWork, customer_id: str, new: domain.Address) -> Any:
    await _room_for(uow, customer_id, "address")
    added = (
        await uow.conn.execute(
            customer_addresses.insert()
            .values(customer_id=customer_id, **dataclasses.asdict(new))
            .returning(customer_addresses)
        )
    ).one()
    uow.audit("customers.AddAddress", "customer", customer_id, {"address_id": added.id, "kind": new.kind})
    return added


async def remove_detail(uow: UnitOfWork, what: str, customer_id: str, detail_id: int) -> None:
    """Remove a contact person or an address of the customer; NOT_FOUND when it has none by that id."""
    await _live_for_change(uow, customer_id)
    table, _ = _DETAILS[what]
    gone = await uow.conn.execute(
        delete(table).where(table.c.customer_id == customer_id, table.c.id == detail_id).returning(table.c.id)
    )
    if gone.first() is None:
        raise NotFound(f"no {what} {detail_id} of customer {customer_id}", reason="CUSTOMER_DETAIL_NOT_FOUND")
    uow.audit(f"customers.Remove{what.title().replace('_', '')}", "customer", customer_id, {f"{what}_id": detail_id})


# ---------------------------------------------------------------- consent


async def record_consent(
    uow: UnitOfWork, customer_id: str, change: domain.ConsentChange, occurred_at: datetime, rules: ConsentRules
) -> tuple[Any, list[domain.ConsentState]]:
    """Append a consent record and apply it at once, in one transaction: the SMS and e-mail flags on
    the customer row (GetContactInfo reads them for every message), a timeline entry, ConsentChanged
    for whoever sends messages, and the audit record (no values but the consent's own)."""
    await _live_for_change(uow, customer_id)
    who = caller.current()
    record = (
        await uow.conn.execute(
            consents.insert()
            .values(
                customer_id=customer_id,
                channel=change.channel,
                purpose=change.purpose,
                granted=change.granted,
                source=change.source,
                evidence=change.evidence,
                actor=who.actor if who else caller.SYSTEM_ACTOR,
                occurred_at=occurred_at,
            )
            .returning(consents)
        )
    ).one()
    states = domain.consent_states(await queries.consent_records(uow, customer_id), rules)
    await uow.conn.execute(
        update(customers).where(customers.c.id == customer_id).values(**domain.consent_flags(states))
    )
    await add_timeline_entry(
        uow,
        customer_id=customer_id,
        kind=domain.TouchKind.CONSENT_CHANGED,
        summary=domain.consent_summary(change),
        channel=change.channel,
        event_id=f"consent-{record.id}",
        occurred_at=occurred_at,
        facts={
            "channel": change.channel,
            "purpose": change.purpose,
            "granted": "yes" if change.granted else "no",
            "source": change.source,
        },
    )
    await uow.record_event(
        events_pb2.ConsentChanged(
            customer_id=customer_id,
            channel=consent_proto.channel(change.channel),
            purpose=consent_proto.purpose(change.purpose),
            granted=change.granted,
            source=consent_proto.source(change.source),
            occur_time=to_timestamp(occurred_at),
            record_id=record.id,
        ),
        time=occurred_at,
    )
    details = {"channel": change.channel, "purpose": change.purpose, "granted": change.granted}
    uow.audit("customers.RecordConsent", "customer", customer_id, {**details, "source": change.source})
    return record, states


# ---------------------------------------------------------------- touches logged on the customer


async def log_touch(
    uow: UnitOfWork,
    customer_id: str,
    *,
    kind: str,
    text: str,
    outcome: str,
    duration_seconds: int,
    actor_name: str,
    occurred_at: datetime,
    request_id: str,
) -> Any:
    """A touch an agent logged on the customer's timeline (its English summary and its facts), once
    per request id; audited by kind only (the text stays on the timeline)."""
    await _live_for_change(uow, customer_id)
    who = caller.current()
    actor = who.actor if who else caller.SYSTEM_ACTOR
    # The entry's key: one entry per request (a retried POST finds it), else a fresh one.
    event_id = f"touch-{customer_id}-{request_id}"[:64] if request_id else f"touch-{uuid.uuid4()}"
    touch_kind, channel, _ = domain.ACTIVITY_TOUCHES[kind]
    added = await add_timeline_entry(
        uow,
        customer_id=customer_id,
        kind=touch_kind,
        summary=domain.activity_summary(
            kind=kind,
            outcome=outcome,
            summary=text,
            actor=actor,
            duration_seconds=duration_seconds,
            actor_name=actor_name,
        ),
        channel=channel,
        event_id=event_id,
        occurred_at=occurred_at,
        facts=domain.facts(
            outcome=outcome, duration_seconds=duration_seconds or "", who=actor_name.strip() or actor, text=text
        ),
    )
    if added:
        uow.audit("customers.LogTouch", "customer", customer_id, {"kind": kind})
    return await queries.timeline_entry(uow, event_id)


# ---------------------------------------------------------------- the facts audiences filter on


async def record_purchases(
    uow: UnitOfWork,
    customer_id: str,
    *,
    deal_id: str,
    product_line: str,
    lines: Sequence[domain.PurchaseLine],
    closed_at: datetime,
) -> None:
    """A won deal's lines as purchases of the (live) customer, once: the deal and line are the key."""
    if not lines:
        return
    customer_id = await live_customer(uow, customer_id)
    await uow.conn.execute(
        pg_insert(customer_purchases)
        .values(
            [
                {
                    "deal_id": deal_id,
                    "line": line.line,
                    "customer_id": customer_id,
                    "sku": line.sku,
                    "description": line.description,
                    "product_line": product_line.strip()[: domain.MAX_PRODUCT_LINE],
                    "amount_minor": line.amount_minor,
                    "currency_code": line.currency_code,
                    "closed_at": closed_at,
                }
                for line in lines
            ]
        )
        .on_conflict_do_nothing(index_elements=["deal_id", "line"])
    )


async def track_ticket(
    uow: UnitOfWork,
    customer_id: str,
    *,
    ticket_id: str,
    kind: str,
    opened_at: datetime | None = None,
    resolved_at: datetime | None = None,
) -> None:
    """A ticket of the (live) customer opened or resolved. Either may come first (a dead letter's
    replay comes late): the row keeps the earliest opening and the latest resolution, so a ticket
    is open only while no resolution is known."""
    customer_id = await live_customer(uow, customer_id)
    t = customer_tickets
    insert = pg_insert(t).values(
        ticket_id=ticket_id,
        customer_id=customer_id,
        kind=kind[:30],
        opened_at=opened_at,
        resolved_at=resolved_at,
    )
    await uow.conn.execute(
        insert.on_conflict_do_update(
            index_elements=["ticket_id"],
            set_={
                "opened_at": func.least(t.c.opened_at, insert.excluded.opened_at),
                "resolved_at": func.greatest(t.c.resolved_at, insert.excluded.resolved_at),
                # The latest word on the kind: a resolution's, else what there was.
                "kind": insert.excluded.kind if resolved_at is not None else t.c.kind,
            },
        )
    )


async def note_survey(uow: UnitOfWork, customer_id: str, *, score: int, answered_at: datetime) -> None:
    """A satisfaction score becomes the (live) customer's latest, unless a later one is known."""
    customer_id = await live_customer(uow, customer_id)
    await uow.conn.execute(
        update(customers)
        .where(
            customers.c.id == customer_id,
            or_(customers.c.latest_survey_at.is_(None), customers.c.latest_survey_at <= answered_at),
        )
        .values(latest_survey_score=score, latest_survey_at=answered_at)
    )


async def consent_by_address(
    uow: UnitOfWork, change: domain.ConsentChange, address: str, occurred_at: datetime, rules: ConsentRules
) -> list[str]:
    """A refusal that came by an address (a reply from a number, an e-mail's unsubscribe link), or
    a re-subscribe by a reply (Iran's 12): recorded for every live customer with that address whose
    consent is not that already. Returns their ids."""
    column = customers.c.phone_number if change.channel == "sms" else customers.c.email
    flag = customers.c.marketing_sms_consent if change.channel == "sms" else customers.c.marketing_email_consent
    ids = (
        (
            await uow.conn.execute(
                select(customers.c.id)
                .where(column == address, customers.c.merged_into_id.is_(None), flag.is_distinct_from(change.granted))
                .order_by(customers.c.id)
            )
        )
        .scalars()
        .all()
    )
    for customer_id in ids:
        await record_consent(uow, customer_id, change, occurred_at, rules)
    return list(ids)


async def import_audience_list(
    uow: UnitOfWork, *, name: str, content: bytes, all_or_nothing: bool, request_id: str
) -> Any:
    """A static audience list from a CSV file (see `audience_lists`): its lines matched to live
    customers and stored with the lines that matched none; a repeated request_id returns the first
    list. INVALID_ARGUMENT on name or content, and, with all_or_nothing, naming the wrong lines."""
    cleaned = " ".join(name.split())
    if not 0 < len(cleaned) <= audience_lists.MAX_NAME:
        raise InvalidArgument("the list needs a name", field_violations=[("name", "1 to 200 characters")])
    if len(request_id) > 200:
        raise InvalidArgument("request_id is too long", field_violations=[("request_id", "at most 200 characters")])
    earlier = await list_store.by_request(uow, request_id)
    if earlier is not None:
        return earlier
    try:
        keys, unreadable = audience_lists.read(content)
    except audience_lists.UnreadableList as exc:
        raise InvalidArgument(str(exc), field_violations=[("content", str(exc))]) from exc
    matched = await list_store.match(uow, keys)
    errors = sorted(unreadable + audience_lists.unmatched(keys, matched), key=lambda e: e.line_number)
    if errors and all_or_nothing:
        raise InvalidArgument(
            f"{len(errors)} line(s) name no customer or cannot be read: no list was made",
            field_violations=[(f"lines[{e.line_number}].{e.field}", e.message) for e in errors[:20]],
        )
    who = caller.current()
    row = await list_store.create(
        uow,
        name=cleaned,
        customer_ids={customer for found in matched.values() for customer in found},
        lines=len(keys) + len(unreadable),
        errors=errors,
        created_by=who.actor if who else caller.SYSTEM_ACTOR,
        request_id=request_id,
        at=datetime.now(UTC),
    )
    if row is None:  # the same request, made by a concurrent retry meanwhile
        return await list_store.by_request(uow, request_id)
    uow.audit("customers.ImportAudienceList", "audience_list", row.id, {"members": row.members, "lines": row.lines})
    return row
