"""Sources and campaigns: the catalogue a lead's source and campaign are checked against."""

from __future__ import annotations

from dataclasses import dataclass

from crm_kit.db import UnitOfWork


@dataclass(frozen=True)
class CampaignRef:
    """The campaign a lead belongs to: id in the catalogue ("" when none) and its name."""

    id: str
    name: str


async def resolve_campaign(uow: UnitOfWork, source: str, campaign: str) -> CampaignRef:
    """The catalogue campaign a capture names (by id or name) under its source."""
    return CampaignRef(id="", name=campaign)
