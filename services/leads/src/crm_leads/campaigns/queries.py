"""Reading the catalogue: whether a source is active, which campaign a capture names, lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_kit.db import UnitOfWork
from crm_kit.errors import InvalidArgument, NotFound, raise_all
from crm_kit.pagination import keyset_page
from crm_leads.campaigns.domain import NO_CAMPAIGN, CampaignRef, ValidCampaign, is_uuid
from crm_leads.config_cache import CaptureConfig
from crm_leads.db import campaigns, sources


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
    if is_uuid(campaign):
        row = (await uow.conn.execute(select(campaigns).where(campaigns.c.id == campaign))).first()
        if row is not None:
            return row
    name = " ".join(campaign.split())
    return (
        await uow.conn.execute(select(campaigns).where(campaigns.c.source == source, campaigns.c.name == name))
    ).first()


_ALL_SOURCES = select(sources.c.code, sources.c.active)


async def _cached_campaign(uow: UnitOfWork, config: CaptureConfig, source: str, campaign: str) -> CampaignRef | None:
    """The campaign a valid capture names, from config (read into it when missing); None when the
    source or the campaign is not valid: resolve_campaign then reads afresh to say why."""
    if config.sources is None:
        config.sources = {row.code: row.active for row in await uow.conn.execute(_ALL_SOURCES)}
    if not config.sources.get(source):
        return None
    named = campaign.strip()
    if not named:
        return NO_CAMPAIGN
    key = (source, named)
    ref: CampaignRef | None = config.campaigns.get(key)
    if ref is None:
        row = await _find_campaign(uow, source, named)
        if row is None or row.source != source:
            return None
        ref = CampaignRef(id=row.id, name=row.name)
        config.remember_campaign(key, ref)
    return ref


async def resolve_campaign(
    uow: UnitOfWork, source: str, campaign: str, config: CaptureConfig | None = None
) -> CampaignRef:
    """The catalogue campaign a capture names (by id or name) under its source; also checks the
    source. INVALID_ARGUMENT naming `source` and/or `campaign` (both at once) otherwise. With
    config (the capture's crm_leads.config_cache), a valid reference is answered from it."""
    if config is not None and (ref := await _cached_campaign(uow, config, source, campaign)) is not None:
        return ref
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


async def list_sources(uow: UnitOfWork) -> list[Any]:
    return list((await uow.conn.execute(select(sources).order_by(sources.c.created_at, sources.c.code))).all())


async def source_codes(uow: UnitOfWork) -> set[str]:
    """Every code of the catalogue, active or not."""
    return set((await uow.conn.execute(select(sources.c.code))).scalars())


async def campaign_ids(uow: UnitOfWork) -> set[str]:
    return set((await uow.conn.execute(select(campaigns.c.id))).scalars())


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


def stored_campaign(row: Any) -> ValidCampaign:
    """A campaigns row as the domain's campaign."""
    return ValidCampaign(
        name=row.name,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        budget_minor=row.budget_minor,
        actual_cost_minor=row.actual_cost_minor,
        currency_code=row.currency_code,
    )


async def name_taken(uow: UnitOfWork, source: str, name: str, *, other_than: str) -> bool:
    """Whether another campaign of source already has this name."""
    found = await uow.conn.execute(
        select(campaigns.c.id).where(
            campaigns.c.source == source, campaigns.c.name == name, campaigns.c.id != other_than
        )
    )
    return found.first() is not None


async def list_campaigns(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, source: str
) -> tuple[list[Any], list[Any] | None]:
    query = select(campaigns)
    if source:
        query = query.where(campaigns.c.source == source)
    return await keyset_page(
        uow.conn, query, campaigns.c.created_at, campaigns.c.id, limit=limit, after=after, descending=True
    )
