"""Reading duplicates: the lead with a contact point, leads sharing a name key, review pairs and
the incomplete-records list. Each lookup is an index equality or range (see the plans in tests)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, func, literal_column, or_, select, union

from crm_kit import names
from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_leads.db import leads, possible_duplicates
from crm_leads.leads import queries as lead_queries
from crm_leads.leads.queries import LeadView

# Name-only matches recorded per capture: the most recent ones (a common name would otherwise pair
# a new lead with thousands).
MAX_NAME_CANDIDATES = 5
# Survivors are never merged leads, so a chain is as long as the merges made after each other.
MAX_MERGE_HOPS = 50

_EMPTY: Any = literal_column("''")


def contact_query(column: str, value: str) -> Select[Any]:
    """The oldest lead with this phone number or e-mail (an index equality)."""
    return (
        select(leads.c.id, leads.c.merged_into_id)
        # The literal '' (not a bind parameter) lets even a generic plan use the partial index.
        .where(leads.c[column] == value, leads.c[column] != _EMPTY)
        .order_by(leads.c.created_at, leads.c.id)
        .limit(1)
    )


async def survivor_of(uow: UnitOfWork, lead_id: str, merged_into: str | None) -> str:
    """The live lead a (possibly merged) lead's person is now: follow merged_into to the survivor."""
    for _ in range(MAX_MERGE_HOPS):
        if not merged_into:
            break
        lead_id = merged_into
        merged_into = (await uow.conn.execute(select(leads.c.merged_into_id).where(leads.c.id == lead_id))).scalar()
    return str(lead_id)


def name_candidates_query(lead_id: str, keys: names.NameKeys) -> Select[Any] | None:
    """The newest live leads other than lead_id sharing a name key; None when the name has no key.

    One branch per key, each reading the newest few entries of its (key, created_at, id) index
    backwards: the cost does not grow with how many leads share a common name (משה כהן may have
    thousands), which an OR over plain key indexes did (a bitmap of every match, then a sort).
    """
    branches = [
        select(
            leads.c.id, leads.c.name_key, leads.c.name_compact, leads.c.name_skeleton, leads.c.city, leads.c.created_at
        )
        .where(column == value, column != _EMPTY, leads.c.id != lead_id, leads.c.merged_into_id.is_(None))
        .order_by(column, leads.c.created_at.desc(), leads.c.id.desc())
        .limit(MAX_NAME_CANDIDATES)
        for column, value in (
            (leads.c.name_key, keys.key),
            (leads.c.name_compact, keys.compact),
            (leads.c.name_skeleton, keys.skeleton),
        )
        if value
    ]
    if not branches:
        return None
    found = union(*branches).subquery()
    return (
        select(found.c.id, found.c.name_key, found.c.name_compact, found.c.name_skeleton, found.c.city)
        .order_by(found.c.created_at.desc(), found.c.id.desc())
        .limit(MAX_NAME_CANDIDATES)
    )


def open_pairs_of(lead_id: str) -> Any:
    """Condition: pairs that name lead_id on either side."""
    return or_(possible_duplicates.c.lead_id == lead_id, possible_duplicates.c.other_lead_id == lead_id)


def pair_of(a: str, b: str) -> Any:
    return or_(
        and_(possible_duplicates.c.lead_id == a, possible_duplicates.c.other_lead_id == b),
        and_(possible_duplicates.c.lead_id == b, possible_duplicates.c.other_lead_id == a),
    )


def _pair_not_found(pair_id: str) -> NotFound:
    return NotFound(
        f"possible duplicate {pair_id} not found",
        reason="POSSIBLE_DUPLICATE_NOT_FOUND",
        metadata={"possible_duplicate_id": pair_id},
    )


async def get_pair(uow: UnitOfWork, pair_id: str) -> Any:
    row = (await uow.conn.execute(select(possible_duplicates).where(possible_duplicates.c.id == pair_id))).first()
    if row is None:
        raise _pair_not_found(pair_id)
    return row


async def list_pairs(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, status: str, team_id: str, lead_id: str
) -> tuple[list[Any], list[Any] | None]:
    """Pairs of one status, newest first; with team_id only pairs of two leads of that team."""
    query = select(possible_duplicates).where(possible_duplicates.c.status == status)
    if team_id:
        team_leads = select(leads.c.id).where(leads.c.team_id == team_id)
        # Both leads in the team: a pair across teams is an admin's to review.
        query = query.where(
            possible_duplicates.c.lead_id.in_(team_leads), possible_duplicates.c.other_lead_id.in_(team_leads)
        )
    if lead_id:
        query = query.where(open_pairs_of(lead_id))
    return await keyset_page(
        uow.conn,
        query,
        possible_duplicates.c.created_at,
        possible_duplicates.c.id,
        limit=limit,
        after=after,
        descending=True,
    )


async def list_incomplete(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, rep_id: str, team_id: str
) -> tuple[list[LeadView], list[Any] | None]:
    """Live leads with missing fields, newest first (the partial index ix_leads_incomplete)."""
    rows, next_key = await keyset_page(
        uow.conn,
        incomplete_query(rep_id, team_id),
        leads.c.created_at,
        leads.c.id,
        limit=limit,
        after=after,
        descending=True,
    )
    return [await lead_queries.get_lead(uow, r.id) for r in rows], next_key


def incomplete_query(rep_id: str = "", team_id: str = "") -> Select[Any]:
    # The predicate is ix_leads_incomplete's, so the index serves it.
    query = select(leads.c.id, leads.c.created_at).where(
        func.cardinality(leads.c.missing_fields) > 0, leads.c.merged_into_id.is_(None)
    )
    if rep_id:
        query = query.where(leads.c.rep_id == rep_id)
    if team_id:
        query = query.where(leads.c.team_id == team_id)
    return query
