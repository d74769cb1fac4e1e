"""The quote PDF: a QuoteDocument laid out as HTML/CSS and printed by WeasyPrint.

WeasyPrint shapes text with Pango and HarfBuzz (Hebrew and Persian letters join and take their
contextual forms) and orders mixed-direction text with the Unicode bidi algorithm; we only mark
what must not reorder its neighbours (a <bdi> per value). Rendering is CPU-bound (a one-page
quote takes a few hundred milliseconds, bench/README.md "Quote PDF"), so the gRPC edge calls
`render_quote_pdf_async`, which runs it on a small thread pool instead of the event loop, and a
document is capped at MAX_LINES so one request cannot hold a worker for minutes. At most
MAX_RENDERS_IN_FLIGHT renders run or wait at once: one more is refused at once (RENDER_BUSY,
RESOURCE_EXHAUSTED) instead of queueing without end, each in the queue holding its document and
its caller's connection. `RenderedPdfs` keeps the bytes of versions that never change, so a
re-download renders nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher

from crm_kit.errors import InvalidArgument, ResourceExhausted, raise_all
from crm_sales.quotes import locale_format as fmt
from crm_sales.quotes.document import CompanyDetails, QuoteDocLine, QuoteDocument
from crm_sales.quotes.labels import LABELS, UNIT_NAMES, DocLabels

# 16-23 A4 pages and several seconds of CPU (bench/README.md "Quote PDF"); the quote rules allow
# no more lines either (quotes.domain.MAX_LINES). A longer offer is a price list, not a quote.
MAX_LINES = 500
# Two cores: a third concurrent render would only queue for the CPU while holding its memory.
_RENDER_THREADS = 2
# Running (two) and queued (two more, each next in line for a thread within a render's time): a
# caller beyond that is told to retry in a second rather than wait behind a growing queue.
MAX_RENDERS_IN_FLIGHT = 4
_RENDER_SLOTS = threading.BoundedSemaphore(MAX_RENDERS_IN_FLIGHT)
_RTL_LOCALES = frozenset({"he", "fa"})


@dataclass(frozen=True)
class Run:
    """A piece of text and the direction it reads in, isolated from its neighbours when printed."""

    text: str
    dir: str


def check_document(doc: QuoteDocument) -> None:
    """Refuse, naming every field, what the renderer cannot print: another locale or currency
    than it knows, or more than MAX_LINES lines."""
    errors: list[InvalidArgument] = []
    for check in (lambda: fmt.check_locale(doc.locale), lambda: fmt.shown_digits(0, doc.currency)):
        try:
            check()
        except InvalidArgument as error:
            errors.append(error)
    if len(doc.lines) > MAX_LINES:
        errors.append(
            InvalidArgument(
                f"a quote document has at most {MAX_LINES} lines, this one {len(doc.lines)}",
                field_violations=[("lines", f"at most {MAX_LINES} lines")],
            )
        )
    raise_all(errors)


def render_quote_html(doc: QuoteDocument) -> str:
    """The document's HTML (what the PDF is printed from)."""
    check_document(doc)
    return _template().render(**_view(doc))


def render_quote_pdf(doc: QuoteDocument) -> bytes:
    """The document as PDF bytes. Blocks for the whole render: call it off the event loop."""
    # The document loads nothing (the stylesheet is handed over, fonts come from fontconfig): a URL
    # that slipped into it could only make the renderer read a file or call a host, so none is allowed.
    html = HTML(string=render_quote_html(doc), url_fetcher=URLFetcher(allowed_protocols=()))
    pdf: bytes = html.write_pdf(stylesheets=[_stylesheet()])
    return pdf


async def render_quote_pdf_async(doc: QuoteDocument) -> bytes:
    """`render_quote_pdf` on the renderer's thread pool, so the event loop keeps serving.
    ResourceExhausted (RENDER_BUSY) at once when MAX_RENDERS_IN_FLIGHT renders run or wait."""
    check_document(doc)  # bad input fails here, before it takes a render thread
    if not _RENDER_SLOTS.acquire(blocking=False):
        raise ResourceExhausted(
            f"{MAX_RENDERS_IN_FLIGHT} quote documents are being rendered; retry in a second",
            reason="RENDER_BUSY",
            retry_after_seconds=1,
        )
    try:
        job: Future[bytes] = _executor().submit(render_quote_pdf, doc)
    except BaseException:
        _RENDER_SLOTS.release()
        raise
    # The slot is the job's, not this caller's: a caller that gives up (deadline, cancel) frees it
    # only once the job is done, or cancelled before it started, so the queue never outgrows it.
    job.add_done_callback(lambda _: _RENDER_SLOTS.release())
    return await asyncio.wrap_future(job)


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_RENDER_THREADS, thread_name_prefix="quote-pdf")


class RenderedPdfs:
    """The bytes of rendered documents that never change (a version once sent), least recently
    used evicted first past `max_entries` or `max_bytes`. Not thread-safe: used from the event loop."""

    def __init__(self, *, max_entries: int = 64, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable) -> bytes | None:
        pdf = self._entries.get(key)
        if pdf is not None:
            self._entries.move_to_end(key)
        return pdf

    def put(self, key: Hashable, pdf: bytes) -> None:
        """Keep pdf under key; one larger than max_bytes on its own is not kept."""
        if len(pdf) > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        self._bytes -= len(old) if old is not None else 0
        self._entries[key] = pdf
        self._bytes += len(pdf)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes


def _templates_dir() -> Any:
    return resources.files("crm_sales.quotes") / "templates"


@cache
def _stylesheet() -> CSS:
    return CSS(string=(_templates_dir() / "quote.css").read_text(encoding="utf-8"))


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("crm_sales.quotes", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bdi"] = _bdi
    return env.get_template("quote.html.j2")


def _bdi(run: Run) -> Markup:
    return Markup('<bdi dir="{}">{}</bdi>').format(run.dir, run.text)


def _css_string(text: str) -> Markup:
    """A CSS string literal; "<" escaped too, since it sits in a <style> element."""
    escaped = "".join(c if c.isalnum() or c in " -_.·/" else f"\\{ord(c):x} " for c in text)
    return Markup(f'"{escaped}"')


def _text(text: str, default: str) -> Run:
    """Typed-in text reads in its own script's direction (first strong character)."""
    return Run(text, fmt.text_direction(text, default))


def _ltr(text: str) -> Run:
    """Identifiers, phones and plain numbers keep their left-to-right order in any page."""
    return Run(text, "ltr")


def _view(doc: QuoteDocument) -> dict[str, Any]:
    labels = LABELS[doc.locale]
    page_dir = "rtl" if doc.locale in _RTL_LOCALES else "ltr"
    counter = "persian" if doc.locale == "fa" else "decimal"
    return {
        "lang": doc.locale,
        "dir": page_dir,
        "locale": doc.locale,
        "L": labels,
        "start_side": "right" if page_dir == "rtl" else "left",  # margin boxes are not mirrored
        "footer_page": Markup(
            f"{_css_string(labels.page + ' ')} counter(page, {counter}) "
            f"{_css_string(' ' + labels.page_of + ' ')} counter(pages, {counter})"
        ),
        "footer_number": _css_string(f"{doc.number} · {labels.version} {fmt.number(doc.version, doc.locale)}"),
        "number": _ltr(doc.number),
        "version": _ltr(fmt.number(doc.version, doc.locale)),
        "issue_date": _dates(doc.issue_date, doc.locale),
        "valid_until": _dates(doc.valid_until, doc.locale),
        "company": _company(doc.company, labels, page_dir),
        "bill_to": _bill_to(doc, labels, page_dir),
        "currency_gap": "" if doc.locale == "he" else " ",  # Hebrew prefixes ב to the noun
        "currency": Run(f"{fmt.currency_name(doc.currency, doc.locale)} ({doc.currency})", page_dir),
        "lines": [_line(index, line, doc, page_dir) for index, line in enumerate(doc.lines, start=1)],
        "totals": _totals(doc, labels),
        "notes": [_text(p, page_dir) for p in doc.notes.splitlines() if p.strip()],
    }


def _dates(day: date, locale: str) -> list[Run]:
    """Persian documents lead with the Solar Hijri date and give the Gregorian one under it."""
    gregorian = fmt.gregorian_date(day, locale)
    if locale == "fa":
        return [Run(fmt.jalali_date(day), "rtl"), Run(gregorian, "rtl")]
    return [Run(gregorian, "rtl" if locale in _RTL_LOCALES else "ltr")]


def _fields(pairs: tuple[tuple[str, str], ...]) -> list[tuple[str, Run]]:
    return [(label, _ltr(value)) for label, value in pairs if value.strip()]


def _company(company: CompanyDetails, labels: DocLabels, page_dir: str) -> dict[str, Any]:
    return {
        "name": _text(company.name, page_dir),
        "lines": [_text(line, page_dir) for line in company.address.splitlines() if line.strip()],
        "fields": _fields(
            ((labels.tax_id, company.tax_id), (labels.phone, company.phone), (labels.email, company.email))
        ),
    }


def _bill_to(doc: QuoteDocument, labels: DocLabels, page_dir: str) -> dict[str, Any]:
    return {
        "name": _text(doc.bill_to_name, page_dir),
        "lines": [_text(line, page_dir) for line in doc.bill_to_address.splitlines() if line.strip()],
        "fields": _fields(((labels.tax_id, doc.bill_to_tax_id), (labels.phone, doc.bill_to_phone))),
    }


def _line(index: int, line: QuoteDocLine, doc: QuoteDocument, page_dir: str) -> dict[str, Run]:
    """A table row. It shows the line's VAT rate, not its VAT: VAT is computed once on the
    discounted document (catalog.money), so per-line amounts would not add up to it."""
    loc, cur = doc.locale, doc.currency
    unit = UNIT_NAMES[loc].get(line.unit, line.unit)
    return {
        "no": _ltr(fmt.number(index, loc)),
        "sku": _text(line.sku, "ltr"),
        "description": _text(line.description, page_dir),
        "quantity": _ltr(fmt.number(line.quantity, loc)),
        "unit": _text(unit, page_dir),
        "unit_price": _ltr(fmt.amount(line.unit_price_minor, cur, loc)),
        "discount": Run(fmt.percent(line.discount_bp, loc) if line.discount_bp else "", page_dir),
        "tax_rate": Run(fmt.percent(line.tax_rate_bp, loc), page_dir),
        "net": _ltr(fmt.amount(line.net_minor, cur, loc)),
    }


def _totals(doc: QuoteDocument, labels: DocLabels) -> list[tuple[str, Run, bool]]:
    """Subtotal, the document discount (when there is one, as a positive amount beside its rate),
    VAT (with its rate when every line has the same one) and the total to pay."""
    loc, cur = doc.locale, doc.currency
    money_dir = "ltr" if loc == "en" else "rtl"

    def money(amount_minor: int) -> Run:
        return Run(fmt.money(amount_minor, cur, loc), money_dir)

    rows = [(labels.subtotal, money(doc.subtotal_minor), False)]
    if doc.discount_minor:
        rows.append((f"{labels.total_discount} {fmt.percent(doc.discount_bp, loc)}", money(doc.discount_minor), False))
    rates = {line.tax_rate_bp for line in doc.lines}
    vat_label = f"{labels.vat_total} {fmt.percent(rates.pop(), loc)}" if len(rates) == 1 else labels.vat_total
    rows.append((vat_label, money(doc.tax_minor), False))
    rows.append((labels.total, money(doc.total_minor), True))
    return rows
