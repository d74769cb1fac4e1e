"""The quote PDF in Hebrew, Persian and English, read back through poppler's text layer.

pdftotext gives the text in logical order, so a reordered phone number or amount shows up as a
wrong string; `pdftotext -bbox` gives each word's position, which checks the visual order too.
poppler-utils and fonts-noto-core come from scripts/system-packages.sh (`make install`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import threading
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import grpc
import pytest

from crm_kit.errors import InvalidArgument, ResourceExhausted
from crm_sales.catalog import money
from crm_sales.quotes import locale_format as fmt
from crm_sales.quotes import pdf as quote_pdf
from crm_sales.quotes.document import CompanyDetails, QuoteDocLine, QuoteDocument
from crm_sales.quotes.pdf import (
    MAX_LINES,
    MAX_RENDERS_IN_FLIGHT,
    RenderedPdfs,
    render_quote_pdf,
    render_quote_pdf_async,
)

pytestmark = pytest.mark.unit

INSTALL_HINT = "install Debian's poppler-utils and fonts-noto-core: run scripts/system-packages.sh as root"
# Directional marks pdftotext adds around right-to-left runs, and the ones CLDR patterns carry.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))

COMPANY = {
    "he": CompanyDetails(
        "רהיטי הגליל בע״מ", "רחוב הרצל 12\nתל אביב-יפו 6578901", "515123456", "+972 3-555-1234", "sales@galil.co.il"
    ),
    "fa": CompanyDetails(
        "مبلمان البرز", "تهران، خیابان ولیعصر، پلاک ۱۲۴۰", "10101234567", "+98 21 8888 7777", "sales@alborz.ir"
    ),
    "en": CompanyDetails(
        "Galil Furniture Ltd", "12 Herzl Street, Tel Aviv", "IL515123456", "+972 3-555-1234", "a@b.co"
    ),
}
BILL_TO = {
    "he": ("משרד עו״ד כהן ושות׳ Cohen & Co", "514000111", "שדרות רוטשילד 45, תל אביב", "054-123-4567"),
    "fa": ("شرکت پارس‌آوا Pars Ava", "14003456789", "اصفهان، خیابان چهارباغ", "+98 913 123 4567"),
    "en": ("Cohen & Co Law Office", "514000111", "45 Rothschild Blvd, Tel Aviv", "+972 54-123-4567"),
}
# (sku, description, quantity, unit, unit price, line discount, VAT rate): Latin and numbers in RTL text.
LINES = {
    "he": [
        ("SOFA-3S/GR-220", "ספה תלת-מושבית Milano 220 ס״מ", 2, "unit", 489_000, 1000, 1800),
        ("SRV-INST-03", "התקנה והובלה לקומה 3", 3, "hour", 24_450, 0, 1800),
    ],
    "fa": [
        ("SOFA-3S/GR-220", "مبل سه‌نفره Milano ۲۲۰ سانتی‌متر", 2, "unit", 4_500_000_000, 1000, 1000),
        ("SRV-INST-03", "نصب و حمل تا طبقه ۳", 3, "hour", 225_000_000, 0, 1000),
    ],
    "en": [
        ("SOFA-3S/GR-220", "Office chair ErgoPro X2 כיסא משרדי", 12, "unit", 129_900, 1250, 1800),
        ("SRV-INST-03", "Installation and delivery to floor 3", 1, "hour", 6_495, 0, 1800),
    ],
}
CURRENCY = {"he": "ILS", "fa": "IRR", "en": "USD"}
DISCOUNT_BP = {"he": 500, "fa": 500, "en": 0}


def sample(locale: str) -> QuoteDocument:
    """A document priced the way quotes price it (catalog.money)."""
    currency = CURRENCY[locale]
    rows = LINES[locale]
    alone = [money.line_amounts(q * money.MILLI, p, d, r, currency=currency) for _, _, q, _, p, d, r in rows]
    totals = money.document_totals(alone, DISCOUNT_BP[locale], currency=currency)
    lines = tuple(
        QuoteDocLine(sku, text, q, unit, price, disc, a.net_minor, rate, a.tax_minor, a.total_minor)
        for (sku, text, q, unit, price, disc, rate), a in zip(rows, alone, strict=True)
    )
    return QuoteDocument(
        locale=locale,
        number="Q-2026-0042",
        version=2,
        issue_date=date(2026, 12, 5),
        valid_until=date(2027, 1, 4),
        company=COMPANY[locale],
        bill_to_name=BILL_TO[locale][0],
        bill_to_tax_id=BILL_TO[locale][1],
        bill_to_address=BILL_TO[locale][2],
        bill_to_phone=BILL_TO[locale][3],
        currency=currency,
        lines=lines,
        subtotal_minor=sum(a.net_minor for a in alone),
        discount_bp=DISCOUNT_BP[locale],
        discount_minor=totals.document_discount_minor,
        tax_minor=totals.tax_minor,
        total_minor=totals.total_minor,
        notes={"he": "תנאי תשלום: שוטף + 30", "fa": "شرایط پرداخت: ۳۰ روزه", "en": "Payment terms: net 30"}[locale],
    )


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: {INSTALL_HINT}")
    return path


def normalized(text: str) -> str:
    """Without directional marks, NBSP as a space, runs of whitespace as one space."""
    return re.sub(r"\s+", " ", text.translate(_BIDI_CONTROLS).replace("\u00a0", " "))


def squeezed(text: str) -> str:
    """Without any whitespace or ZWNJ: pdftotext drops the space where a line changes direction
    ("5בדצמבר") and ZWNJ is no glyph, but the order of the characters must hold."""
    return re.sub(r"[\s\u200c]", "", normalized(text))


def pdf_text(pdf: bytes) -> str:
    out = subprocess.run([poppler("pdftotext"), "-", "-"], input=pdf, capture_output=True, check=True)
    return squeezed(out.stdout.decode())


def _logical(word: str) -> str:
    """pdftotext -bbox gives a right-to-left word's characters in visual order."""
    rtl = any(unicodedata.bidirectional(c) in ("R", "AL") for c in word)
    return word[::-1] if rtl else word


def words_left_to_right(pdf: bytes) -> list[list[str]]:
    """Each printed line's words (in logical spelling) in visual order, left to right on the page;
    words whose vertical centres are within 3 pt share a line, whatever their font."""
    out = subprocess.run([poppler("pdftotext"), "-bbox", "-", "-"], input=pdf, capture_output=True, check=True)
    words: list[tuple[int, float, float, str]] = []
    page_no = 0
    for element in ET.fromstring(out.stdout).iter():
        if element.tag.endswith("page"):
            page_no += 1
        elif element.tag.endswith("word") and element.text:
            a = element.attrib
            centre = (float(a["yMin"]) + float(a["yMax"])) / 2
            words.append((page_no, centre, float(a["xMin"]), _logical(element.text)))
    rows: list[list[tuple[float, str]]] = []
    last: tuple[int, float] | None = None
    for page, centre, x, text in sorted(words):
        if last is None or page != last[0] or centre - last[1] > 3:
            rows.append([])
            last = (page, centre)
        rows[-1].append((x, text))
    return [[text for _, text in sorted(row)] for row in rows]


@pytest.fixture(scope="module")
def pdfs() -> dict[str, bytes]:
    poppler("pdftotext")
    return {locale: render_quote_pdf(sample(locale)) for locale in ("he", "fa", "en")}


@pytest.mark.parametrize("locale", ["he", "fa", "en"])
def test_every_locale_renders_a_pdf_with_its_fonts_embedded(pdfs: dict[str, bytes], locale: str) -> None:
    pdf = pdfs[locale]
    assert pdf.startswith(b"%PDF-")
    fonts = subprocess.run([poppler("pdffonts"), "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    faces = {line.split()[0].split("+")[-1] for line in fonts.splitlines()[2:]}
    script_face = {"he": "Noto-Sans-Hebrew", "fa": "Noto-Sans-Arabic", "en": "Noto-Sans"}[locale]
    assert script_face in faces, fonts
    assert "Noto-Sans" in faces, fonts  # Latin letters and digits of the SKUs and e-mails
    assert all(face.startswith("Noto-") for face in faces), fonts  # no fallback to another family


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "he",
            [
                "הצעת מחיר",
                "רהיטי הגליל בע״מ",
                "משרד עו״ד כהן ושות׳ Cohen & Co",
                "ספה תלת-מושבית Milano 220 ס״מ",
                "התקנה והובלה לקומה 3",
                "+972 3-555-1234",
                "054-123-4567",
                "SOFA-3S/GR-220",
                "מק״ט",
                "מע״מ 18%",
                "הנחה 5%",
                "סה״כ לתשלום",
                "10,689.29",  # the total; its ₪ sign's place is checked on the page below
                "476.78",  # the document's 5 % discount
                "5 בדצמבר 2026",
                "בתוקף עד",
                "4 בינואר 2027",
                "עמוד 1 מתוך 1",
                "תנאי תשלום: שוטף",  # (pdftotext puts the "+ 30" after it in visual order)
            ],
        ),
        (
            "fa",
            [
                "پیش‌فاکتور",
                "مبلمان البرز",
                "شرکت پارس‌آوا Pars Ava",
                "مبل سه‌نفره Milano ۲۲۰ سانتی‌متر",
                "+98 21 8888 7777",
                "+98 913 123 4567",
                "SOFA-3S/GR-220",
                "شرح",  # (no lam-alef here: poppler's text layer spells that ligature backwards)
                "مالیات بر ارزش افزوده",
                "۸٬۳۳۶٬۲۵۰",  # VAT 10 % of the discounted ۸۳٬۳۶۲٬۵۰۰
                "مبلغ قابل پرداخت",
                "۹۱٬۶۹۸٬۷۵۰",  # whole rials: IRR rounds to the rial
                "۸۷٬۷۵۰٬۰۰۰",
                "۱۴ آذر ۱۴۰۵",  # the Jalali date of 2026-12-05
                "۵ دسامبر ۲۰۲۶",
                "۱۴ دی ۱۴۰۵",  # valid until 2027-01-04
                "صفحه ۱ از ۱",
            ],
        ),
        (
            "en",
            [
                "Quote",
                "Galil Furniture Ltd",
                "Office chair ErgoPro X2 כיסא משרדי",
                "SOFA-3S/GR-220",
                "+972 54-123-4567",
                "VAT 18%",
                "$16,171.25",
                "$13,704.45",
                "December 5, 2026",
                "Valid until January 4, 2027",
                "Page 1 of 1",
            ],
        ),
    ],
)
def test_the_text_layer_reads_back_in_logical_order(pdfs: dict[str, bytes], locale: str, expected: list[str]) -> None:
    text = pdf_text(pdfs[locale])
    missing = [phrase for phrase in expected if squeezed(phrase) not in text]
    assert not missing, f"missing {missing} in:\n{text}"


def test_english_has_no_discount_row_without_a_discount(pdfs: dict[str, bytes]) -> None:
    text = pdf_text(pdfs["en"])
    assert "Discount" in text  # the column header
    assert "Discount0%" not in text


@pytest.mark.parametrize(("locale", "phone"), [("he", ["+972", "3-555-1234"]), ("fa", ["+98", "21", "8888", "7777"])])
def test_phone_numbers_keep_left_to_right_order_on_a_right_to_left_page(
    pdfs: dict[str, bytes], locale: str, phone: list[str]
) -> None:
    rows = words_left_to_right(pdfs[locale])
    assert any(any(row[i : i + len(phone)] == phone for i in range(len(row))) for row in rows), rows


@pytest.mark.parametrize(
    ("locale", "row_of"),
    [
        # Read right to left: "סה״כ לתשלום 10,689.29 ₪", so on the page: ₪, number, label.
        ("he", ["₪", "10,689.29", "לתשלום", "סה״כ"]),
        # "مبلغ قابل پرداخت ۹۱٬۶۹۸٬۷۵۰ ریال": the rial after the number, left of it on the page.
        ("fa", ["ریال", "۹۱٬۶۹۸٬۷۵۰", "پرداخت", "قابل", "مبلغ"]),
        ("en", ["Total", "$16,171.25"]),
    ],
)
def test_the_total_line_reads_in_the_page_direction(pdfs: dict[str, bytes], locale: str, row_of: list[str]) -> None:
    rows = words_left_to_right(pdfs[locale])
    assert row_of in rows, rows


def test_hebrew_table_runs_right_to_left(pdfs: dict[str, bytes]) -> None:
    """The first column (line number) is the rightmost: its header is right of the SKU header."""
    rows = words_left_to_right(pdfs["he"])
    header = next(row for row in rows if "מק״ט" in row and "תיאור" in row)
    assert header.index("#") > header.index("מק״ט") > header.index("תיאור"), header


async def test_the_async_render_leaves_the_event_loop_free() -> None:
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    before = ticks
    pdf = await render_quote_pdf_async(sample("he"))
    done.set()
    await task
    assert pdf.startswith(b"%PDF-")
    assert ticks > before + 1  # the loop kept running while the page was laid out


async def test_concurrent_renders_on_the_pool_each_print_their_own_document(pdfs: dict[str, bytes]) -> None:
    locales = ["he", "fa", "en", "fa"]  # as many as may be in flight (MAX_RENDERS_IN_FLIGHT)
    rendered = await asyncio.gather(*(render_quote_pdf_async(sample(locale)) for locale in locales))
    assert [pdf_text(pdf) for pdf in rendered] == [pdf_text(pdfs[locale]) for locale in locales]


@contextlib.contextmanager
def render_threads_held() -> Iterator[None]:
    """Every render thread busy until the block ends: renders started meanwhile wait in the
    queue, each holding its slot."""
    threads = quote_pdf._RENDER_THREADS
    started, release = threading.Barrier(threads + 1), threading.Event()

    def hold() -> None:
        started.wait(timeout=10)
        release.wait(timeout=60)

    holders = [quote_pdf._executor().submit(hold) for _ in range(threads)]
    started.wait(timeout=10)
    try:
        yield
    finally:
        release.set()
        for holder in holders:
            holder.result(timeout=10)


async def test_renders_beyond_the_cap_are_refused_at_once_not_queued() -> None:
    doc = sample("en")
    with render_threads_held():
        waiting = [asyncio.ensure_future(render_quote_pdf_async(doc)) for _ in range(MAX_RENDERS_IN_FLIGHT)]
        await asyncio.sleep(0)  # each takes its slot and waits for a thread
        with pytest.raises(ResourceExhausted) as busy:
            await render_quote_pdf_async(doc)
        assert (busy.value.reason, busy.value.grpc_code) == ("RENDER_BUSY", grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert busy.value.retry_after_seconds == 1

        # A caller that gives up before its render started frees its slot for the next one.
        waiting[0].cancel()
        await asyncio.gather(waiting[0], return_exceptions=True)
        await asyncio.sleep(0)
        waiting[0] = asyncio.ensure_future(render_quote_pdf_async(doc))
        await asyncio.sleep(0)
        with pytest.raises(ResourceExhausted):
            await render_quote_pdf_async(doc)
        assert not any(task.done() for task in waiting)

    assert all(pdf.startswith(b"%PDF-") for pdf in await asyncio.gather(*waiting))
    # Every slot is back once the renders are done.
    again = await asyncio.gather(*(render_quote_pdf_async(doc) for _ in range(MAX_RENDERS_IN_FLIGHT)))
    assert all(pdf.startswith(b"%PDF-") for pdf in again)


def test_rendered_documents_are_kept_least_recently_used_first_out() -> None:
    kept = RenderedPdfs(max_entries=3, max_bytes=100)
    for key in ("a", "b", "c"):
        kept.put(key, key.encode() * 10)
    assert kept.get("a") == b"a" * 10  # read: now the most recent
    kept.put("d", b"d" * 10)
    assert (kept.get("b"), len(kept)) == (None, 3)  # the least recently used went
    assert [kept.get(k) is not None for k in ("a", "c", "d")] == [True, True, True]

    # The byte cap evicts as the entry cap does; a document larger than the cap is not kept at all.
    kept.put("e", b"e" * 80)  # 110 bytes: "a", the least recent, goes
    assert [k for k in "acde" if kept.get(k) is not None] == ["c", "d", "e"] and kept.size_bytes == 100
    kept.put("huge", b"x" * 101)
    assert kept.get("huge") is None and kept.size_bytes == 100
    # The same key again replaces its bytes, counted once.
    kept.put("e", b"E" * 5)
    assert (kept.get("e"), kept.size_bytes) == (b"E" * 5, 25)


def test_typed_markup_is_printed_as_text() -> None:
    doc = sample("en")
    typed = '<b>bold</b> </style><img src="file:///etc/hostname"> & <link rel=stylesheet href="x.css">'
    doc = replace(doc, number='Q-"1"</style>', notes=typed, lines=(replace(doc.lines[0], description=typed),))
    text = pdf_text(render_quote_pdf(doc))
    assert text.count(squeezed('Q-"1"</style>')) == 2  # the header, and the footer's CSS string
    assert text.count(squeezed(typed)) == 2  # the line's description and the notes


def test_a_document_over_the_line_cap_is_refused_naming_lines() -> None:
    doc = sample("en")
    too_long = replace(doc, lines=doc.lines[:1] * (MAX_LINES + 1))
    with pytest.raises(InvalidArgument) as caught:
        render_quote_pdf(too_long)
    assert [field for field, _ in caught.value.field_violations] == ["lines"]


async def test_the_async_render_refuses_before_taking_a_thread() -> None:
    with pytest.raises(InvalidArgument) as caught:
        await render_quote_pdf_async(replace(sample("en"), locale="de", currency="GBP"))
    assert sorted(field for field, _ in caught.value.field_violations) == ["currency", "locale"]


@pytest.mark.parametrize(
    ("amount_minor", "currency", "locale", "expected"),
    [
        (123_456_750, "ILS", "he", "1,234,567.50 ₪"),
        (123_456_750, "ILS", "en", "₪1,234,567.50"),
        (123_456_700, "IRR", "fa", "۱٬۲۳۴٬۵۶۷ ریال"),
        (123_456_750, "IRR", "fa", "۱٬۲۳۴٬۵۶۷٫۵۰ ریال"),  # never hides a fraction that is there
        (123_456_700, "IRR", "en", "IRR 1,234,567"),  # a letter symbol is spaced from the number
        (99, "USD", "fa", "۰٫۹۹ $"),
        (5, "EUR", "en", "€0.05"),
    ],
)
def test_money_is_formatted_per_locale(amount_minor: int, currency: str, locale: str, expected: str) -> None:
    assert normalized(fmt.money(amount_minor, currency, locale)) == expected


def test_percentages_dates_and_digits_per_locale() -> None:
    assert fmt.percent(1250, "he") == "12.5%"
    assert normalized(fmt.percent(1800, "fa")) == "۱۸٪"
    assert fmt.percent(1, "en") == "0.01%"
    assert fmt.jalali_date(date(2026, 3, 21)) == "۱ فروردین ۱۴۰۵"  # Nowruz
    assert fmt.jalali_date(date(2026, 3, 20)) == "۲۹ اسفند ۱۴۰۴"
    assert fmt.gregorian_date(date(2026, 12, 5), "fa") == "۵ دسامبر ۲۰۲۶"
    assert fmt.number(1234, "fa") == "۱٬۲۳۴"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Cohen & Co", "ltr"), ("כהן Cohen", "rtl"), ("Office כיסא", "ltr"), ("پارس", "rtl"), ("+972 3", "rtl")],
)
def test_typed_text_reads_in_the_direction_of_its_first_letter(text: str, expected: str) -> None:
    assert fmt.text_direction(text, default="rtl") == expected
