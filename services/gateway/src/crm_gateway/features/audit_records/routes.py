"""/audit-records: who changed what in one backend service (admins)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from crm.admin.v1 import audit_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, FilterId, PageSize, PageToken, api_router
from crm_gateway.features.audit_records.schemas import AuditRecordList
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/audit-records", tags=["audit"], operation_id="listAuditRecords")
async def list_audit_records(
    clients: Clients,
    principal: Caller,
    service: Literal["leads", "sales", "customers", "orders", "notifications", "reporting"],
    record_type: Annotated[str, Query(max_length=64)] = "",
    record_id: FilterId = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> AuditRecordList:
    """Who changed what in one service, newest first."""
    reply = await read(
        clients.audit[service].ListAuditRecords,
        audit_pb2.ListAuditRecordsRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            record_type=record_type,
            record_id=record_id,
            actor=actor,
        ),
    )
    return to_model(AuditRecordList, reply)
