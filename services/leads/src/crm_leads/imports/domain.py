"""CSV import rules, pure: an import's statuses and modes, its limits, and phase 1's reading of the
file's records (the header, then each row validated as a lead and staged or reported). No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm_kit.errors import InvalidArgument
from crm_leads.imports.csv_stream import FileRejected, Record, read_header, row_values
from crm_leads.leads import domain as lead_domain

VALIDATING, IMPORTING, COMPLETED, REJECTED = "validating", "importing", "completed", "rejected"
ALL_OR_NOTHING, SKIP_INVALID = "all_or_nothing", "skip_invalid"
# Row errors kept in full per import (the count goes on).
STORED_ERRORS = 1000


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
class Phase1:
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


def check_row(state: Phase1, record: Record, campaign: str) -> None:
    assert state.columns is not None
    state.rows_read += 1
    row_number = state.rows_read
    values, problems = row_values(state.columns, record)
    violations = list(problems)
    new: lead_domain.NewLead | None = None
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
        new = lead_domain.validate_new_lead(
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
                lead_domain.normalize_locale(values.get("locale", "").strip())
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


def take(state: Phase1, record: Record, campaign: str, limits: ImportLimits) -> None:
    if state.columns is None:
        state.columns = read_header(record)
        return
    if state.rows_read >= limits.max_rows:
        raise FileRejected(
            f"the file has more than {limits.max_rows} rows",
            line_number=record.line_number,
            row_number=state.rows_read + 1,
        )
    check_row(state, record, campaign)
