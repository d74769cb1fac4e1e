"""Sources and campaigns: the catalogue a lead's source and campaign are checked against, and
CampaignsService (sources admins add, campaigns with their cost)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.common.v1 import types_pb2
from crm.leads.v1 import campaigns_pb2, campaigns_pb2_grpc, events_pb2, leads_pb2
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import AlreadyExists, InvalidArgument, NotFound, raise_all, require
from crm_kit.pagination import keyset_page
from crm_kit.protoconv import encode_page_token, from_date, page_position, page_size, to_date, to_timestamp
from crm_leads import domain
from crm_leads.db import campaigns, sources


@dataclass(frozen=True)
class CampaignRef:
    """The campaign a lead belongs to: id in the catalogue ("" when none) and its name."""

    id: str
    name: str


NO_CAMPAIGN = CampaignRef(id="", name="")


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


async def _source_error(uow: UnitOfWork, source: str) -> InvalidArgument | None:
    """None when source is an active catalogue source, else the 422 naming `source`."""
    active = (await uow.conn.execute(select(sources.c.active).where(sources.c.code == source))).scalar()
    if active:
        return None
    codes = list(
        (await uow.conn.execute(select(sources.c.code).where(sources.c.active).order_by(sources.c.code))).scalars()
    )
    state = "inactive" if active is not None else "unknown"
    return InvalidArgument(
        f"{state} source {source!r}; valid sources: {', '.join(codes)}",
        reason="UNKNOWN_SOURCE",
        field_violations=[("source", f"must be an active source of the catalogue: {', '.join(codes)}")],
        metadata={"valid_sources": ",".join(codes)},
    )


async def check_source(uow: UnitOfWork, source: str) -> None:
    """INVALID_ARGUMENT naming `source` unless it is an active catalogue source."""
    error = await _source_error(uow, source)
    if error:
        raise error


async def _find_campaign(uow: UnitOfWork, source: str, campaign: str) -> Any:
    """The campaign row campaign names (its id, else its name under source); None if none."""
    if _is_uuid(campaign):
        row = (await uow.conn.execute(select(campaigns).where(campaigns.c.id == campaign))).first()
        if row is not None:
            return row
    name = " ".join(campaign.split())
    return (
        await uow.conn.execute(select(campaigns).where(campaigns.c.source == source, campaigns.c.name == name))
    ).first()


async def resolve_campaign(uow: UnitOfWork, source: str, campaign: str) -> CampaignRef:
    """The catalogue campaign a capture names (by id or name) under its source; also checks the
    source. INVALID_ARGUMENT naming `source` and/or `campaign` (both at once) otherwise."""
    errors: list[InvalidArgument] = []
    source_error = await _source_error(uow, source)
    if source_error:
        errors.append(source_error)
    ref = NO_CAMPAIGN
    if campaign.strip():
        row = await _find_campaign(uow, source, campaign.strip())
        if row is None:
            errors.append(
                InvalidArgument(
                    f"unknown campaign {campaign!r} under source {source!r}",
                    reason="UNKNOWN_CAMPAIGN",
                    field_violations=[("campaign", f"no campaign with this id or name under source {source!r}")],
                )
            )
        elif row.source != source:
            errors.append(
                InvalidArgument(
                    f"campaign {campaign!r} runs under source {row.source!r}, not {source!r}",
                    reason="CAMPAIGN_OF_ANOTHER_SOURCE",
                    field_violations=[("campaign", f"belongs to source {row.source!r}")],
                )
            )
        else:
            ref = CampaignRef(id=row.id, name=row.name)
    raise_all(errors)
    return ref


# ---------------------------------------------------------------- sources


async def list_sources(uow: UnitOfWork) -> list[Any]:
    return list((await uow.conn.execute(select(sources).order_by(sources.c.created_at, sources.c.code))).all())


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


def source_to_proto(r: Any) -> leads_pb2.Source:
    return leads_pb2.Source(
        code=r.code,
        display_name=r.display_name,
        built_in=r.built_in,
        active=r.active,
        create_time=to_timestamp(r.created_at),
    )


# ---------------------------------------------------------------- campaigns


def _money(amount: int, currency: str) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount, currency_code=currency)


def campaign_to_proto(r: Any) -> campaigns_pb2.Campaign:
    return campaigns_pb2.Campaign(
        id=r.id,
        source=r.source,
        name=r.name,
        starts_on=to_date(r.starts_on),
        ends_on=to_date(r.ends_on),
        budget=_money(r.budget_minor, r.currency_code),
        actual_cost=_money(r.actual_cost_minor, r.currency_code),
        create_time=to_timestamp(r.created_at),
        update_time=to_timestamp(r.updated_at),
    )


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
    await check_source(uow, source)
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


def _campaign_not_found(campaign_id: str) -> NotFound:
    return NotFound(
        f"campaign {campaign_id} not found", reason="CAMPAIGN_NOT_FOUND", metadata={"campaign_id": campaign_id}
    )


async def get_campaign(uow: UnitOfWork, campaign_id: str, *, lock: bool = False) -> Any:
    query = select(campaigns).where(campaigns.c.id == campaign_id)
    row = (await uow.conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise _campaign_not_found(campaign_id)
    return row


async def list_campaigns(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, source: str
) -> tuple[list[Any], list[Any] | None]:
    query = select(campaigns)
    if source:
        query = query.where(campaigns.c.source == source)
    return await keyset_page(
        uow.conn, query, campaigns.c.created_at, campaigns.c.id, limit=limit, after=after, descending=True
    )


UPDATABLE = ("name", "starts_on", "ends_on", "budget", "actual_cost")


def _mask_paths(paths: list[str]) -> set[str]:
    """The fields an update_mask names ("budget.amount_minor" counts as "budget"); "*" is all."""
    if not paths:
        raise InvalidArgument("update_mask is required", field_violations=[("update_mask", "name the fields")])
    if paths == ["*"]:
        return set(UPDATABLE)
    named = {p.split(".")[0] for p in paths}
    unknown = sorted(named - set(UPDATABLE))
    if unknown:
        raise InvalidArgument(
            f"update_mask names fields that cannot be updated: {', '.join(unknown)}",
            field_violations=[("update_mask", f"updatable: {', '.join(UPDATABLE)}")],
        )
    return named


async def update_campaign(uow: UnitOfWork, patch: campaigns_pb2.Campaign, paths: list[str]) -> Any:
    """Apply the masked fields of patch to the campaign, validating the result as a whole."""
    fields = _mask_paths(paths)
    current = await get_campaign(uow, patch.id, lock=True)

    def pick_date(name: str, value: types_pb2.Date, existing: Any) -> Any:
        if name not in fields:
            return existing
        return from_date(value, name) if value.year else None

    budget = patch.budget if "budget" in fields else _money(current.budget_minor, current.currency_code)
    cost = patch.actual_cost if "actual_cost" in fields else _money(current.actual_cost_minor, current.currency_code)
    valid = domain.validate_campaign(
        domain.CampaignFields(
            name=patch.name if "name" in fields else current.name,
            starts_on=pick_date("starts_on", patch.starts_on, current.starts_on),
            ends_on=pick_date("ends_on", patch.ends_on, current.ends_on),
            budget_minor=budget.amount_minor,
            actual_cost_minor=cost.amount_minor,
            budget_currency=budget.currency_code or (current.currency_code if budget.amount_minor else ""),
            actual_cost_currency=cost.currency_code or (current.currency_code if cost.amount_minor else ""),
        )
    )
    if valid.name != current.name:
        taken = (
            await uow.conn.execute(
                select(campaigns.c.id).where(
                    campaigns.c.source == current.source, campaigns.c.name == valid.name, campaigns.c.id != current.id
                )
            )
        ).first()
        if taken:
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
    await _record_change(uow, row, "leads.UpdateCampaign", {"update_mask": sorted(fields), **_audit_details(valid)})
    return row


def _campaign_fields(request: campaigns_pb2.CreateCampaignRequest) -> domain.CampaignFields:
    return domain.CampaignFields(
        name=request.name,
        starts_on=from_date(request.starts_on, "starts_on") if request.starts_on.year else None,
        ends_on=from_date(request.ends_on, "ends_on") if request.ends_on.year else None,
        budget_minor=request.budget.amount_minor,
        actual_cost_minor=request.actual_cost.amount_minor,
        budget_currency=request.budget.currency_code,
        actual_cost_currency=request.actual_cost.currency_code,
    )


class CampaignsServicer(campaigns_pb2_grpc.CampaignsServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def CreateSource(
        self, request: campaigns_pb2.CreateSourceRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.CreateSourceResponse:
        new = domain.validate_new_source(code=request.code, display_name=request.display_name)
        async with self.db.unit_of_work() as uow:
            row = await create_source(uow, new)
        return campaigns_pb2.CreateSourceResponse(source=source_to_proto(row))

    async def CreateCampaign(
        self, request: campaigns_pb2.CreateCampaignRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.CreateCampaignResponse:
        errors: list[InvalidArgument] = []
        source = ""
        try:
            source = domain.normalize_source(request.source) if request.source.strip() else ""
            require({"source": source})
        except InvalidArgument as exc:
            errors.append(exc)
        valid: domain.ValidCampaign | None = None
        try:
            valid = domain.validate_campaign(_campaign_fields(request))
        except InvalidArgument as exc:
            errors.append(exc)
        raise_all(errors)
        assert valid is not None
        async with self.db.unit_of_work() as uow:
            row = await create_campaign(uow, source, valid)
        return campaigns_pb2.CreateCampaignResponse(campaign=campaign_to_proto(row))

    async def GetCampaign(
        self, request: campaigns_pb2.GetCampaignRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.GetCampaignResponse:
        require({"campaign_id": request.campaign_id})
        async with self.db.unit_of_work() as uow:
            row = await get_campaign(uow, request.campaign_id)
        return campaigns_pb2.GetCampaignResponse(campaign=campaign_to_proto(row))

    async def ListCampaigns(
        self, request: campaigns_pb2.ListCampaignsRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.ListCampaignsResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await list_campaigns(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                source=request.source.strip().lower(),
            )
        return campaigns_pb2.ListCampaignsResponse(
            campaigns=[campaign_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def UpdateCampaign(
        self, request: campaigns_pb2.UpdateCampaignRequest, context: grpc.aio.ServicerContext
    ) -> campaigns_pb2.UpdateCampaignResponse:
        require({"campaign.id": request.campaign.id})
        async with self.db.unit_of_work() as uow:
            row = await update_campaign(uow, request.campaign, list(request.update_mask.paths))
        return campaigns_pb2.UpdateCampaignResponse(campaign=campaign_to_proto(row))
