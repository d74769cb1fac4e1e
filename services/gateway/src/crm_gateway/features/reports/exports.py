"""A report as a file: CSV (UTF-8 with a byte-order mark, so Excel reads Hebrew and Persian) and
XLSX (a right-to-left sheet for Hebrew and Persian). Headers are in the report's language (reporting
names them: ReportColumn.label); money is
in major units of its currency, one column per currency; rates are fractions (XLSX: percent)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from babel.numbers import get_currency_precision
from openpyxl import Workbook
from openpyxl.styles import Font

from crm_gateway.features.reports.builder_schemas import ReportColumn, ReportResult

RIGHT_TO_LEFT = frozenset({"he", "fa"})


def header(column: ReportColumn) -> str:
    """The header reporting names in the report's language; an older reporting's name as is."""
    if column.label:
        return column.label
    return f"{column.name} ({column.currency_code})" if column.currency_code else column.name


def _number(column: ReportColumn, value: float | None) -> float | int | None:
    if value is None:
        return None
    if column.unit == "money":
        precision = get_currency_precision(column.currency_code) if column.currency_code else 0
        return round(value / 10**precision, precision) if precision else int(value)
    if column.unit == "count":
        return int(value)
    return round(value, 4)


def table(result: ReportResult) -> tuple[list[str], list[list[str | float | int | None]]]:
    """Header and rows (labels, then numbers), the total last."""
    measures = [c for c in result.columns if c.kind == "measure"]
    dimensions = len(result.columns) - len(measures)
    head = [header(c) for c in result.columns]
    rows: list[list[str | float | int | None]] = []
    for row in [*result.rows, result.total]:
        labels: list[str | float | int | None] = list(row.labels) or [result.total_label or "total"]
        labels += [""] * (dimensions - len(labels))
        rows.append(labels[: max(dimensions, 1)] + [_number(c, v) for c, v in zip(measures, row.values, strict=True)])
    if not dimensions:
        head = [result.total_label or "total", *head]
        rows = rows[-1:]
    return head, rows


def to_csv(result: ReportResult) -> bytes:
    head, rows = table(result)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(head)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value: str | float | int | None) -> str | float | int:
    """A label that a spreadsheet would run as a formula (=, +, -, @) is kept as text."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_xlsx(result: ReportResult, locale: str, title: str = "report") -> bytes:
    head, rows = table(result)
    book = Workbook()
    sheet = book.active
    assert sheet is not None, "a new workbook has a sheet"
    sheet.title = _sheet_title(title)
    sheet.sheet_view.rightToLeft = locale in RIGHT_TO_LEFT
    sheet.append(head)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    ratios = _ratio_columns(result.columns, len(head) - len(result.columns))
    for row in rows:
        sheet.append(row)
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                # A label is text, never a formula the sheet would run.
                cell.data_type = "s"
    for column in ratios:
        for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
            cell.number_format = "0.0%"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _ratio_columns(columns: Sequence[ReportColumn], shift: int) -> list[int]:
    return [i + 1 + shift for i, c in enumerate(columns) if c.unit == "ratio"]


def _sheet_title(title: str) -> str:
    cleaned = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31].strip()
    return cleaned or "report"
