"""Reading leads: the one lead view every reader uses (lead ⋈ rep ⋈ conversion), by id, by a
capture's request id, and in pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from crm_kit.db import UnitOfWork
from crm_kit.pagination import keyset_page
from crm_leads.db import lead_conversions, lead_touches, leads, reps
from crm_leads.errors import lead_not_found


@dataclass
class LeadView:
    row: Any
    rep_name: str = ""
    deal_id: str = ""
    # Set when a replayed request_id made a touch of this lead (duplicates): what matched.
    touch_matched_on: str = ""


# A lead row's columns, in the table's order, and its rep's name as the lead view shows it: the
# capture's statements, written once as SQL text (crm_leads.leads.capture_statements), name and
# type their rows with them.
LEAD_COLUMNS = tuple(leads.c)
REP_NAME = reps.c.name


def lead_view_query() -> Select[Any]:
    """The one read of a lead as the API shows it: the lead, its rep's name and its deal's id."""
    return select(leads, reps.c.name.label("rep_name"), lead_conversions.c.deal_id).select_from(
        leads.outerjoin(reps, reps.c.id == leads.c.rep_id).outerjoin(
            lead_conversions, lead_conversions.c.lead_id == leads.c.id
        )
    )


def lead_view(row: Any) -> LeadView:
    """A row of lead_view_query as a LeadView."""
    return LeadView(row=row, rep_name=row.rep_name or "", deal_id=row.deal_id or "")


async def get_lead(uow: UnitOfWork, lead_id: str) -> LeadView:
    row = (await uow.conn.execute(lead_view_query().where(leads.c.id == lead_id))).first()
    if row is None:
        raise lead_not_found(lead_id)
    return lead_view(row)


async def find_by_request_id(uow: UnitOfWork, request_scope: str, request_id: str) -> LeadView | None:
    """The lead a request_id of this scope (crm_leads.leads.domain) captured, or the lead its capture
    was attached to as a touch. Another scope's request ids are never found."""
    lead_id = (
        await uow.conn.execute(
            select(leads.c.id).where(leads.c.request_scope == request_scope, leads.c.request_id == request_id)
        )
    ).scalar()
    if lead_id:
        return await get_lead(uow, lead_id)
    touch = (
        await uow.conn.execute(
            select(lead_touches.c.lead_id, lead_touches.c.matched_on).where(
                lead_touches.c.request_scope == request_scope, lead_touches.c.request_id == request_id
            )
        )
    ).first()
    if touch is None:
        return None
    view = await get_lead(uow, touch.lead_id)
    view.touch_matched_on = touch.matched_on
    return view


async def list_leads(
    uow: UnitOfWork,
    *,
    limit: int,
    after: tuple[Any, ...] | None,
    source: str,
    rep_id: str,
    team_id: str = "",
    campaign_id: str = "",
) -> tuple[list[LeadView], list[Any] | None]:
    query = lead_view_query()
    # A merged lead is a tombstone: GET still answers (merged_into_lead_id), lists never show it.
    query = query.where(leads.c.merged_into_id.is_(None))
    if source:
        query = query.where(leads.c.source == source)
    if rep_id:
        query = query.where(leads.c.rep_id == rep_id)
    if team_id:
        # The team of the rep the lead is assigned to: the rep is picked from that team's reps, and
        # the lead keeps it (Lead.assignment.team_id, Deal.owner_team_id); ix_leads_team keeps a
        # small team's page an index range scan instead of a walk over every lead.
        query = query.where(leads.c.team_id == team_id)
    if campaign_id:
        query = query.where(leads.c.campaign_id == campaign_id)
    rows, next_key = await keyset_page(uow.conn, query, leads.c.created_at, leads.c.id, limit=limit, after=after)
    return [lead_view(r) for r in rows], next_key
