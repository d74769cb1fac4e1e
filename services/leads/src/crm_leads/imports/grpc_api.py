"""LeadImportsService: the CSV upload (a stream of chunks between a header and a trailer) and the
imports' reports (proto ↔ imports commands and queries)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import grpc

from crm.leads.v1 import imports_pb2, imports_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, raise_all, require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_leads.imports import commands, queries
from crm_leads.imports.csv_stream import FileRejected
from crm_leads.imports.domain import (
    ALL_OR_NOTHING,
    COMPLETED,
    IMPORTING,
    REJECTED,
    SKIP_INVALID,
    VALIDATING,
    ImportLimits,
)
from crm_leads.leads.domain import normalize_source

log = logging.getLogger(__name__)

_STATUS = {
    VALIDATING: imports_pb2.LEAD_IMPORT_STATUS_VALIDATING,
    IMPORTING: imports_pb2.LEAD_IMPORT_STATUS_IMPORTING,
    COMPLETED: imports_pb2.LEAD_IMPORT_STATUS_COMPLETED,
    REJECTED: imports_pb2.LEAD_IMPORT_STATUS_REJECTED,
}
_MODE = {
    ALL_OR_NOTHING: imports_pb2.LEAD_IMPORT_MODE_ALL_OR_NOTHING,
    SKIP_INVALID: imports_pb2.LEAD_IMPORT_MODE_SKIP_INVALID,
}


def import_to_proto(r: Any, errors: list[Any] | None = None) -> imports_pb2.LeadImport:
    return imports_pb2.LeadImport(
        id=r.id,
        source=r.source,
        campaign_id=r.campaign_id or "",
        campaign=r.campaign_name,
        file_name=r.file_name,
        mode=_MODE[r.mode],
        status=_STATUS[r.status],
        rows_read=r.rows_read,
        rows_valid=r.rows_valid,
        rows_imported=r.rows_imported,
        duplicates=r.duplicates,
        error_count=r.error_count,
        errors=[
            imports_pb2.LeadImportError(
                row_number=e.row_number, line_number=e.line_number, field=e.field, message=e.message
            )
            for e in errors or []
        ],
        reject_reason=r.reject_reason,
        create_actor=r.create_actor,
        create_time=to_timestamp(r.created_at),
        update_time=to_timestamp(r.updated_at),
        complete_time=to_timestamp(r.completed_at),
    )


def _upload(header: imports_pb2.ImportLeadsHeader) -> commands.Upload:
    """An import's first message checked; every bad field at once."""
    errors: list[InvalidArgument] = []
    source = ""
    try:
        require({"source": header.source.strip()})
        source = normalize_source(header.source)
    except InvalidArgument as exc:
        errors.append(exc)
    violations = [
        (name, "contains a NUL character")
        for name in ("source", "campaign", "file_name", "request_id")
        if "\x00" in getattr(header, name)
    ]
    if len(header.file_name) > 255:
        violations.append(("file_name", "at most 255 characters"))
    if len(header.request_id) > 200:
        violations.append(("request_id", "at most 200 characters"))
    if len(header.campaign) > 100:
        violations.append(("campaign", "at most 100 characters"))
    if violations:
        errors.append(InvalidArgument("invalid import", field_violations=violations))
    raise_all(errors)
    mode = SKIP_INVALID if header.mode == imports_pb2.LEAD_IMPORT_MODE_SKIP_INVALID else ALL_OR_NOTHING
    return commands.Upload(
        source=source, mode=mode, campaign=header.campaign, file_name=header.file_name, request_id=header.request_id
    )


async def _drain(request_iterator: AsyncIterator[imports_pb2.ImportLeadsRequest]) -> None:
    """Read the rest of an upload before answering: a client still writing to a call that has
    already ended gets an INTERNAL error from gRPC instead of the answer."""
    async for _ in request_iterator:
        pass


class LeadImportsServicer(imports_pb2_grpc.LeadImportsServiceServicer):
    def __init__(self, db: Database, limits: ImportLimits) -> None:
        self.db = db
        self.limits = limits
        self._running: set[asyncio.Task[None]] = set()

    async def ImportLeads(
        self, request_iterator: AsyncIterator[imports_pb2.ImportLeadsRequest], context: grpc.aio.ServicerContext
    ) -> imports_pb2.ImportLeadsResponse:
        # The chassis' interceptor restores the caller and maps domain errors (after reading the
        # rest of the upload), as for every call.
        return await self._import(request_iterator)

    async def _import(
        self, request_iterator: AsyncIterator[imports_pb2.ImportLeadsRequest]
    ) -> imports_pb2.ImportLeadsResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("header"):
            raise InvalidArgument(
                "the first message must carry the import's header", field_violations=[("header", "is required")]
            )
        row, created = await commands.start(self.db, _upload(first.header), self.limits)
        if not created:
            await _drain(request_iterator)
            async with self.db.unit_of_work() as uow:
                found, errors = await queries.get_import(uow, row.id)
            return imports_pb2.ImportLeadsResponse(lead_import=import_to_proto(found, errors))

        async def chunks() -> AsyncIterator[bytes]:
            size = 0
            async for message in request_iterator:
                if message.HasField("trailer"):
                    if message.trailer.size == size:
                        return
                    break
                if message.HasField("header"):
                    raise InvalidArgument("only the first message carries a header", field_violations=[("header", "")])
                size += len(message.data)
                yield message.data
            # No trailer, or not all the data: a cut-off upload must never import a truncated file.
            raise FileRejected(f"the upload was interrupted after {size} bytes; upload the file again")

        status, _ = await commands.read_and_stage(self.db, row, chunks(), self.limits)
        await _drain(request_iterator)  # a file rejected early: the rest of it still arrives
        if status == IMPORTING:
            task = asyncio.create_task(self._phase2(row.id))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            # Not cancelled at the timeout: the import goes on and GetLeadImport shows its progress.
            await asyncio.wait({task}, timeout=self.limits.wait_seconds)
        async with self.db.unit_of_work() as uow:
            found, errors = await queries.get_import(uow, row.id)
        return imports_pb2.ImportLeadsResponse(lead_import=import_to_proto(found, errors))

    async def _phase2(self, import_id: str) -> None:
        try:
            await commands.run_import(self.db, import_id, self.limits)
        except Exception:
            # The lease runs out and the resume job takes the import over.
            log.exception("lead import stopped; the resume job will carry on", extra={"lead_import_id": import_id})

    async def GetLeadImport(
        self, request: imports_pb2.GetLeadImportRequest, context: grpc.aio.ServicerContext
    ) -> imports_pb2.GetLeadImportResponse:
        require({"lead_import_id": request.lead_import_id})
        async with self.db.unit_of_work() as uow:
            row, errors = await queries.get_import(uow, request.lead_import_id)
        return imports_pb2.GetLeadImportResponse(lead_import=import_to_proto(row, errors))

    async def ListLeadImports(
        self, request: imports_pb2.ListLeadImportsRequest, context: grpc.aio.ServicerContext
    ) -> imports_pb2.ListLeadImportsResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_imports(
                uow, limit=limit, after=page_position(request.page_token, datetime.fromisoformat, str)
            )
        return imports_pb2.ListLeadImportsResponse(
            lead_imports=[import_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )
