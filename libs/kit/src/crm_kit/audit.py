"""AuditService: one service's audit log (who changed what), listable over gRPC.

Rows are written by `UnitOfWork.audit` in the same transaction as the change they describe,
with the actor and request id of the caller context (`crm_kit.caller`): the subject the gateway
authenticated, "system" for event handlers, "unknown" for a gRPC call that named no actor. The
chassis registers this servicer on every backend service's gRPC port (`crm_kit.service.Service`),
so an operator reads any service's log with `crm-admin audit list --service <name>`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import grpc
from sqlalchemy import select

from crm.admin.v1 import audit_pb2, audit_pb2_grpc
from crm_kit import protoconv
from crm_kit.db import Database
from crm_kit.pagination import keyset_page

SERVICE_NAME: str = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name


def audit_record_to_proto(row: Any) -> audit_pb2.AuditRecord:
    return audit_pb2.AuditRecord(
        id=row.id,
        actor=row.actor,
        action=row.action,
        record_type=row.record_type,
        record_id=row.record_id,
        create_time=protoconv.to_timestamp(row.created_at),
        request_id=row.request_id,
        details_json=json.dumps(row.details or {}, ensure_ascii=False, sort_keys=True),
    )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Lists the audit records in this service's own database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ListAuditRecords(
        self, request: audit_pb2.ListAuditRecordsRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListAuditRecordsResponse:
        """Newest first by (create time, id); filters by record, by actor; the page token is the
        keyset position of the last record."""
        limit = protoconv.page_size(request.page_size)
        after = protoconv.page_position(request.page_token, datetime.fromisoformat, int)
        table = self.db.tables.audit_log
        query = select(table)
        if request.record_type:
            query = query.where(table.c.record_type == request.record_type)
        if request.record_id:
            query = query.where(table.c.record_id == request.record_id)
        if request.actor:
            query = query.where(table.c.actor == request.actor)
        async with self.db.engine.connect() as conn:
            rows, next_key = await keyset_page(
                conn, query, table.c.created_at, table.c.id, limit=limit, after=after, descending=True
            )
        return audit_pb2.ListAuditRecordsResponse(
            audit_records=[audit_record_to_proto(r) for r in rows],
            next_page_token=protoconv.encode_page_token(*next_key) if next_key else "",
        )
