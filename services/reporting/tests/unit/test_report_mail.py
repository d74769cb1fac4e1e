"""A scheduled report's e-mail: a PNG chart and an A4 PDF whose table stops at MAX_PDF_ROWS rows
(saying so) while the total stays the whole report's; headers in the reader's language."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date

import pytest

from crm_reporting import builder, report_labels, report_mail

pytestmark = pytest.mark.unit


def text_of(pdf: bytes) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("pdftotext is missing: apt-get install poppler-utils")
    return re.sub(
        r"\s", "", subprocess.run([tool, "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    )


def test_a_long_report_shows_its_first_rows_and_the_whole_total() -> None:
    columns = [builder.Column("city", "dimension"), builder.Column("leads", "measure", "count")]
    rows = [builder.Row((f"c{i}",), (f"city-{i:03}",), [1.0]) for i in range(250)]
    mail = report_mail.render(
        "Leads by city",
        builder.Result(columns, rows, builder.Row((), (), [250.0])),
        date(2026, 11, 1),
        date(2026, 11, 30),
        "en",
        "monthly",
    )
    assert mail.png.startswith(b"\x89PNG") and mail.pdf.startswith(b"%PDF")
    text = text_of(mail.pdf)
    assert "city-199" in text and "city-200" not in text
    assert "Thefirst200of250rowsareshown" in text and "Total250" in text
    assert mail.subject == "Leads by city: November 1, 2026 – November 30, 2026"
    assert "every month" in mail.text


def test_headers_are_in_the_readers_language_with_the_currency() -> None:
    assert report_labels.label("revenue", "he", "ILS") == "הכנסות (ILS)"
    assert report_labels.label("leads", "fa") == "سرنخ‌ها"
    assert report_labels.label("deals_won", "en") == "Deals won"
    assert report_labels.label("leads", "de") == "Leads"
    assert report_labels.label("something_new", "he") == "something_new"
