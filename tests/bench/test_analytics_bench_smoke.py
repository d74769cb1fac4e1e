"""The analytics benches run end to end at a small size (issue 20): cross-sell learns rules from
the planted affinities and suggests in milliseconds' worth of statements; the churn bench's model
validates well above chance on its history and scores every customer. Times are never asserted:
this machine's figures are for bench/README.md, not for a test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_support_bench_smoke import _load


@pytest.mark.e2e
def test_the_cross_sell_bench_learns_the_planted_affinities(tmp_path: Path) -> None:
    out = _load("cross_sell").main(["--sizes", "3000", "--samples", "20", "--results-dir", str(tmp_path)])
    at = json.loads(Path(out).read_text())["sizes"]["3000"]
    assert at["purchase_rows"] > 3000 and at["rules"] > 0
    assert at["suggest"]["n"] == 20 and at["suggestions_mean"] > 0


@pytest.mark.e2e
def test_the_churn_bench_validates_and_scores_everyone(tmp_path: Path) -> None:
    out = _load("churn").main(["--sizes", "3000", "--results-dir", str(tmp_path)])
    at = json.loads(Path(out).read_text())["sizes"]["3000"]
    assert at["validation"]["auc"] > 0.7 and at["validation"]["top_decile_lift"] > 1
    assert at["score_all"]["customers"] > 0


@pytest.mark.e2e
def test_the_report_builder_bench_runs_every_shape(tmp_path: Path) -> None:
    out = _load("report_builder").main(
        ["--sizes", "5000", "--samples", "2", "--duckdb", "--results-dir", str(tmp_path)]
    )
    at = json.loads(Path(out).read_text())["sizes"]["5000"]
    shapes = at["shapes"]
    # Reporting's DuckDB copy answers every shape with the same report (but the rep's own months:
    # the bench reassigns leads between the two engines' timings, to time a catch-up).
    copy = at["duckdb"]
    assert all(copy[name]["same_as_postgresql"] for name in shapes if name != "rep_own_months")
    assert copy["rep_own_months"]["rows"] > 0 and copy["load_seconds"] >= 0 and copy["catch_up_ms"] > 0
    assert set(shapes) == {
        "source_x_month",
        "jalali_weeks",
        "rep_x_pipeline",
        "rep_x_stage",
        "rep_own_months",
        "city_all_time",
    }
    # Every shape found rows: 8 sources over 12 months, 50 reps in 3 pipelines, 20 cities.
    assert shapes["city_all_time"]["rows"] == 20 and all(s["rows"] > 0 for s in shapes.values())


@pytest.mark.e2e
def test_the_report_mail_bench_renders_every_size(tmp_path: Path) -> None:
    out = _load("report_mail").main(["--runs", "3", "--results-dir", str(tmp_path)])
    result = json.loads(Path(out).read_text())
    assert set(result["sizes"]) == {"1", "30", "200"}
    assert all(s["pdf_bytes"] > 0 and s["png_bytes"] > 0 for s in result["sizes"].values())
