"""Errors more than one feature raises, each defined once (mapped to gRPC by the chassis)."""

from __future__ import annotations

import grpc

from crm_kit.errors import DomainError, NotFound


def lead_not_found(lead_id: str) -> NotFound:
    return NotFound(f"lead {lead_id} not found", reason="LEAD_NOT_FOUND", metadata={"lead_id": lead_id})


class DealsMovedToSales(DomainError):
    """GetDeal/CloseDeal are still declared on LeadsService (crm.leads.v1 is not broken within v1),
    but deals are the sales service's (crm.sales.v1.SalesService) now."""

    grpc_code = grpc.StatusCode.UNIMPLEMENTED
    reason = "DEALS_MOVED_TO_SALES"
