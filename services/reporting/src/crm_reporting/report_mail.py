"""A scheduled report as an e-mail: its PNG chart (Vega-Lite rendered by vl-convert, which shapes
Hebrew and Persian), its PDF (the chart and the table, HTML/CSS printed by WeasyPrint, right to
left for he/fa) and the message's subject and text, in the schedule's language.

The PDF holds at most MAX_PDF_ROWS rows (the total is always the whole report's): a mailed report
is read on a phone, the whole one is a click away in the console, and the files must stay well
within one event (`MAX_ATTACHMENT_BYTES`). Rendering is CPU-bound and blocking: callers run
`render` off the event loop.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import vl_convert
from babel.numbers import format_decimal, format_percent, get_currency_precision
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher

from crm_kit.calendars import format_day
from crm_reporting import builder, report_labels

MAX_PDF_ROWS = 200
# Bars drawn (the latest periods, or the first rows as ordered).
MAX_CHART_BARS = 30
# The event carrying the files stays under JetStream's default 1 MiB message.
MAX_ATTACHMENT_BYTES = 800 * 1024
RIGHT_TO_LEFT = frozenset({"he", "fa"})
# The chart's face: Noto Sans for Latin letters and digits; Hebrew and Persian letters fall back
# to the Noto face of their script (vl-convert takes the first family it finds).
CHART_FONT = "Noto Sans"

WORDS = {
    "he": {
        "subject": "{name}: {start} – {end}",
        "text": "מצורף הדוח „{name}” לימים {start} – {end} ({rows} שורות), כפי שנשלח {cadence}.\n"
        "הדוח המלא נמצא במחולל הדוחות שבמערכת.",
        "weekly": "מדי שבוע",
        "monthly": "מדי חודש",
        "more": "מוצגות {shown} השורות הראשונות מתוך {rows}; הדוח המלא במערכת.",
        "empty": "אין נתונים בטווח הזה.",
    },
    "fa": {
        "subject": "{name}: {start} – {end}",
        "text": "گزارش «{name}» برای {start} تا {end} ({rows} ردیف) پیوست است؛ این گزارش {cadence} فرستاده می‌شود.\n"
        "گزارش کامل در گزارش‌ساز سامانه است.",
        "weekly": "هر هفته",
        "monthly": "هر ماه",
        "more": "{shown} ردیف نخست از {rows} ردیف نشان داده شده است؛ گزارش کامل در سامانه است.",
        "empty": "در این بازه داده‌ای نیست.",
    },
    "en": {
        "subject": "{name}: {start} – {end}",
        "text": "Attached is the report “{name}” for {start} – {end} ({rows} rows), sent {cadence}.\n"
        "The whole report is in the CRM's report builder.",
        "weekly": "every week",
        "monthly": "every month",
        "more": "The first {shown} of {rows} rows are shown; the whole report is in the CRM.",
        "empty": "No data in this range.",
    },
}


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    pdf: bytes
    png: bytes
    file_stem: str


def shown_value(column: builder.Column, value: float | None, locale: str) -> str:
    """A measure's value as the reader writes numbers: money in major units, rates as percents."""
    if value is None:
        return "—"
    if column.unit == "money":
        precision = get_currency_precision(column.currency) if column.currency else 0
        value = value / 10**precision
        text = format_decimal(value, format="#,##0.00" if precision else "#,##0", locale=locale)
    elif column.unit == "ratio":
        text = format_percent(value, format="#,##0.0%", locale=locale)
    else:
        text = format_decimal(round(value, 1), format="#,##0.#", locale=locale)
    return builder.native(text, locale)


def chart_png(result: builder.Result, locale: str) -> bytes:
    """The first measure by the first dimension (and the second as colour) as a PNG: bars, the
    latest MAX_CHART_BARS periods or the first rows; right to left for he/fa. No dimension: the
    total as one bar."""
    dimensions = [c for c in result.columns if c.kind == "dimension"]
    measures = [c for c in result.columns if c.kind == "measure"]
    measure = measures[0]
    over_periods = bool(dimensions) and dimensions[0].name == builder.PERIOD
    rows = result.rows[-MAX_CHART_BARS:] if over_periods else result.rows[:MAX_CHART_BARS]
    scale = 1.0
    if measure.unit == "money" and measure.currency:
        scale = 10 ** get_currency_precision(measure.currency)
    total_label = report_labels.label("total", locale)
    values: list[dict[str, Any]] = [
        {
            "x": r.labels[0] if dimensions else total_label,
            "series": r.labels[1] if len(dimensions) > 1 else "",
            "order": i,
            "y": (r.values[0] or 0.0) / scale,
        }
        for i, r in enumerate(rows if dimensions else [result.total])
        if len(r.values) > 0
    ]
    rtl = locale in RIGHT_TO_LEFT
    top = max((float(v["y"]) for v in values), default=0.0)
    x_title = report_labels.label(dimensions[0].name, locale) if dimensions else ""
    encoding: dict[str, Any] = {
        "x": {
            "field": "x",
            "type": "nominal",
            "title": x_title,
            "sort": {"field": "order"},
            "scale": {"reverse": rtl},
            "axis": {"labelAngle": -40 if len(values) > 6 else 0, "labelLimit": 160},
        },
        "y": {
            "field": "y",
            "type": "quantitative",
            # The measure is the chart's title, written level: a rotated right-to-left axis title
            # comes out with its letters reversed.
            "title": None,
            "axis": {
                "orient": "right" if rtl else "left",
                "format": ".0%" if measure.unit == "ratio" else ",.0f",
                # Counts are whole: no 0, 0, 1, 1 ticks on a small report.
                **({"tickCount": max(1, min(5, int(top)))} if measure.unit == "count" else {}),
            },
        },
    }
    if len(dimensions) > 1:
        encoding["color"] = {
            "field": "series",
            "type": "nominal",
            "title": report_labels.label(dimensions[1].name, locale),
        }
        encoding["xOffset"] = {"field": "series"}
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": 640,
        "height": 280,
        "background": "white",
        "title": {
            "text": report_labels.label(measure.name, locale, measure.currency),
            "anchor": "end" if rtl else "start",
            "fontSize": 13,
        },
        "config": {"font": CHART_FONT, "view": {"stroke": None}},
        "data": {"values": values},
        "mark": {"type": "bar", "width": {"band": 0.7}, **({"color": "#0b4f8a"} if len(dimensions) < 2 else {})},
        "encoding": encoding,
    }
    png: bytes = vl_convert.vegalite_to_png(json.dumps(spec), scale=2)
    return png


@cache
def _template() -> jinja2.Template:
    source = resources.files("crm_reporting").joinpath("templates/report_mail.html.j2").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(source)


@cache
def _stylesheet() -> CSS:
    return CSS(string=resources.files("crm_reporting").joinpath("templates/report_mail.css").read_text("utf-8"))


def _day(day: date, locale: str) -> str:
    return format_day(day, locale, "long")


def report_html(name: str, result: builder.Result, start: date, end: date, locale: str, chart: bytes) -> str:
    """The PDF's HTML: title, range, chart, table (MAX_PDF_ROWS rows) and the total."""
    words = WORDS[locale]
    dimensions = [c for c in result.columns if c.kind == "dimension"]
    measures = [c for c in result.columns if c.kind == "measure"]
    rows = result.rows[:MAX_PDF_ROWS]
    return _template().render(
        lang=locale,
        dir="rtl" if locale in RIGHT_TO_LEFT else "ltr",
        name=name,
        range=f"{_day(start, locale)} – {_day(end, locale)}",
        chart="data:image/png;base64," + base64.b64encode(chart).decode(),
        headers=[report_labels.label(c.name, locale, c.currency) for c in result.columns],
        measure_count=len(measures),
        rows=[[*r.labels, *(shown_value(c, v, locale) for c, v in zip(measures, r.values, strict=True))] for r in rows],
        total=[
            report_labels.label("total", locale),
            *([""] * max(len(dimensions) - 1, 0)),
            *(shown_value(c, v, locale) for c, v in zip(measures, result.total.values, strict=True)),
        ],
        more=(
            builder.native(words["more"].format(shown=MAX_PDF_ROWS, rows=len(result.rows)), locale)
            if len(result.rows) > MAX_PDF_ROWS
            else ""
        ),
        empty=words["empty"] if not result.rows and dimensions else "",
    )


def render(name: str, result: builder.Result, start: date, end: date, locale: str, cadence: str) -> Mail:
    """The e-mail of one delivery. Blocks (the chart and the PDF): call it off the event loop."""
    words = WORDS[locale]
    png = chart_png(result, locale)
    html = HTML(
        string=report_html(name, result, start, end, locale, png),
        # Nothing is fetched: the chart is inline, fonts come from fontconfig.
        url_fetcher=URLFetcher(allowed_protocols=("data",)),
    )
    pdf: bytes = html.write_pdf(stylesheets=[_stylesheet()])
    shown = {
        "name": name,
        "start": _day(start, locale),
        "end": _day(end, locale),
        "rows": builder.native(str(len(result.rows)), locale),
        "cadence": words[cadence],
    }
    return Mail(
        subject=words["subject"].format(**shown),
        text=words["text"].format(**shown),
        pdf=pdf,
        png=png,
        file_stem=f"report-{start.isoformat()}-{end.isoformat()}",
    )
