"""Application layer of leads: each command runs in the caller's unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.leads.v1 import events_pb2
from crm_kit import caller
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition, NotFound
from crm_kit.pagination import keyset_page
from crm_kit.protoconv import to_timestamp
from crm_leads import domain, names
from crm_leads.campaigns import CampaignRef
from crm_leads.db import lead_conversions, lead_touches, leads, reps, web_form_keys
from crm_leads.metrics import LEADS_CAPTURED
from crm_leads.routing import Assignment


@dataclass
class LeadView:
    row: Any
    rep_name: str = ""
    deal_id: str = ""
    # Set when a replayed request_id made a touch of this lead (duplicates): what matched.
    touch_matched_on: str = ""


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


def lead_not_found(lead_id: str) -> NotFound:
    return NotFound(f"lead {lead_id} not found", reason="LEAD_NOT_FOUND", metadata={"lead_id": lead_id})


async def _lead_view(uow: UnitOfWork, lead_id: str) -> LeadView:
    row = (await uow.conn.execute(lead_view_query().where(leads.c.id == lead_id))).first()
    if row is None:
        raise lead_not_found(lead_id)
    return lead_view(row)


async def find_by_request_id(uow: UnitOfWork, request_scope: str, request_id: str) -> LeadView | None:
    """The lead a request_id of this scope (crm_leads.domain) captured, or the lead its capture
    was attached to as a touch. Another scope's request ids are never found."""
    lead_id = (
        await uow.conn.execute(
            select(leads.c.id).where(leads.c.request_scope == request_scope, leads.c.request_id == request_id)
        )
    ).scalar()
    if lead_id:
        return await _lead_view(uow, lead_id)
    touch = (
        await uow.conn.execute(
            select(lead_touches.c.lead_id, lead_touches.c.matched_on).where(
                lead_touches.c.request_scope == request_scope, lead_touches.c.request_id == request_id
            )
        )
    ).first()
    if touch is None:
        return None
    view = await _lead_view(uow, touch.lead_id)
    view.touch_matched_on = touch.matched_on
    return view


async def insert_lead(
    uow: UnitOfWork,
    new: domain.NewLead,
    *,
    campaign: CampaignRef,
    request_scope: str,
    request_id: str,
    assignment: Assignment,
    web_form_key_id: str = "",
    name_keys: names.NameKeys | None = None,
    missing_fields: tuple[str, ...] = (),
) -> LeadView:
    """Insert an assigned lead and its LeadCaptured/LeadAssigned events; raises RequestIdRace when
    another request with the same request_id got there first. The caller checked the web form key
    (require_active_web_form_key) in this transaction."""
    now = datetime.now(UTC)
    rep_id, rep_name, reason = assignment.rep_id, assignment.rep_name, assignment.reason
    lead_id = str(uuid.uuid4())
    inserted = await uow.conn.execute(
        pg_insert(leads)
        .values(
            id=lead_id,
            request_scope=request_scope if request_id else None,
            request_id=request_id or None,
            full_name=new.full_name,
            phone_number=new.phone_number,
            email=new.email,
            source=new.source,
            campaign=campaign.name,
            campaign_id=campaign.id or None,
            city=new.city,
            region=new.region,
            locale=new.locale,
            product_line=new.product_line,
            status=domain.LeadStatus.NEW.value,
            rep_id=rep_id or None,
            team_id=assignment.team_id or None,
            rule_id=assignment.rule_id or None,
            first_response_due_at=assignment.first_response_due_at,
            sla_seconds=assignment.sla_seconds,
            breach_action=assignment.breach_action,
            sla_clock_running=assignment.first_response_due_at is not None,
            routing_explanation=assignment.explanation,
            name_key=name_keys.key if name_keys else "",
            name_compact=name_keys.compact if name_keys else "",
            name_skeleton=name_keys.skeleton if name_keys else "",
            missing_fields=list(missing_fields),
            assign_reason=reason,
            assigned_at=now,
            created_at=now,
            web_form_key_id=web_form_key_id or None,
        )
        .on_conflict_do_nothing(constraint="uq_leads_request")
        .returning(*leads.c)
    )
    lead_row = inserted.first()
    if lead_row is None:
        # A concurrent request with the same request_id won the race; its lead is the answer.
        raise RequestIdRace(request_id)
    await uow.record_event(
        events_pb2.LeadCaptured(
            lead_id=lead_id,
            full_name=new.full_name,
            phone_number=new.phone_number,
            email=new.email,
            source=new.source,
            campaign=campaign.name,
            locale=new.locale,
            product_line=new.product_line,
            capture_time=to_timestamp(now),
            campaign_id=campaign.id,
            city=new.city,
            region=new.region,
        ),
        time=now,
    )
    if rep_id:
        await uow.record_event(
            events_pb2.LeadAssigned(
                lead_id=lead_id,
                rep_id=rep_id,
                team_id=assignment.team_id,
                rule_id=assignment.rule_id,
                reason=reason,
                source=new.source,
                capture_time=to_timestamp(now),
                assign_time=to_timestamp(now),
            ),
            time=now,
        )
    details = {
        "source": new.source,
        "campaign": campaign.name,
        "rep_id": rep_id,
        "team_id": assignment.team_id,
        "rule_id": assignment.rule_id,
    }
    if web_form_key_id:
        details["web_form_key_id"] = web_form_key_id
    uow.audit("leads.CaptureLead", "lead", lead_id, details)
    uow.after_commit(LEADS_CAPTURED.labels(new.source).inc)
    return LeadView(row=lead_row, rep_name=rep_name)


async def require_active_web_form_key(uow: UnitOfWork, web_form_key_id: str) -> None:
    """The key must still be active: its row is share-locked to the end of the capture's
    transaction, so a revocation waits for this capture (new lead or touch) or stops it."""
    revoked = (
        await uow.conn.execute(
            select(web_form_keys.c.revoked_at).where(web_form_keys.c.id == web_form_key_id).with_for_update(read=True)
        )
    ).first()
    if revoked is None or revoked.revoked_at is not None:
        raise _web_form_key_refused(revoked is not None)


class RequestIdRace(Exception):
    """Two captures with one request_id ran at once; retry to read the winner's lead."""


async def get_lead(uow: UnitOfWork, lead_id: str) -> LeadView:
    return await _lead_view(uow, lead_id)


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


async def convert_lead(uow: UnitOfWork, lead_id: str, title: str) -> Any:
    """Record a lead's conversion into a deal owned by the lead's rep, and publish LeadConverted,
    from which sales opens the deal (the deal id is chosen here, so both the gateway's OpenDeal and
    the event name the same deal). Converting again returns the same conversion."""
    lead = (await uow.conn.execute(select(leads).where(leads.c.id == lead_id).with_for_update(key_share=True))).first()
    if lead is None:
        raise lead_not_found(lead_id)
    if lead.merged_into_id:
        raise FailedPrecondition(
            f"lead {lead_id} was merged into {lead.merged_into_id}; convert that lead",
            reason="LEAD_MERGED",
            metadata={"lead_id": lead_id, "merged_into_lead_id": lead.merged_into_id},
        )
    existing = (await uow.conn.execute(select(lead_conversions).where(lead_conversions.c.lead_id == lead_id))).first()
    if existing is not None:
        return existing
    now = datetime.now(UTC)
    conversion = (
        await uow.conn.execute(
            lead_conversions.insert()
            .values(
                deal_id=str(uuid.uuid4()),
                lead_id=lead_id,
                title=(title.strip() or lead.full_name)[:200],
                owner_rep_id=lead.rep_id,
                owner_team_id=lead.team_id,
                source=lead.source,
                campaign=lead.campaign,
                converted_at=now,
            )
            .returning(lead_conversions)
        )
    ).one()
    # A converted lead is no longer waiting for a first response: its SLA clock stops.
    await uow.conn.execute(
        update(leads)
        .where(leads.c.id == lead_id)
        .values(status=domain.LeadStatus.CONVERTED.value, sla_clock_running=False)
    )
    await uow.record_event(
        events_pb2.LeadConverted(
            lead_id=lead_id,
            deal_id=conversion.deal_id,
            title=conversion.title,
            owner_rep_id=conversion.owner_rep_id or "",
            owner_team_id=conversion.owner_team_id or "",
            source=conversion.source,
            campaign=conversion.campaign,
            convert_time=to_timestamp(now),
        ),
        time=now,
    )
    uow.audit("leads.ConvertLead", "lead", lead_id, {"deal_id": conversion.deal_id, "owner_rep_id": lead.rep_id or ""})
    return conversion


def _web_form_key_not_found(key_id: str) -> NotFound:
    return NotFound(
        f"web form key {key_id} not found", reason="WEB_FORM_KEY_NOT_FOUND", metadata={"web_form_key_id": key_id}
    )


def _web_form_key_refused(known: bool) -> domain.PermissionDenied:
    # "Revoked" only to a caller that showed the key's secret; everyone else learns nothing.
    if known:
        return domain.PermissionDenied("web_form_key has been revoked", reason="WEB_FORM_KEY_REVOKED")
    return domain.invalid_web_form_key()


@dataclass(frozen=True)
class WebFormKeyUse:
    """What a verified web-to-lead key gives a capture."""

    id: str
    source: str
    campaign: str


async def verify_web_form_key(uow: UnitOfWork, secret: str) -> WebFormKeyUse:
    """The active key a secret belongs to; PermissionDenied for a malformed, unknown, wrong or revoked one."""
    key_id = domain.web_form_key_id(secret)
    row = (
        await uow.conn.execute(
            select(
                web_form_keys.c.secret_hash,
                web_form_keys.c.source,
                web_form_keys.c.campaign,
                web_form_keys.c.revoked_at,
            ).where(web_form_keys.c.id == key_id)
        )
    ).first()
    if row is None or not domain.web_form_secret_matches(secret, row.secret_hash):
        raise domain.invalid_web_form_key()
    if row.revoked_at is not None:
        raise _web_form_key_refused(known=True)
    return WebFormKeyUse(id=key_id, source=row.source, campaign=row.campaign)


async def create_web_form_key(uow: UnitOfWork, new: domain.NewWebFormKey) -> tuple[Any, str]:
    """Store a new key (its secret's hash and prefix); returns the row and the secret, shown this once."""
    key_id = str(uuid.uuid4())
    secret = domain.new_web_form_secret(key_id)
    who = caller.current()
    row = (
        await uow.conn.execute(
            web_form_keys.insert()
            .values(
                id=key_id,
                display_name=new.display_name,
                source=new.source,
                campaign=new.campaign,
                secret_hash=domain.hash_web_form_secret(secret),
                secret_prefix=domain.web_form_secret_prefix(secret),
                create_actor=(who.actor if who else "") or caller.UNKNOWN_ACTOR,
                created_at=datetime.now(UTC),
            )
            .returning(web_form_keys)
        )
    ).one()
    # Never the secret (nor its hash) in the audit log.
    uow.audit(
        "leads.CreateWebFormKey",
        "web_form_key",
        key_id,
        {
            "display_name": new.display_name,
            "source": new.source,
            "campaign": new.campaign,
            "secret_prefix": row.secret_prefix,
        },
    )
    return row, secret


async def list_web_form_keys(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, include_revoked: bool
) -> tuple[list[Any], list[Any] | None]:
    """Keys newest first; revoked ones only when asked for."""
    query = select(web_form_keys)
    if not include_revoked:
        query = query.where(web_form_keys.c.revoked_at.is_(None))
    return await keyset_page(
        uow.conn, query, web_form_keys.c.created_at, web_form_keys.c.id, limit=limit, after=after, descending=True
    )


async def revoke_web_form_key(uow: UnitOfWork, key_id: str) -> Any:
    """Revoke an active key: captures with it are refused from now on."""
    revoked = (
        await uow.conn.execute(
            update(web_form_keys)
            .where(web_form_keys.c.id == key_id, web_form_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
            .returning(web_form_keys)
        )
    ).first()
    if revoked is None:
        exists = (await uow.conn.execute(select(web_form_keys.c.id).where(web_form_keys.c.id == key_id))).first()
        if exists is None:
            raise _web_form_key_not_found(key_id)
        raise FailedPrecondition(
            f"web form key {key_id} is already revoked",
            reason="WEB_FORM_KEY_ALREADY_REVOKED",
            metadata={"web_form_key_id": key_id},
        )
    uow.audit("leads.RevokeWebFormKey", "web_form_key", key_id, {"secret_prefix": revoked.secret_prefix})
    return revoked
