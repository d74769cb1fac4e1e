"""Read side of customers: profiles, contact details, lead links and timelines, in the caller's unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Integer, func, select, text
from sqlalchemy.dialects.postgresql import distinct_on

from crm_customers.db import consents, customer_addresses, customer_contacts, customer_leads, customers, timeline
from crm_customers.domain import SearchKind, SearchQuery
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


async def customer_exists(uow: UnitOfWork, customer_id: str) -> bool:
    """Whether a profile of this id exists (merged into another included)."""
    return (await uow.conn.execute(select(customers.c.id).where(customers.c.id == customer_id))).first() is not None


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
    uow: UnitOfWork, customer_id: str, *, limit: int, after: tuple[Any, ...] | None, kinds: list[str] | None = None
) -> tuple[list[Any], list[Any] | None]:
    """A page of a customer's touches in the order they happened; with kinds, only those."""
    exists = (await uow.conn.execute(select(customers.c.id).where(customers.c.id == customer_id))).scalar()
    if exists is None:
        raise customer_not_found(customer_id)
    query = select(timeline).where(timeline.c.customer_id == customer_id)
    if kinds:
        query = query.where(timeline.c.kind.in_(kinds))
    return await keyset_page(uow.conn, query, timeline.c.occurred_at, timeline.c.id, limit=limit, after=after)


# ---------------------------------------------------------------- search

# A query word meets a customer's word exactly (3), as the prefix of one (2: the last word, while
# typing) or by its consonant skeleton (1: another spelling). Every query word must meet one of
# the customer's words; customers rank by the sum of their best meetings, then newest first. Only
# live customers have words (a merge deletes the duplicate's). One fixed statement whatever the
# number of words (arrays, not a list per size).
_NAME_SEARCH = text(
    """
    WITH q AS (
        SELECT * FROM unnest(CAST(:words AS text[]), CAST(:skeletons AS text[]), CAST(:uppers AS text[]))
            WITH ORDINALITY AS q(word, skeleton, upper, i)
    ), hits AS (
        -- Three lookups, each an index scan per query word (an OR of them in one join read every
        -- word of the table).
        SELECT w.customer_id, w.created_at, q.i, 3 AS score
        FROM q JOIN customer_name_words w ON w.word = q.word COLLATE "C"
        UNION ALL
        SELECT w.customer_id, w.created_at, q.i, 2
        FROM q JOIN customer_name_words w
          ON q.upper <> '' AND w.word >= q.word COLLATE "C" AND w.word < q.upper COLLATE "C"
        UNION ALL
        SELECT w.customer_id, w.created_at, q.i, 1
        FROM q JOIN customer_name_words w
          ON q.skeleton <> '' AND w.skeleton <> '' AND w.skeleton = q.skeleton COLLATE "C"
    ), best AS (
        SELECT customer_id, created_at, i, max(score) AS score FROM hits GROUP BY customer_id, created_at, i
    )
    SELECT customer_id, sum(score) AS score, min(score) AS weakest
    FROM best
    GROUP BY customer_id, created_at
    HAVING count(*) = :n
    ORDER BY score DESC, created_at DESC, customer_id
    LIMIT :limit
    """
)
_MATCH_BY_WEAKEST = {3: "name", 2: "name_prefix", 1: "name_sounds_like"}
EXACT_SCAN_ROWS = 2_000

# The first try: customers with every word exactly as typed, newest first. A customer matched
# that way outranks any other (the sum of best meetings is the highest there is), so when these
# fill the page they are the answer, read from the driving word's newest rows (the word index is
# ordered by creation) with one primary-key probe each for the other words, until the page is
# full — instead of gathering every row of every word. The longest word drives: the longer, the
# rarer, as a rule. At most EXACT_SCAN_ROWS of its rows are tried: a page not full by then is a
# rare combination of common words, which the full search answers (a window read newest first
# that fills the page holds the newest exact matches, so the answer is the same).
_EXACT_SEARCH = text(
    """
    SELECT a.customer_id
    FROM (
        SELECT customer_id, created_at FROM customer_name_words
        WHERE word = :driver COLLATE "C"
        ORDER BY created_at DESC, customer_id
        LIMIT :scan
    ) a
    WHERE (SELECT count(DISTINCT q.i)
           FROM unnest(CAST(:words AS text[])) WITH ORDINALITY AS q(word, i)
           JOIN customer_name_words b ON b.customer_id = a.customer_id AND b.word = q.word COLLATE "C") = :n
    ORDER BY a.created_at DESC, a.customer_id
    LIMIT :limit
    """
)


async def search_customers(uow: UnitOfWork, query: SearchQuery, *, limit: int) -> list[tuple[CustomerView, str]]:
    """Live customers matching a search, best first, each with how it matched: phone, email,
    name (every word as typed, folded), name_prefix or name_sounds_like."""
    if query.kind is SearchKind.NAME:
        words = query.words
        exact = await _exact_matches(uow, [w.word for w in words], limit)
        if len(exact) == limit:
            return await _views(uow, dict.fromkeys(exact, "name"))
        ranked = (
            await uow.conn.execute(
                _NAME_SEARCH,
                {
                    "words": [w.word for w in words],
                    "skeletons": [w.skeleton for w in words],
                    # Only the last word is a prefix (it is the one being typed), and not a single letter.
                    "uppers": ["" for _ in words[:-1]] + [query.prefix_upper if len(words[-1].word) > 1 else ""],
                    "n": len(words),
                    "limit": limit,
                },
            )
        ).all()
        matches = {r.customer_id: _MATCH_BY_WEAKEST[r.weakest] for r in ranked}
    elif not query.values:  # digits that are no one's phone number
        return []
    else:
        column = customers.c.phone_number if query.kind is SearchKind.PHONE else customers.c.email
        found = await uow.conn.execute(
            select(customers.c.id)
            .where(column.in_(query.values), customers.c.merged_into_id.is_(None))
            .order_by(customers.c.created_at.desc(), customers.c.id)
            .limit(limit)
        )
        matches = {row.id: query.kind.value for row in found}
    return await _views(uow, matches)


async def _exact_matches(uow: UnitOfWork, words: list[str], limit: int) -> list[str]:
    """Up to `limit` customers having every word, newest first (a name with a word twice is one)."""
    found = await uow.conn.execute(
        _EXACT_SEARCH,
        {
            "driver": max(words, key=len),
            "words": words,
            "n": len(words),
            "limit": limit,
            "scan": EXACT_SCAN_ROWS,
        },
    )
    return list(dict.fromkeys(row.customer_id for row in found))


async def _views(uow: UnitOfWork, matches: dict[str, str]) -> list[tuple[CustomerView, str]]:
    """The customers of `matches` (id → how it matched), in its order."""
    if not matches:
        return []
    rows = {r.id: r for r in await uow.conn.execute(select(customers).where(customers.c.id.in_(list(matches))))}
    lead_ids = await _lead_ids(uow, list(matches))
    return [(CustomerView(row=rows[cid], lead_ids=lead_ids[cid]), how) for cid, how in matches.items()]


async def consent_records(uow: UnitOfWork, customer_id: str) -> list[Any]:
    """A customer's consent history, newest first (by when it happened, then as recorded)."""
    return list(
        await uow.conn.execute(
            select(consents)
            .where(consents.c.customer_id == customer_id)
            .order_by(consents.c.occurred_at.desc(), consents.c.id.desc())
        )
    )


async def timeline_entry(uow: UnitOfWork, event_id: str) -> Any:
    """The timeline entry an event (or a logged touch's request) made."""
    return (await uow.conn.execute(select(timeline).where(timeline.c.event_id == event_id))).one()


# The kinds a summary counts, by the name of the count.
SUMMARY_COUNTS = {
    "deals_won": "deal_won",
    "deals_lost": "deal_lost",
    "orders_shipped": "order_shipped",
    "messages_sent": "sms_sent",
    "tickets_opened": "ticket_opened",
}


async def summary(uow: UnitOfWork, customer_id: str) -> tuple[Any, list[tuple[str, int]], tuple[int, float]]:
    """The customer's timeline added up (one row of counts, first and last contact, mean score),
    and the won deals' totals per currency. Both read the customer's entries by its index."""
    counts = [func.count().filter(timeline.c.kind == kind).label(name) for name, kind in SUMMARY_COUNTS.items()]
    row = (
        await uow.conn.execute(
            select(
                func.count().label("touches"),
                func.min(timeline.c.occurred_at).label("first_contact"),
                func.max(timeline.c.occurred_at).label("last_contact"),
                *counts,
            ).where(timeline.c.customer_id == customer_id)
        )
    ).one()
    # A corrected score replaces the first: the latest answer per ticket counts, as in support.
    ticket = timeline.c.facts["ticket_id"].astext
    latest = (
        select(timeline.c.facts["score"].astext.cast(Integer).label("score"))
        .where(timeline.c.customer_id == customer_id, timeline.c.kind == "survey_answered")
        .ext(distinct_on(ticket))
        .order_by(ticket, timeline.c.occurred_at.desc(), timeline.c.id.desc())
        .subquery()
    )
    surveys = (await uow.conn.execute(select(func.count(), func.avg(latest.c.score)))).one()
    currency = timeline.c.facts["currency_code"].astext
    totals = await uow.conn.execute(
        select(currency, func.sum(timeline.c.facts["amount_minor"].astext.cast(BigInteger)))
        .where(timeline.c.customer_id == customer_id, timeline.c.kind == "deal_won")
        .group_by(currency)
        .order_by(currency)
    )
    return row, [(str(code), int(total)) for code, total in totals if code], (int(surveys[0]), float(surveys[1] or 0))


async def consent_records_between(uow: UnitOfWork, *, since: Any, until: Any, after_id: int, limit: int) -> list[Any]:
    """Consent records of every customer recorded in [since, until), by id (the order recorded),
    after the keyset position after_id, with each customer's name and contacts as they are now."""
    query = (
        select(consents, customers.c.full_name, customers.c.phone_number, customers.c.email)
        .join(customers, customers.c.id == consents.c.customer_id)
        .where(consents.c.id > after_id)
        .order_by(consents.c.id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(consents.c.recorded_at >= since)
    if until is not None:
        query = query.where(consents.c.recorded_at < until)
    return list(await uow.conn.execute(query))


async def customer_details(uow: UnitOfWork, customer_id: str) -> tuple[list[Any], list[Any]]:
    """The customer's contact persons (the primary first, then as added) and addresses (as added)."""
    contacts = await uow.conn.execute(
        select(customer_contacts)
        .where(customer_contacts.c.customer_id == customer_id)
        .order_by(customer_contacts.c.is_primary.desc(), customer_contacts.c.id)
    )
    addresses = await uow.conn.execute(
        select(customer_addresses)
        .where(customer_addresses.c.customer_id == customer_id)
        .order_by(customer_addresses.c.id)
    )
    return list(contacts), list(addresses)
