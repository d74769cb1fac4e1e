"""/consent-records: every consent given or withdrawn, across customers — what a regulator asks a
company to show (who agreed to what, when, how, with what proof, and every withdrawal). A page of
JSON, or the whole period as one CSV download streamed page by page (memory stays one page)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi.responses import StreamingResponse

from crm.customers.v1 import customers_pb2
from crm_gateway.convert import IsoDateTime, message_to_dict, to_model, to_timestamp
from crm_gateway.deps import Caller, Clients, PageSize, PageToken, api_router
from crm_gateway.features.consent_records.schemas import ConsentRecordList
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()

CSV_COLUMNS = (
    "record_id",
    "record_time",
    "occur_time",
    "customer_id",
    "full_name",
    "phone_number",
    "email",
    "channel",
    "purpose",
    "granted",
    "source",
    "evidence",
    "actor",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such a
# value is written with a leading apostrophe, which spreadsheets show as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_PAGE = 1000


def _request(
    from_time: datetime | None, to_time: datetime | None, page_size: int, page_token: str
) -> customers_pb2.ListConsentRecordsRequest:
    return customers_pb2.ListConsentRecordsRequest(
        from_time=to_timestamp(from_time), to_time=to_timestamp(to_time), page_size=page_size, page_token=page_token
    )


@router.get("/consent-records", tags=["customers"], operation_id="listConsentRecords")
async def list_consent_records(
    clients: Clients,
    principal: Caller,
    from_time: IsoDateTime | None = None,
    to_time: IsoDateTime | None = None,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> ConsentRecordList:
    """Consent records of every customer recorded in [from_time, to_time), oldest first, each with
    the customer's name and contacts as they are now."""
    request = _request(from_time, to_time, protoconv.page_size(page_size), page_token)
    reply = await read(clients.customers.ListConsentRecords, request)
    return to_model(ConsentRecordList, reply)


def csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def csv_row(exported: customers_pb2.ExportedConsent) -> list[str]:
    record = message_to_dict(exported.record)
    values = {
        **record,
        "record_id": record["id"],
        "granted": "yes" if record["granted"] else "no",
        "full_name": exported.full_name,
        "phone_number": exported.phone_number,
        "email": exported.email,
    }
    return [csv_cell(values[name]) for name in CSV_COLUMNS]


@router.get(
    "/consent-records/export",
    tags=["customers"],
    operation_id="exportConsentRecords",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def export_consent_records(
    clients: Clients, principal: Caller, from_time: IsoDateTime | None = None, to_time: IsoDateTime | None = None
) -> StreamingResponse:
    """The period's consent records as CSV (UTF-8 with a byte order mark, so a spreadsheet reads
    Hebrew and Persian), one row per record, oldest first. The first page is read before the answer
    starts, so a bad period is a 422, not a broken download."""
    first = await read(clients.customers.ListConsentRecords, _request(from_time, to_time, EXPORT_PAGE, ""))

    async def rows() -> AsyncIterator[bytes]:
        page = first
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")
        writer.writerow(CSV_COLUMNS)
        while True:
            writer.writerows(csv_row(r) for r in page.records)
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            if not page.next_page_token:
                return
            page = await read(
                clients.customers.ListConsentRecords, _request(from_time, to_time, EXPORT_PAGE, page.next_page_token)
            )

    stamp = (to_time or datetime.now()).date().isoformat()
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="consent-records-{stamp}.csv"'},
    )
