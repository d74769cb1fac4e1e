"""Errors more than one feature raises, each defined once (mapped to gRPC by the chassis)."""

from __future__ import annotations

from crm_kit.errors import NotFound


def lead_not_found(lead_id: str) -> NotFound:
    return NotFound(f"lead {lead_id} not found", reason="LEAD_NOT_FOUND", metadata={"lead_id": lead_id})
