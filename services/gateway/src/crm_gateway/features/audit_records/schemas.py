"""Response bodies of /audit-records."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class AuditRecord(BaseModel):
    id: int
    actor: str
    action: str
    record_type: str
    record_id: str
    create_time: datetime | None
    request_id: str
    details_json: str


class AuditRecordList(BaseModel):
    audit_records: list[AuditRecord]
    next_page_token: str
