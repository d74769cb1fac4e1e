"""CSV imports of lead lists: phase 1 reads, validates and stages the file; phase 2 captures the
staged rows.

Phase 1 (inside the ImportLeads call) streams the file, validates every row and stages the valid
ones, committing a batch with the progress counters at a time so GetLeadImport sees it run; a
broken file (or, all_or_nothing, any bad row) ends as REJECTED with nothing captured. Phase 2 (in
the background, resumable) captures the staged rows through crm_leads.leads.commands.capture_in, a
batch per transaction, each row with request_id `<row>` in the import's request scope
(`import:<import id>`, which no API caller can use) so no row is ever captured twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_kit import caller
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import DomainError
from crm_leads.campaigns import queries as campaign_queries
from crm_leads.db import lead_import_errors, lead_import_rows, lead_imports
from crm_leads.imports import queries
from crm_leads.imports.csv_stream import CsvStream, FileRejected
from crm_leads.imports.domain import (
    ALL_OR_NOTHING,
    COMPLETED,
    IMPORTING,
    REJECTED,
    STORED_ERRORS,
    VALIDATING,
    ImportLimits,
    Phase1,
    take,
)
from crm_leads.leads import commands as lead_commands
from crm_leads.leads import domain as lead_domain
from crm_leads.leads import queries as lead_queries
from crm_leads.metrics import LEAD_IMPORT_ROWS, LEAD_IMPORTS

log = logging.getLogger(__name__)


def _lease(limits: ImportLimits) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=limits.lease_seconds)


async def _flush(db: Database, state: Phase1, limits: ImportLimits) -> None:
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


@dataclass(frozen=True)
class Upload:
    """An import's header as checked at the edge: source and mode normalized."""

    source: str
    mode: str
    campaign: str = ""
    file_name: str = ""
    request_id: str = ""


async def start(db: Database, upload: Upload, limits: ImportLimits) -> tuple[Any, bool]:
    """The import's row (created now, or the first one of its request_id) and whether it is new."""
    async with db.unit_of_work() as uow:
        # An upload's request id is the uploader's: another caller's equal id is another import.
        who = caller.current()
        actor = ((who.actor if who else "") or caller.UNKNOWN_ACTOR)[:200]
        if upload.request_id:
            existing = await queries.find_upload(uow, actor, upload.request_id)
            if existing is not None:
                return existing, False
        campaign = await campaign_queries.resolve_campaign(uow, upload.source, upload.campaign)
        now = datetime.now(UTC)
        row = (
            await uow.conn.execute(
                pg_insert(lead_imports)
                .values(
                    id=str(uuid.uuid4()),
                    request_id=upload.request_id or None,
                    source=upload.source,
                    campaign_id=campaign.id or None,
                    campaign_name=campaign.name,
                    file_name=upload.file_name.strip(),
                    mode=upload.mode,
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
            winner = await queries.find_upload(uow, actor, upload.request_id)
        assert winner is not None
        return winner, False
    return row, True


async def read_and_stage(
    db: Database, row: Any, chunks: AsyncIterator[bytes], limits: ImportLimits
) -> tuple[str, Phase1]:
    """Phase 1 over the file's bytes; returns the import's status after it and what was read."""
    state = Phase1(import_id=row.id, mode=row.mode, source=row.source, campaign_id=row.campaign_id or "")
    campaign = state.campaign_id
    stream = CsvStream()
    reason = ""
    try:
        async for data in chunks:
            for record in stream.feed(data):
                take(state, record, campaign, limits)
            if len(state.staged) >= limits.batch_rows or len(state.errors) >= limits.batch_rows:
                await _flush(db, state, limits)
        for record in stream.feed(b"", final=True):
            take(state, record, campaign, limits)
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


# ---------------------------------------------------------------- phase 2: capture the staged rows


@dataclass
class _BatchTally:
    """What one phase-2 batch did with its rows, and the row errors to store."""

    error_count: int
    imported: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, import_id: str, row: Any, exc: DomainError) -> None:
        for field_name, message in exc.field_violations or [("", exc.message)]:
            if self.error_count < STORED_ERRORS:
                self.errors.append(
                    {
                        "import_id": import_id,
                        "position": self.error_count,
                        "row_number": row.row_number,
                        "line_number": row.line_number,
                        "field": field_name[:100],
                        "message": message[:500],
                    }
                )
            self.error_count += 1


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
            await _complete(uow, imp, now)
            return False
        tally = _BatchTally(error_count=imp.error_count)
        for r in rows:
            await _capture_row(uow, imp, r, tally)
        await _record_batch(uow, imp, rows[-1].row_number, tally, limits, now)
        return True


async def _complete(uow: UnitOfWork, imp: Any, now: datetime) -> None:
    """No staged row left: the import is completed and its staging rows go."""
    await uow.conn.execute(delete(lead_import_rows).where(lead_import_rows.c.import_id == imp.id))
    await uow.conn.execute(
        update(lead_imports)
        .where(lead_imports.c.id == imp.id)
        .values(status=COMPLETED, lease_until=None, updated_at=now, completed_at=now)
    )
    uow.audit(
        "leads.ImportLeads",
        "lead_import",
        imp.id,
        {"status": COMPLETED, "rows_imported": imp.rows_imported, "duplicates": imp.duplicates},
    )
    uow.after_commit(LEAD_IMPORTS.labels(COMPLETED).inc)


async def _capture_row(uow: UnitOfWork, imp: Any, r: Any, tally: _BatchTally) -> None:
    """Capture one staged row (in a savepoint: a refused row leaves the batch's others in place)."""
    new = lead_domain.NewLead(
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
    scope, request_id = lead_domain.import_request_scope(imp.id), str(r.row_number)
    if await lead_queries.find_by_request_id(uow, scope, request_id) is not None:
        tally.imported += 1
        return
    try:
        async with uow.conn.begin_nested():
            result = await lead_commands.capture_in(
                uow, new, request_scope=scope, request_id=request_id, reach=lead_domain.LeadReach()
            )
    except lead_commands.RequestIdRace:
        tally.imported += 1
        return
    except DomainError as exc:
        tally.error(imp.id, r, exc)
        return
    if result.duplicate:
        tally.duplicates += 1
    else:
        tally.imported += 1


async def _record_batch(
    uow: UnitOfWork, imp: Any, last_row: int, tally: _BatchTally, limits: ImportLimits, now: datetime
) -> None:
    """The batch's row errors, counters and cursor, in its transaction (metrics after the commit)."""
    if tally.errors:
        await uow.conn.execute(lead_import_errors.insert(), tally.errors)
    row_errors = tally.error_count - imp.error_count

    def count_rows() -> None:
        LEAD_IMPORT_ROWS.labels("imported").inc(tally.imported)
        LEAD_IMPORT_ROWS.labels("duplicate").inc(tally.duplicates)
        LEAD_IMPORT_ROWS.labels("error").inc(row_errors)

    uow.after_commit(count_rows)
    await uow.conn.execute(
        update(lead_imports)
        .where(lead_imports.c.id == imp.id)
        .values(
            next_row=last_row,
            rows_imported=lead_imports.c.rows_imported + tally.imported,
            duplicates=lead_imports.c.duplicates + tally.duplicates,
            error_count=tally.error_count,
            lease_until=_lease(limits),
            updated_at=now,
        )
    )


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
