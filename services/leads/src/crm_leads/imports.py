"""CSV imports of lead lists (LeadImportsService).

Phase 1 (inside the ImportLeads call) streams the file, validates every row and stages the valid
ones, committing a batch with the progress counters at a time so GetLeadImport sees it run; a
broken file (or, all_or_nothing, any bad row) ends as REJECTED with nothing captured. Phase 2 (in
the background, resumable) captures the staged rows through capture.capture_in, a batch per
transaction, each row with request_id `<row>` in the import's request scope (`import:<import id>`, which no API
caller can use) so no row is ever captured twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.leads.v1 import imports_pb2, imports_pb2_grpc
from crm_kit import caller
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import DomainError, InvalidArgument, NotFound, raise_all, require
from crm_kit.pagination import keyset_page
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_leads import campaigns, capture, commands, domain
from crm_leads.csv_import import CsvStream, FileRejected, Record, read_header, row_values
from crm_leads.db import lead_import_errors, lead_import_rows, lead_imports
from crm_leads.metrics import LEAD_IMPORT_ROWS, LEAD_IMPORTS

log = logging.getLogger(__name__)

VALIDATING, IMPORTING, COMPLETED, REJECTED = "validating", "importing", "completed", "rejected"
ALL_OR_NOTHING, SKIP_INVALID = "all_or_nothing", "skip_invalid"
STORED_ERRORS = 1000
# The chassis' error domain of this service (ErrorInfo.domain).

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


@dataclass(frozen=True)
class ImportLimits:
    max_rows: int = 1_000_000
    # Staged rows per phase-1 commit, captured rows per phase-2 transaction.
    batch_rows: int = 300
    # How long a worker owns an import between two batches before the resume job takes it over.
    lease_seconds: float = 60.0
    # How long the upload waits for phase 2: a list that is routed by then is answered completed,
    # every lead on its rep's list in the same request; a longer one goes on in the background.
    wait_seconds: float = 20.0


@dataclass
class _Phase1:
    """What phase 1 has read so far and not yet committed."""

    import_id: str
    mode: str
    source: str
    campaign_id: str
    columns: list[str] | None = None
    rows_read: int = 0
    rows_valid: int = 0
    error_count: int = 0
    staged: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, row_number: int, line_number: int, field_name: str, message: str) -> None:
        if self.error_count < STORED_ERRORS:
            self.errors.append(
                {
                    "import_id": self.import_id,
                    "position": self.error_count,
                    "row_number": row_number,
                    "line_number": line_number,
                    "field": field_name[:100],
                    "message": message[:500],
                }
            )
        self.error_count += 1


def _lease(limits: ImportLimits) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=limits.lease_seconds)


def _not_found(import_id: str) -> NotFound:
    return NotFound(
        f"lead import {import_id} not found", reason="LEAD_IMPORT_NOT_FOUND", metadata={"lead_import_id": import_id}
    )


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


async def get_import(uow: UnitOfWork, import_id: str) -> tuple[Any, list[Any]]:
    row = (await uow.conn.execute(select(lead_imports).where(lead_imports.c.id == import_id))).first()
    if row is None:
        raise _not_found(import_id)
    errors = (
        await uow.conn.execute(
            select(lead_import_errors)
            .where(lead_import_errors.c.import_id == import_id)
            .order_by(lead_import_errors.c.position)
        )
    ).all()
    return row, list(errors)


# ---------------------------------------------------------------- phase 1: read, validate, stage


def _validate_header(header: imports_pb2.ImportLeadsHeader) -> tuple[str, str]:
    """(source, mode) of an import's first chunk; every bad field at once."""
    errors: list[InvalidArgument] = []
    source = ""
    try:
        require({"source": header.source.strip()})
        source = domain.normalize_source(header.source)
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
    return source, mode


def _check_row(state: _Phase1, record: Record, campaign: str) -> None:
    assert state.columns is not None
    state.rows_read += 1
    row_number = state.rows_read
    values, problems = row_values(state.columns, record)
    violations = list(problems)
    new: domain.NewLead | None = None
    # validate_new_lead stops at its first stage (name, lengths, contact); the row report names
    # every bad field, so those are checked here and stand-ins let the normalizers run too.
    name = values.get("full_name", "")
    name_ok = bool(name.strip()) and len(name) <= 200
    if not name_ok:
        violations.append(("full_name", "is required" if not name.strip() else "at most 200 characters"))
    short = {key: values.get(key, "") for key in ("city", "region", "product_line")}
    for key, value in short.items():
        if len(value.strip()) > 100:
            violations.append((key, "at most 100 characters"))
            short[key] = ""
    try:
        new = domain.validate_new_lead(
            full_name=name if name_ok else "-",
            phone_number=values.get("phone_number", ""),
            email=values.get("email", ""),
            source=state.source,
            campaign=campaign,
            locale=values.get("locale", "").strip(),
            product_line=short["product_line"],
            city=short["city"],
            region=short["region"],
        )
    except InvalidArgument as exc:
        violations.extend(exc.field_violations or [("", exc.message)])
        if not values.get("phone_number", "").strip() and not values.get("email", "").strip():
            try:
                domain.normalize_locale(values.get("locale", "").strip())
            except InvalidArgument as locale_exc:
                violations.extend(locale_exc.field_violations)
    violations = list(dict.fromkeys(violations))
    if violations or new is None:
        for field_name, message in violations:
            state.error(row_number, record.line_number, field_name, message)
        return
    state.rows_valid += 1
    # all_or_nothing: once a row is bad nothing will be imported; keep validating, stop staging.
    if state.mode == SKIP_INVALID or state.error_count == 0:
        state.staged.append(
            {
                "import_id": state.import_id,
                "row_number": row_number,
                "line_number": record.line_number,
                "full_name": new.full_name,
                "phone_number": new.phone_number,
                "email": new.email,
                "locale": new.locale,
                "product_line": new.product_line,
                "city": new.city,
                "region": new.region,
            }
        )


async def _flush(db: Database, state: _Phase1, limits: ImportLimits) -> None:
    """Commit the staged rows and errors read so far with the progress counters (one short
    transaction: GetLeadImport sees the progress at once)."""
    staged, state.staged = state.staged, []
    errors, state.errors = state.errors, []
    async with db.unit_of_work() as uow:
        if staged:
            await uow.conn.execute(lead_import_rows.insert(), staged)
        if errors:
            await uow.conn.execute(lead_import_errors.insert(), errors)
        await uow.conn.execute(
            update(lead_imports)
            .where(lead_imports.c.id == state.import_id)
            .values(
                rows_read=state.rows_read,
                rows_valid=state.rows_valid,
                error_count=state.error_count,
                lease_until=_lease(limits),
                updated_at=datetime.now(UTC),
            )
        )


async def _reject(db: Database, import_id: str, reason: str, action_details: dict[str, Any], errors: int = 0) -> None:
    """End an import as rejected: no staged row stays behind, nothing is captured."""
    now = datetime.now(UTC)
    async with db.unit_of_work() as uow:
        await uow.conn.execute(delete(lead_import_rows).where(lead_import_rows.c.import_id == import_id))
        await uow.conn.execute(
            update(lead_imports)
            .where(lead_imports.c.id == import_id)
            .values(status=REJECTED, reject_reason=reason[:1000], lease_until=None, updated_at=now, completed_at=now)
        )
        uow.audit("leads.ImportLeads", "lead_import", import_id, {"status": REJECTED, **action_details})
        uow.after_commit(LEAD_IMPORTS.labels(REJECTED).inc)
        uow.after_commit(lambda: LEAD_IMPORT_ROWS.labels("error").inc(errors))


async def _start(
    db: Database, header: imports_pb2.ImportLeadsHeader, source: str, mode: str, limits: ImportLimits
) -> tuple[Any, bool]:
    """The import's row (created now, or the first one of its request_id) and whether it is new."""
    async with db.unit_of_work() as uow:
        # An upload's request id is the uploader's: another caller's equal id is another import.
        who = caller.current()
        actor = ((who.actor if who else "") or caller.UNKNOWN_ACTOR)[:200]
        same_request = (lead_imports.c.create_actor == actor, lead_imports.c.request_id == header.request_id)
        if header.request_id:
            existing = (await uow.conn.execute(select(lead_imports).where(*same_request))).first()
            if existing is not None:
                return existing, False
        campaign = await campaigns.resolve_campaign(uow, source, header.campaign)
        now = datetime.now(UTC)
        row = (
            await uow.conn.execute(
                pg_insert(lead_imports)
                .values(
                    id=str(uuid.uuid4()),
                    request_id=header.request_id or None,
                    source=source,
                    campaign_id=campaign.id or None,
                    campaign_name=campaign.name,
                    file_name=header.file_name.strip(),
                    mode=mode,
                    status=VALIDATING,
                    lease_until=_lease(limits),
                    create_actor=actor,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(constraint="uq_lead_imports_request")
                .returning(lead_imports)
            )
        ).first()
    if row is None:  # a concurrent upload with the same request_id won
        async with db.unit_of_work() as uow:
            winner = (await uow.conn.execute(select(lead_imports).where(*same_request))).one()
        return winner, False
    return row, True


async def read_and_stage(
    db: Database, row: Any, chunks: AsyncIterator[bytes], limits: ImportLimits
) -> tuple[str, _Phase1]:
    """Phase 1 over the file's bytes; returns the import's status after it and what was read."""
    state = _Phase1(import_id=row.id, mode=row.mode, source=row.source, campaign_id=row.campaign_id or "")
    campaign = state.campaign_id
    stream = CsvStream()
    reason = ""
    try:
        async for data in chunks:
            for record in stream.feed(data):
                _take(state, record, campaign, limits)
            if len(state.staged) >= limits.batch_rows or len(state.errors) >= limits.batch_rows:
                await _flush(db, state, limits)
        for record in stream.feed(b"", final=True):
            _take(state, record, campaign, limits)
        if state.columns is None:
            raise FileRejected("the file is empty: it needs a header row", line_number=1, field="header")
    except FileRejected as exc:
        state.error(exc.row_number, exc.line_number, exc.field, exc.message)
        reason = exc.message
    if not reason and state.error_count and state.mode == ALL_OR_NOTHING:
        reason = f"{state.error_count} errors in the rows; nothing was imported (mode all_or_nothing)"
    if reason:
        state.staged = []
    await _flush(db, state, limits)
    details = {"rows_read": state.rows_read, "rows_valid": state.rows_valid, "error_count": state.error_count}
    if reason:
        await _reject(db, state.import_id, reason, details, errors=state.error_count)
        return REJECTED, state
    async with db.unit_of_work() as uow:
        await uow.conn.execute(
            update(lead_imports)
            .where(lead_imports.c.id == state.import_id)
            .values(status=IMPORTING, lease_until=_lease(limits), updated_at=datetime.now(UTC))
        )
        uow.audit("leads.ImportLeads", "lead_import", state.import_id, {"status": IMPORTING, **details})
        uow.after_commit(lambda: LEAD_IMPORT_ROWS.labels("error").inc(state.error_count))
    return IMPORTING, state


def _take(state: _Phase1, record: Record, campaign: str, limits: ImportLimits) -> None:
    if state.columns is None:
        state.columns = read_header(record)
        return
    if state.rows_read >= limits.max_rows:
        raise FileRejected(
            f"the file has more than {limits.max_rows} rows",
            line_number=record.line_number,
            row_number=state.rows_read + 1,
        )
    _check_row(state, record, campaign)


# ---------------------------------------------------------------- phase 2: capture the staged rows


async def capture_batch(db: Database, import_id: str, limits: ImportLimits) -> bool:
    """Capture the next batch of an importing import's staged rows in one transaction; False once
    there is nothing left (the import is then completed)."""
    async with db.unit_of_work() as uow:
        imp = (
            await uow.conn.execute(select(lead_imports).where(lead_imports.c.id == import_id).with_for_update())
        ).first()
        if imp is None or imp.status != IMPORTING:
            return False
        rows = (
            await uow.conn.execute(
                select(lead_import_rows)
                .where(lead_import_rows.c.import_id == import_id, lead_import_rows.c.row_number > imp.next_row)
                .order_by(lead_import_rows.c.row_number)
                .limit(limits.batch_rows)
            )
        ).all()
        now = datetime.now(UTC)
        if not rows:
            await uow.conn.execute(delete(lead_import_rows).where(lead_import_rows.c.import_id == import_id))
            await uow.conn.execute(
                update(lead_imports)
                .where(lead_imports.c.id == import_id)
                .values(status=COMPLETED, lease_until=None, updated_at=now, completed_at=now)
            )
            uow.audit(
                "leads.ImportLeads",
                "lead_import",
                import_id,
                {"status": COMPLETED, "rows_imported": imp.rows_imported, "duplicates": imp.duplicates},
            )
            uow.after_commit(LEAD_IMPORTS.labels(COMPLETED).inc)
            return False
        imported = duplicates = 0
        errors: list[dict[str, Any]] = []
        error_count = imp.error_count
        for r in rows:
            new = domain.NewLead(
                full_name=r.full_name,
                phone_number=r.phone_number,
                email=r.email,
                source=imp.source,
                campaign=imp.campaign_id or "",
                locale=r.locale,
                product_line=r.product_line,
                city=r.city,
                region=r.region,
            )
            # The row's request id lives in the import's own scope: no API caller can claim or
            # replay it. An import reaches no lead: a row matching one fills nothing on it.
            scope, request_id = domain.import_request_scope(import_id), str(r.row_number)
            if await commands.find_by_request_id(uow, scope, request_id) is not None:
                imported += 1
                continue
            try:
                async with uow.conn.begin_nested():
                    result = await capture.capture_in(
                        uow, new, request_scope=scope, request_id=request_id, reach=domain.LeadReach()
                    )
            except commands.RequestIdRace:
                imported += 1
                continue
            except DomainError as exc:
                for field_name, message in exc.field_violations or [("", exc.message)]:
                    if error_count < STORED_ERRORS:
                        errors.append(
                            {
                                "import_id": import_id,
                                "position": error_count,
                                "row_number": r.row_number,
                                "line_number": r.line_number,
                                "field": field_name[:100],
                                "message": message[:500],
                            }
                        )
                    error_count += 1
                continue
            if result.duplicate:
                duplicates += 1
            else:
                imported += 1
        if errors:
            await uow.conn.execute(lead_import_errors.insert(), errors)
        row_errors = error_count - imp.error_count

        def count_rows() -> None:
            LEAD_IMPORT_ROWS.labels("imported").inc(imported)
            LEAD_IMPORT_ROWS.labels("duplicate").inc(duplicates)
            LEAD_IMPORT_ROWS.labels("error").inc(row_errors)

        uow.after_commit(count_rows)
        await uow.conn.execute(
            update(lead_imports)
            .where(lead_imports.c.id == import_id)
            .values(
                next_row=rows[-1].row_number,
                rows_imported=lead_imports.c.rows_imported + imported,
                duplicates=lead_imports.c.duplicates + duplicates,
                error_count=error_count,
                lease_until=_lease(limits),
                updated_at=now,
            )
        )
        return True


async def run_import(db: Database, import_id: str, limits: ImportLimits) -> None:
    """Phase 2 to the end (or until the process stops: the resume job carries on)."""
    while await capture_batch(db, import_id, limits):
        pass


async def resume_imports(db: Database, limits: ImportLimits) -> int:
    """The periodic job: take over imports whose worker's lease ran out (SKIP LOCKED, so replicas
    share the work). One still validating lost its upload: it is rejected. Returns how many."""
    taken = 0
    while True:
        async with db.unit_of_work() as uow:
            row = (
                await uow.conn.execute(
                    select(lead_imports.c.id, lead_imports.c.status)
                    .where(
                        lead_imports.c.status.in_([VALIDATING, IMPORTING]),
                        or_(lead_imports.c.lease_until.is_(None), lead_imports.c.lease_until < func.now()),
                    )
                    .order_by(lead_imports.c.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return taken
            await uow.conn.execute(
                update(lead_imports).where(lead_imports.c.id == row.id).values(lease_until=_lease(limits))
            )
        taken += 1
        if row.status == VALIDATING:
            await _reject(db, row.id, "the upload was interrupted before the file was read to its end", {})
            continue
        log.info("resuming lead import", extra={"lead_import_id": row.id})
        await run_import(db, row.id, limits)


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
        source, mode = _validate_header(first.header)
        row, created = await _start(self.db, first.header, source, mode, self.limits)
        if not created:
            await _drain(request_iterator)
            async with self.db.unit_of_work() as uow:
                found, errors = await get_import(uow, row.id)
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

        status, _ = await read_and_stage(self.db, row, chunks(), self.limits)
        await _drain(request_iterator)  # a file rejected early: the rest of it still arrives
        if status == IMPORTING:
            task = asyncio.create_task(self._phase2(row.id))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            # Not cancelled at the timeout: the import goes on and GetLeadImport shows its progress.
            await asyncio.wait({task}, timeout=self.limits.wait_seconds)
        async with self.db.unit_of_work() as uow:
            found, errors = await get_import(uow, row.id)
        return imports_pb2.ImportLeadsResponse(lead_import=import_to_proto(found, errors))

    async def _phase2(self, import_id: str) -> None:
        try:
            await run_import(self.db, import_id, self.limits)
        except Exception:
            # The lease runs out and the resume job takes the import over.
            log.exception("lead import stopped; the resume job will carry on", extra={"lead_import_id": import_id})

    async def GetLeadImport(
        self, request: imports_pb2.GetLeadImportRequest, context: grpc.aio.ServicerContext
    ) -> imports_pb2.GetLeadImportResponse:
        require({"lead_import_id": request.lead_import_id})
        async with self.db.unit_of_work() as uow:
            row, errors = await get_import(uow, request.lead_import_id)
        return imports_pb2.GetLeadImportResponse(lead_import=import_to_proto(row, errors))

    async def ListLeadImports(
        self, request: imports_pb2.ListLeadImportsRequest, context: grpc.aio.ServicerContext
    ) -> imports_pb2.ListLeadImportsResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await keyset_page(
                uow.conn,
                select(lead_imports),
                lead_imports.c.created_at,
                lead_imports.c.id,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                descending=True,
            )
        return imports_pb2.ListLeadImportsResponse(
            lead_imports=[import_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )
