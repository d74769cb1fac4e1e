"""`make bench-report-mail`: rendering a scheduled report's e-mail (issue 20) — its PNG chart
(Vega-Lite through vl-convert) and its A4 PDF (WeasyPrint) — for 1, 30 and 200 rows (the PDF's
most) in Hebrew, Persian and English, one after another on one core, as the delivery round does.

For each size: chart and PDF milliseconds (p50, p99 over the runs), the files' sizes, and the
process's resident memory after the first render (vl-convert starts its JavaScript engine once)
and at the end. Writes `bench/results/report-mail-<date>-<commit>.json` and prints a Markdown
table. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from loadgen import percentile, write_result  # noqa: E402

from crm_reporting import builder, report_mail  # noqa: E402

NAMES = {"he": "לידים והכנסות לפי מקור", "fa": "سرنخ‌ها و درآمد بر حسب منبع", "en": "Leads and revenue by source"}


def result_of(rows: int) -> builder.Result:
    columns = [
        builder.Column("source", "dimension"),
        builder.Column("leads", "measure", "count"),
        builder.Column("revenue", "measure", "money", "ILS"),
        builder.Column("win_rate", "measure", "ratio"),
    ]
    body = [builder.Row((f"s{i}",), (f"מקור {i}",), [float(10 + i), 1000.0 * i, 0.2]) for i in range(rows)]
    total = builder.Row((), (), [float(sum(10 + i for i in range(rows))), 1000.0 * sum(range(rows)), 0.2])
    return builder.Result(columns, body, total)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    start, end = date(2026, 11, 1), date(2026, 11, 30)
    before = rss_mb()
    report_mail.render("warm", result_of(1), start, end, "en", "weekly")
    after_first = rss_mb()
    sizes: dict[str, Any] = {}
    for rows in (1, 30, 200):
        result = result_of(rows)
        charts: list[float] = []
        pdfs: list[float] = []
        pdf_bytes = png_bytes = 0
        for run in range(args.runs):
            locale = ("he", "fa", "en")[run % 3]
            t0 = time.perf_counter()
            png = report_mail.chart_png(result, locale)
            t1 = time.perf_counter()
            html = report_mail.report_html(NAMES[locale], result, start, end, locale, png)
            pdf = report_mail.HTML(string=html).write_pdf(stylesheets=[report_mail._stylesheet()])
            t2 = time.perf_counter()
            charts.append((t1 - t0) * 1000)
            pdfs.append((t2 - t1) * 1000)
            pdf_bytes, png_bytes = max(pdf_bytes, len(pdf)), max(png_bytes, len(png))
        sizes[str(rows)] = {
            "chart_ms": {"p50": percentile(charts, 50), "p99": percentile(charts, 99)},
            "pdf_ms": {"p50": percentile(pdfs, 50), "p99": percentile(pdfs, 99)},
            "pdf_bytes": pdf_bytes,
            "png_bytes": png_bytes,
        }
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {
        "commit": commit,
        "runs": args.runs,
        "rss_mb": {"before": round(before, 1), "after_first_render": round(after_first, 1), "end": round(rss_mb(), 1)},
        "sizes": sizes,
    }
    lines = [
        "| rows | chart p50 / p99 ms | PDF p50 / p99 ms | PDF bytes | PNG bytes |",
        "|---|---|---|---|---|",
        *(
            f"| {rows} | {s['chart_ms']['p50']:.0f} / {s['chart_ms']['p99']:.0f} | "
            f"{s['pdf_ms']['p50']:.0f} / {s['pdf_ms']['p99']:.0f} | {s['pdf_bytes']:,} | {s['png_bytes']:,} |"
            for rows, s in sizes.items()
        ),
        "",
        f"resident memory: {before:.0f} MB before, {after_first:.0f} MB after the first render, "
        f"{rss_mb():.0f} MB at the end",
    ]
    return write_result(result, args.results_dir, "report-mail", "\n".join(lines))


if __name__ == "__main__":
    main()
