"""Quote PDF: render time and size per locale (he, fa, en), in the bench process (no stack).

`render_quote_pdf` is what `GET /quotes/{id}.pdf` spends its CPU on (WeasyPrint: HTML/CSS layout
with Pango/HarfBuzz shaping). Each size (lines per quote) is rendered once to warm up (fontconfig,
the template, the stylesheet), then `renders` times; the figures are wall time per render and
the PDF's bytes and pages, and the CPU time per render (`cpu_p50_ms`: the figure that holds
when other work shares the cores). Run alone to look at the documents too:

    uv run --frozen python bench/quote_pdf.py [--renders N] [--lines 3 60] [--png DIR]

writes quote-<locale>-<lines>.pdf and its pages as PNG (pdftoppm -r 80) into DIR.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

from loadgen import latency_summary

from crm_sales.catalog import money
from crm_sales.quotes.document import CompanyDetails, QuoteDocLine, QuoteDocument
from crm_sales.quotes.pdf import render_quote_pdf

LOCALES = ("he", "fa", "en")
CURRENCY = {"he": "ILS", "fa": "IRR", "en": "USD"}
VAT_BP = {"he": 1800, "fa": 1000, "en": 0}
COMPANY = {
    "he": CompanyDetails(
        "רהיטי הגליל בע״מ", "רחוב הרצל 12\nתל אביב-יפו 6578901", "515123456", "+972 3-555-1234", "sales@galil.co.il"
    ),
    "fa": CompanyDetails(
        "مبلمان البرز",
        "تهران، خیابان ولیعصر، پلاک ۱۲۴۰\nکد پستی ۱۵۱۱۷-۴۳۸۱۱",
        "10101234567",
        "+98 21 8888 7777",
        "sales@alborz-mobl.ir",
    ),
    "en": CompanyDetails(
        "Galil Furniture Ltd", "12 Herzl Street\nTel Aviv-Yafo 6578901, Israel", "IL515123456", "+972 3-555-1234", ""
    ),
}
BILL_TO = {
    "he": ("משרד עו״ד כהן ושות׳ (Cohen & Co)", "514000111", "שדרות רוטשילד 45, תל אביב", "054-123-4567"),
    "fa": ("شرکت پارس‌آوا (Pars Ava Co)", "14003456789", "اصفهان، خیابان چهارباغ، شماره ۵۵", "+98 913 123 4567"),
    "en": ("Cohen & Co Law Office", "514000111", "45 Rothschild Blvd, Tel Aviv", "+972 54-123-4567"),
}
# (sku, description, quantity, unit, unit price in major units, line discount bp)
ITEMS = {
    "he": [
        ("SOFA-3S/GR-220", "ספה תלת-מושבית ״מילאנו״ 220 ס״מ, אפור", 2, "unit", 4_890, 1000),
        ("SRV-INST-03", "התקנה והובלה לקומה 3", 3, "hour", 245, 0),
        ("CHR-ERG-X2", "Office chair ErgoPro X2 — כיסא משרדי", 12, "unit", 1_225, 1250),
    ],
    "fa": [
        ("SOFA-3S/GR-220", "مبل سه‌نفره «میلان» ۲۲۰ سانتی‌متر، خاکستری", 2, "unit", 45_000_000, 1000),
        ("SRV-INST-03", "نصب و حمل تا طبقه ۳", 3, "hour", 2_250_000, 0),
        ("CHR-ERG-X2", "Office chair ErgoPro X2 — صندلی اداری", 12, "unit", 11_250_000, 1250),
    ],
    "en": [
        ("SOFA-3S/GR-220", 'Three-seat sofa "Milano" 220 cm, grey', 2, "unit", 1_299, 1000),
        ("SRV-INST-03", "Installation and delivery to floor 3", 3, "hour", 65, 0),
        ("CHR-ERG-X2", "ErgoPro X2 office chair (כיסא משרדי)", 12, "unit", 325, 1250),
    ],
}
NOTES = {
    "he": "המחירים כוללים אחריות לשנתיים.\nתנאי תשלום: שוטף + 30.",
    "fa": "قیمت‌ها شامل ۲ سال گارانتی است.\nشرایط پرداخت: ۳۰ روزه.",
    "en": "Prices include a two-year warranty.\nPayment terms: net 30.",
}


def sample_document(locale: str, lines: int) -> QuoteDocument:
    """A quote of `lines` lines in `locale`, priced as quotes price it (catalog.money), 5 % off."""
    currency = CURRENCY[locale]
    scale = 10 ** money.minor_digits(currency)
    rows = [ITEMS[locale][i % len(ITEMS[locale])] for i in range(lines)]
    alone = [
        money.line_amounts(q * money.MILLI, price * scale, disc, VAT_BP[locale], currency=currency)
        for _, _, q, _, price, disc in rows
    ]
    totals = money.document_totals(alone, 500, currency=currency)
    doc_lines = tuple(
        QuoteDocLine(sku, text, q, unit, price * scale, disc, a.net_minor, VAT_BP[locale], a.tax_minor, a.total_minor)
        for (sku, text, q, unit, price, disc), a in zip(rows, alone, strict=True)
    )
    name, tax_id, address, phone = BILL_TO[locale]
    return QuoteDocument(
        locale=locale,
        number="Q-2026-0042",
        version=2,
        issue_date=date(2026, 12, 5),
        valid_until=date(2027, 1, 4),
        company=COMPANY[locale],
        bill_to_name=name,
        bill_to_tax_id=tax_id,
        bill_to_address=address,
        bill_to_phone=phone,
        currency=currency,
        lines=doc_lines,
        subtotal_minor=sum(a.net_minor for a in alone),
        discount_bp=500,
        discount_minor=totals.document_discount_minor,
        tax_minor=totals.tax_minor,
        total_minor=totals.total_minor,
        notes=NOTES[locale],
    )


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(f"{tool} is missing: run scripts/system-packages.sh (Debian poppler-utils)")
    return path


def _pages(pdf: bytes) -> int:
    """The PDF's page count, as pdfinfo reads it (the page objects sit in compressed streams)."""
    info = subprocess.run([_poppler("pdfinfo"), "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    match = re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"pdfinfo found no page count:\n{info}")
    return int(match.group(1))


def measure(locale: str, lines: int, renders: int) -> tuple[dict[str, Any], bytes]:
    doc = sample_document(locale, lines)
    pdf = render_quote_pdf(doc)  # warm-up
    times_ms, cpu_ms = [], []
    for _ in range(renders):
        start, cpu_start = time.perf_counter(), time.process_time()
        pdf = render_quote_pdf(doc)
        times_ms.append((time.perf_counter() - start) * 1000)
        cpu_ms.append((time.process_time() - cpu_start) * 1000)
    figures = {
        **latency_summary(times_ms),
        "cpu_p50_ms": round(statistics.median(cpu_ms), 2),
        "lines": lines,
        "pages": _pages(pdf),
        "pdf_bytes": len(pdf),
    }
    return figures, pdf


def run(renders: int, sizes: tuple[int, ...], png_dir: Path | None = None) -> dict[str, Any]:
    """{locale: {"lines_<n>": figures}} for every locale and quote size."""
    result: dict[str, Any] = {}
    for locale in LOCALES:
        for lines in sizes:
            figures, pdf = measure(locale, lines, renders)
            result.setdefault(locale, {})[f"lines_{lines}"] = figures
            if png_dir is not None:
                _write_pngs(pdf, png_dir / f"quote-{locale}-{lines}")
    return result


def _write_pngs(pdf: bytes, stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".pdf").write_bytes(pdf)
    subprocess.run([_poppler("pdftoppm"), "-png", "-r", "80", str(stem.with_suffix(".pdf")), str(stem)], check=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=10, help="timed renders per locale and size")
    parser.add_argument("--lines", type=int, nargs="+", default=[3, 60], help="quote sizes, in lines")
    parser.add_argument("--png", type=Path, help="write each PDF and its pages as PNG into this directory")
    args = parser.parse_args(argv)
    result = run(args.renders, tuple(args.lines), args.png)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
