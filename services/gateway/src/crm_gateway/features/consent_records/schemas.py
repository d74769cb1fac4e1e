"""Response bodies of /consent-records (the consent history across customers, for a regulator)."""

from __future__ import annotations

from pydantic import BaseModel

from crm_gateway.features.customers.schemas import ConsentRecord


class ExportedConsent(BaseModel):
    record: ConsentRecord
    full_name: str
    phone_number: str
    email: str


class ConsentRecordList(BaseModel):
    records: list[ExportedConsent]
    next_page_token: str
