"""Lead commands, each in the caller's unit of work: capture (the API, a web form and a CSV import
row all go through capture_in: campaign, duplicate check, routing, insert) and conversion."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.leads.v1 import events_pb2
from crm_kit import caller, names
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition
from crm_kit.protoconv import to_timestamp
from crm_leads.campaigns import queries as campaign_queries
from crm_leads.campaigns.domain import CampaignRef
from crm_leads.config_cache import CaptureConfig, config_at
from crm_leads.db import lead_conversions, leads, legacy_deals
from crm_leads.duplicates import commands as duplicate_commands
from crm_leads.duplicates import domain as duplicate_domain
from crm_leads.duplicates import queries as duplicate_queries
from crm_leads.duplicates.domain import DuplicateMatch, missing_fields
from crm_leads.errors import lead_not_found
from crm_leads.leads import capture_statements, domain, queries
from crm_leads.leads.queries import LeadView
from crm_leads.metrics import LEADS_CAPTURED
from crm_leads.routing import commands as routing_commands
from crm_leads.routing.domain import Assignment
from crm_leads.web_forms import domain as web_form_domain


class RequestIdRace(Exception):
    """Two captures with one request_id ran at once; retry to read the winner's lead."""


@dataclass(frozen=True)
class CaptureResult:
    lead: LeadView
    duplicate: bool = False
    matched_on: str = ""
    # The answer to a repeated request_id (the lead as it is now).
    replayed: bool = False


@dataclass(frozen=True)
class CaptureOrigin:
    """Where a capture comes from: its request id's scope (crm_leads.leads.domain), the request id,
    the web form key that sent it, and whose leads its caller may change."""

    request_scope: str
    reach: domain.LeadReach
    request_id: str = ""
    web_form_key_id: str = ""


def replayed(found: LeadView) -> CaptureResult:
    """The answer to a repeated request_id: the first capture's lead (and whether it was a touch)."""
    return CaptureResult(
        lead=found, duplicate=bool(found.touch_matched_on), matched_on=found.touch_matched_on, replayed=True
    )


async def capture_in(
    uow: UnitOfWork,
    new: domain.NewLead,
    *,
    request_scope: str,
    reach: domain.LeadReach,
    request_id: str = "",
    web_form_key_id: str = "",
    replay: bool = False,
) -> CaptureResult:
    """Capture new in uow; raises RequestIdRace when a concurrent request with the same request_id
    in the same request_scope won. A duplicate fills the matched lead's empty fields only when that
    lead is within reach (duplicates.commands.attach_touch). With replay, a request_id this scope
    already captured answers with that capture's lead (replayed) before anything else.

    The statements are crm_leads.leads.capture_statements': the opening one, the person's, then
    two for a new person (a round-robin turn with the name look-alikes; the lead with its pairs)
    or one for a returning person (the touch); the catalogue and routing set-up come from
    crm_leads.config_cache."""
    origin = CaptureOrigin(
        request_scope=request_scope, reach=reach, request_id=request_id, web_form_key_id=web_form_key_id
    )
    lock_keys = duplicate_domain.contact_lock_keys(new)
    look_up = replay and bool(request_id)
    opened = (
        await uow.conn.execute(
            capture_statements.opening(len(lock_keys), request_id=look_up, web_form_key=bool(web_form_key_id)),
            {
                **{f"k{i}": key for i, key in enumerate(lock_keys)},
                **({"request_scope": request_scope, "request_id": request_id} if look_up else {}),
                **({"web_form_key_id": web_form_key_id} if web_form_key_id else {}),
            },
        )
    ).one()
    if opened.replay_lead_id:
        return replayed(await queries.get_lead(uow, opened.replay_lead_id))
    if opened.replay_touch_lead_id:
        view = await queries.get_lead(uow, opened.replay_touch_lead_id)
        view.touch_matched_on = opened.replay_matched_on
        return replayed(view)
    if web_form_key_id and (not opened.form_key_found or opened.form_key_revoked_at is not None):
        # Held FOR SHARE to the end of the transaction: a revocation waits for this capture or stops it.
        raise web_form_domain.web_form_key_refused(bool(opened.form_key_found))
    config = config_at(uow.db, opened.config_version)
    campaign = await campaign_queries.resolve_campaign(uow, new.source, new.campaign, config)
    # No contact point, no one to find (validation asks for one; the statement would need a branch).
    person = (
        (
            await uow.conn.execute(
                capture_statements.person(
                    phone=bool(new.phone_number), email=bool(new.email), request_id=bool(request_id)
                ),
                {
                    **({"phone_number": new.phone_number} if new.phone_number else {}),
                    **({"email": new.email} if new.email else {}),
                    **({"request_scope": request_scope, "request_id": request_id} if request_id else {}),
                },
            )
        ).first()
        if new.phone_number or new.email
        else None
    )
    if person is None:
        return await _capture_new(uow, new, campaign, origin, config)
    if person.request_id_taken:
        # A concurrent request with this request_id committed while this one waited for the
        # person's lock (the opening statement): its answer is the answer, not a touch of its own
        # lead. (Without a match the lead INSERT's unique request_id settles the race.)
        raise RequestIdRace(request_id)
    # The same person again: a touch of their lead, never a second lead. A merged lead's contact
    # points still belong to the person: follow it to the survivor (and lock that one).
    lead = person
    if person.live_id is None:
        survivor = await duplicate_queries.survivor_of(uow, person.id, person.merged_into_id)
        lead = await duplicate_commands.lock_live_lead(uow, survivor)
    try:
        view = await duplicate_commands.attach_touch(
            uow,
            lead,
            DuplicateMatch(lead_id=lead.id, matched_on=person.matched_on),
            new,
            campaign=campaign,
            request_scope=request_scope,
            request_id=request_id,
            web_form_key_id=web_form_key_id,
            reach=reach,
            now=datetime.now(UTC),
        )
    except duplicate_commands.TouchRequestIdRace as exc:
        raise RequestIdRace(request_id) from exc
    return CaptureResult(lead=view, duplicate=True, matched_on=person.matched_on)


async def _capture_new(
    uow: UnitOfWork, new: domain.NewLead, campaign: CampaignRef, origin: CaptureOrigin, config: CaptureConfig
) -> CaptureResult:
    """A person seen for the first time: route, insert, and record name-only look-alikes for review.

    The team's round-robin turn and the look-alikes come in one statement, the lead and its
    possible-duplicate pairs in the next (the pairs are computed before the lead exists: its id is
    chosen here)."""
    now = datetime.now(UTC)
    keys = names.name_keys(new.full_name)
    pending = await routing_commands.plan_assignment(uow, new, now, campaign, config)
    lead_id = str(uuid.uuid4())
    name_values = {
        c: v for c, v in (("name_key", keys.key), ("name_compact", keys.compact), ("name_skeleton", keys.skeleton)) if v
    }
    team_id = pending.turn_team_id
    found: list[Any] = []
    if team_id or name_values:
        found = list(
            await uow.conn.execute(
                capture_statements.turn_and_look_alikes(tuple(name_values), turn=bool(team_id)),
                {
                    **name_values,
                    **({"lead_id": lead_id} if name_values else {}),
                    **({"team_id": team_id} if team_id else {}),
                },
            )
        )
    assignment = pending.complete(int(found[0].turn) if team_id else 0)
    pairs = duplicate_commands.name_match_pairs(lead_id, keys, [r for r in found if r.id is not None], city=new.city)
    view = await insert_lead(
        uow, new, campaign=campaign, origin=origin, assignment=assignment, name_keys=keys, lead_id=lead_id, pairs=pairs
    )
    return CaptureResult(lead=view)


async def insert_lead(
    uow: UnitOfWork,
    new: domain.NewLead,
    *,
    campaign: CampaignRef,
    origin: CaptureOrigin,
    assignment: Assignment,
    name_keys: names.NameKeys,
    lead_id: str = "",
    pairs: Sequence[dict[str, Any]] = (),
) -> LeadView:
    """Insert an assigned lead, its possible-duplicate pairs (duplicates.commands.name_match_pairs)
    and its LeadCaptured/LeadAssigned events; raises RequestIdRace when another request with the
    same request_id got there first. The caller checked the web form key in this transaction."""
    now = datetime.now(UTC)
    lead_id = lead_id or str(uuid.uuid4())
    values = {
        "id": lead_id,
        **_lead_columns(new, campaign, origin, assignment, name_keys),
        "assigned_at": now,
        "created_at": now,
    }
    if pairs:
        values.update(
            pair_ids=[p["id"] for p in pairs],
            pair_other_ids=[p["other_lead_id"] for p in pairs],
            pair_scores=[p["score"] for p in pairs],
            pair_reasons=[",".join(p["reasons"]) for p in pairs],
        )
    lead_row = (await uow.conn.execute(capture_statements.insert_lead(pairs=bool(pairs)), values)).first()
    if lead_row is None:
        # A concurrent request with the same request_id won the race; its lead is the answer.
        raise RequestIdRace(origin.request_id)
    await _publish_capture(uow, lead_id, new, campaign, assignment, now)
    details = {
        "source": new.source,
        "campaign": campaign.name,
        "rep_id": assignment.rep_id,
        "team_id": assignment.team_id,
        "rule_id": assignment.rule_id,
    }
    if origin.web_form_key_id:
        details["web_form_key_id"] = origin.web_form_key_id
    uow.audit("leads.CaptureLead", "lead", lead_id, details)
    uow.after_commit(LEADS_CAPTURED.labels(new.source).inc)
    duplicate_commands.pairs_recorded(uow, lead_id, pairs, set(lead_row.new_pairs))
    return LeadView(row=lead_row, rep_name=assignment.rep_name)


def _lead_columns(
    new: domain.NewLead,
    campaign: CampaignRef,
    origin: CaptureOrigin,
    assignment: Assignment,
    name_keys: names.NameKeys,
) -> dict[str, Any]:
    """A new lead's row (but its id and times): the person, attribution, assignment and SLA clock."""
    return {
        "request_scope": origin.request_scope if origin.request_id else None,
        "request_id": origin.request_id or None,
        "full_name": new.full_name,
        "phone_number": new.phone_number,
        "email": new.email,
        "source": new.source,
        "campaign": campaign.name,
        "campaign_id": campaign.id or None,
        "city": new.city,
        "region": new.region,
        "locale": new.locale,
        "product_line": new.product_line,
        "status": domain.LeadStatus.NEW.value,
        "rep_id": assignment.rep_id or None,
        "team_id": assignment.team_id or None,
        "rule_id": assignment.rule_id or None,
        "first_response_due_at": assignment.first_response_due_at,
        "sla_seconds": assignment.sla_seconds,
        "breach_action": assignment.breach_action,
        "sla_clock_running": assignment.first_response_due_at is not None,
        "routing_explanation": assignment.explanation,
        "name_key": name_keys.key,
        "name_compact": name_keys.compact,
        "name_skeleton": name_keys.skeleton,
        "missing_fields": list(missing_fields(new)),
        "assign_reason": assignment.reason,
        "web_form_key_id": origin.web_form_key_id or None,
    }


async def _publish_capture(
    uow: UnitOfWork,
    lead_id: str,
    new: domain.NewLead,
    campaign: CampaignRef,
    assignment: Assignment,
    now: datetime,
) -> None:
    """LeadCaptured, and LeadAssigned when a rep got the lead (not when it waits in a queue)."""
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
    if assignment.rep_id:
        await uow.record_event(
            events_pb2.LeadAssigned(
                lead_id=lead_id,
                rep_id=assignment.rep_id,
                team_id=assignment.team_id,
                rule_id=assignment.rule_id,
                reason=assignment.reason,
                source=new.source,
                capture_time=to_timestamp(now),
                assign_time=to_timestamp(now),
            ),
            time=now,
        )


@dataclass(frozen=True)
class Conversion:
    row: Any
    # False when the lead was converted before (this call recorded nothing).
    created: bool


async def convert_lead(uow: UnitOfWork, lead_id: str, title: str, pipeline_id: str = "") -> Conversion:
    """Record a lead's conversion into a deal owned by the lead's rep, and publish LeadConverted,
    from which sales opens the deal (the deal id is chosen here, so both the gateway's OpenDeal and
    the event name the same deal). Converting again returns the same conversion. The lead row lock
    (FOR NO KEY UPDATE, as merges and assignments take it) makes concurrent converts wait for the
    first and find its conversion."""
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
        return Conversion(existing, created=False)
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
                lead_since=now,
                pipeline_id=pipeline_id,
            )
            .returning(lead_conversions)
        )
    ).one()
    who = caller.current()
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
            actor=who.actor if who else "",
            request_id=who.request_id if who else "",
            pipeline_id=conversion.pipeline_id,
        ),
        time=now,
    )
    uow.audit(
        "leads.ConvertLead",
        "lead",
        lead_id,
        {"deal_id": conversion.deal_id, "owner_rep_id": lead.rep_id or "", "pipeline_id": pipeline_id},
    )
    return Conversion(conversion, created=True)


async def record_legacy_conversions(uow: UnitOfWork) -> int:
    """Record the conversion of every old-table deal that has none: the deals a leads pod of the
    release before made while migration 0012 had already run (a rolling upgrade). Idempotent;
    returns how many it recorded."""
    deal, lead = legacy_deals.alias("d"), leads.alias("l")
    missing = (
        select(
            deal.c.id,
            deal.c.lead_id,
            deal.c.title,
            deal.c.owner_rep_id,
            lead.c.team_id,
            lead.c.source,
            lead.c.campaign,
            deal.c.created_at,
            literal(True),
            func.now(),
        )
        .join(lead, lead.c.id == deal.c.lead_id)
        .where(~exists().where(lead_conversions.c.deal_id == deal.c.id))
    )
    columns = ["deal_id", "lead_id", "title", "owner_rep_id", "owner_team_id", "source", "campaign"]
    recorded = await uow.conn.execute(
        pg_insert(lead_conversions)
        .from_select([*columns, "converted_at", "legacy", "lead_since"], missing)
        .on_conflict_do_nothing()
        .returning(lead_conversions.c.deal_id)
    )
    return len(recorded.all())
