"""Sources admins add, and campaigns with their cost: each change audited and published
(CampaignChanged) in the caller's unit of work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2
from crm_kit.db import UnitOfWork
from crm_kit.errors import AlreadyExists
from crm_kit.protoconv import to_date, to_timestamp
from crm_leads.campaigns import domain, queries
from crm_leads.db import campaigns, sources


async def create_source(uow: UnitOfWork, new: domain.NewSource) -> Any:
    row = (
        await uow.conn.execute(
            pg_insert(sources)
            .values(code=new.code, display_name=new.display_name, built_in=False, active=True)
            .on_conflict_do_nothing(index_elements=["code"])
            .returning(sources)
        )
    ).first()
    if row is None:
        raise AlreadyExists(f"source {new.code!r} already exists", reason="SOURCE_EXISTS", metadata={"code": new.code})
    uow.audit("leads.CreateSource", "source", new.code, {"display_name": new.display_name})
    return row


def _money(amount: int, currency: str) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount, currency_code=currency)


async def _record_change(uow: UnitOfWork, row: Any, action: str, details: dict[str, Any]) -> None:
    await uow.record_event(
        events_pb2.CampaignChanged(
            campaign_id=row.id,
            source=row.source,
            name=row.name,
            budget=_money(row.budget_minor, row.currency_code),
            actual_cost=_money(row.actual_cost_minor, row.currency_code),
            starts_on=to_date(row.starts_on),
            ends_on=to_date(row.ends_on),
            update_time=to_timestamp(row.updated_at),
        ),
        time=row.updated_at,
    )
    uow.audit(action, "campaign", row.id, details)


def _campaign_exists(source: str, name: str) -> AlreadyExists:
    return AlreadyExists(
        f"source {source!r} already has a campaign named {name!r}",
        reason="CAMPAIGN_EXISTS",
        metadata={"source": source},
    )


def _audit_details(valid: domain.ValidCampaign) -> dict[str, Any]:
    return {
        "name": valid.name,
        "starts_on": valid.starts_on.isoformat() if valid.starts_on else "",
        "ends_on": valid.ends_on.isoformat() if valid.ends_on else "",
        "budget_minor": valid.budget_minor,
        "actual_cost_minor": valid.actual_cost_minor,
        "currency_code": valid.currency_code,
    }


async def create_campaign(uow: UnitOfWork, source: str, valid: domain.ValidCampaign) -> Any:
    await queries.check_source(uow, source)
    now = datetime.now(UTC)
    row = (
        await uow.conn.execute(
            pg_insert(campaigns)
            .values(
                id=str(uuid.uuid4()),
                source=source,
                name=valid.name,
                starts_on=valid.starts_on,
                ends_on=valid.ends_on,
                budget_minor=valid.budget_minor,
                actual_cost_minor=valid.actual_cost_minor,
                currency_code=valid.currency_code,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_campaigns_source_name")
            .returning(campaigns)
        )
    ).first()
    if row is None:
        raise _campaign_exists(source, valid.name)
    await _record_change(uow, row, "leads.CreateCampaign", {"source": source, **_audit_details(valid)})
    return row


async def update_campaign(uow: UnitOfWork, patch: domain.CampaignPatch) -> Any:
    """Apply the masked fields of patch to the campaign, validating the result as a whole."""
    current = await queries.get_campaign(uow, patch.campaign_id, lock=True)
    valid = domain.validate_campaign(domain.patched(patch, queries.stored_campaign(current)))
    if valid.name != current.name and await queries.name_taken(uow, current.source, valid.name, other_than=current.id):
        raise _campaign_exists(current.source, valid.name)
    row = (
        await uow.conn.execute(
            update(campaigns)
            .where(campaigns.c.id == current.id)
            .values(
                name=valid.name,
                starts_on=valid.starts_on,
                ends_on=valid.ends_on,
                budget_minor=valid.budget_minor,
                actual_cost_minor=valid.actual_cost_minor,
                currency_code=valid.currency_code,
                updated_at=datetime.now(UTC),
            )
            .returning(campaigns)
        )
    ).one()
    details = {"update_mask": sorted(patch.fields), **_audit_details(valid)}
    await _record_change(uow, row, "leads.UpdateCampaign", details)
    return row
