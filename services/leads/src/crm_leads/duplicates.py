"""Duplicate detection on capture and import: one lead per person."""

from __future__ import annotations

from dataclasses import dataclass

from crm_kit.db import UnitOfWork
from crm_leads import domain


@dataclass(frozen=True)
class DuplicateMatch:
    """An existing lead the new capture is the same person as."""

    lead_id: str
    matched_on: str  # "phone_number" | "email"


def name_key(full_name: str) -> str:
    """The full name folded for matching."""
    return " ".join(full_name.casefold().split())


def missing_fields(new: domain.NewLead) -> tuple[str, ...]:
    """Required fields a new lead lacks (it is captured all the same, and flagged)."""
    return ()


async def find_duplicate(uow: UnitOfWork, new: domain.NewLead) -> DuplicateMatch | None:
    """The existing lead with the same phone number or e-mail, if any."""
    return None
