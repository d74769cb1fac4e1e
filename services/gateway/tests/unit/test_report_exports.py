"""A built report as a file: CSV with a byte-order mark and the headers reporting named in the report's language, money
in major units per currency, labels that look like formulas kept as text; XLSX right to left for
Hebrew and Persian, rates as percents."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from crm_gateway.features.reports import exports
from crm_gateway.features.reports.builder_schemas import ReportResult

pytestmark = pytest.mark.unit

RESULT = ReportResult.model_validate(
    {
        "columns": [
            {"name": "source", "kind": "dimension", "unit": "", "currency_code": ""},
            {"name": "deals_won", "kind": "measure", "unit": "count", "currency_code": ""},
            {"name": "revenue", "kind": "measure", "unit": "money", "currency_code": "ILS"},
            {"name": "win_rate", "kind": "measure", "unit": "ratio", "currency_code": ""},
        ],
        "rows": [
            {"keys": ["radio"], "labels": ["radio"], "values": [3, 123456, 0.75]},
            {"keys": ["=HYPERLINK()"], "labels": ["=HYPERLINK()"], "values": [0, 0, None]},
        ],
        "total": {"keys": [], "labels": [], "values": [3, 123456, 0.6]},
        "start_date": "2026-07-01",
        "end_date": "2026-09-30",
        "chart": {"type": "bar", "x": "source", "series": "", "measure": 0},
    }
)


def labelled(headers: list[str], total: str) -> ReportResult:
    """RESULT as reporting answers it in a language: a label per column, and the total's."""
    result = RESULT.model_copy(deep=True)
    for column, label in zip(result.columns, headers, strict=True):
        column.label = label
    result.total_label = total
    return result


def test_csv_has_a_bom_headers_in_hebrew_major_units_and_no_formulas() -> None:
    body = exports.to_csv(labelled(["מקור", "עסקאות שנסגרו", "הכנסות (ILS)", "שיעור זכייה"], "סה״כ"))
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["מקור", "עסקאות שנסגרו", "הכנסות (ILS)", "שיעור זכייה"]
    assert rows[1] == ["radio", "3", "1234.56", "0.75"]
    assert rows[2] == ["'=HYPERLINK()", "0", "0.0", ""]
    assert rows[3] == ["סה״כ", "3", "1234.56", "0.6"]


def test_xlsx_is_right_to_left_for_persian_with_rates_as_percents() -> None:
    persian = labelled(["منبع", "معاملات موفق", "درآمد (ILS)", "نرخ موفقیت"], "جمع")
    book = load_workbook(io.BytesIO(exports.to_xlsx(persian, "fa", "فروش")))
    sheet = book.active
    assert sheet is not None and sheet.title == "فروش" and sheet.sheet_view.rightToLeft
    assert [c.value for c in sheet[1]] == ["منبع", "معاملات موفق", "درآمد (ILS)", "نرخ موفقیت"]
    assert [c.value for c in sheet[2]] == ["radio", 3, 1234.56, 0.75]
    assert sheet["D2"].number_format == "0.0%"
    # A label is text, never a formula the sheet would run.
    assert sheet["A3"].data_type == "s"
    # Without labels (an older reporting): the names, money with its currency.
    english = load_workbook(io.BytesIO(exports.to_xlsx(RESULT, "en"))).active
    assert english is not None and not english.sheet_view.rightToLeft
    assert [c.value for c in english[1]] == ["source", "deals_won", "revenue (ILS)", "win_rate"]
