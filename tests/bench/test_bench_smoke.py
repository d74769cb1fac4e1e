"""`make bench` end to end in its tiny mode: every scenario ran, counted something and saw no error.

Times are never asserted: this machine's figures are for bench/README.md, not for a test.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCENARIOS = ("floor", "golden", "capture", "pipeline", "fulfilment", "read", "deal_lists", "quote_pdf")
COUNTS = ("n", "requests", "inserts", "messages")
FAILURES = ("errors", "lost")


def _load_runner() -> Any:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def _leaves(tree: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _leaves(value, f"{path}[{i}]")
    else:
        yield path, tree


@pytest.mark.e2e
def test_every_scenario_counts_something_without_errors(tmp_path: Path) -> None:
    out = _load_runner().main(["--tiny", "--results-dir", str(tmp_path)])

    result = json.loads(Path(out).read_text())
    scenarios = result["scenarios"]
    assert set(SCENARIOS) <= set(scenarios)
    for name in SCENARIOS:
        leaves = list(_leaves(scenarios[name]))
        counts = [(path, value) for path, value in leaves if path.rsplit(".", 1)[-1] in COUNTS]
        assert counts, f"{name} recorded no count"
        assert all(value > 0 for _, value in counts), f"{name} has an empty measurement: {counts}"
        failures = [(path, value) for path, value in leaves if path.rsplit(".", 1)[-1] in FAILURES and value]
        assert not failures, f"{name} saw errors or lost events: {failures}"
    assert result["ratios"], "no figure was related to the floor"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"bench_{name}"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e
def test_the_acquisition_bench_measures_the_duplicate_check_and_capture(tmp_path: Path) -> None:
    out = _load("acquisition").main(["--tiny", "--results-dir", str(tmp_path)])

    result = json.loads(Path(out).read_text())
    checks = result["duplicate_check"]
    assert [c["existing_leads"] for c in checks] == [1_000, 3_000]
    for check in checks:
        assert check["all"]["n"] == 30
        assert any(plan.get("nodes") for plan in check["plans"]), "the duplicate check sent no SQL to explain"
        assert not any("error" in plan for plan in check["plans"]), check["plans"]
    capture = result["capture"]
    assert capture["errors"] == 0, capture["first_errors"]
    assert capture["assignment_201"]["n"] > 0
    assert capture["duplicate_200"]["n"] > 0, "no capture of a known person was attached to their lead"


@pytest.mark.e2e
def test_the_search_bench_finds_every_kind_of_query_through_the_indexes(tmp_path: Path) -> None:
    out = _load("search").main(["--sizes", "3000", "--samples", "5", "--results-dir", str(tmp_path)])

    kinds = json.loads(Path(out).read_text())["sizes"]["3000"]["kinds"]
    assert set(kinds) == {"full_name", "misspelt", "family_name", "prefix", "phone_local", "email"}
    for kind, figures in kinds.items():
        # Every query is made from an existing customer, in one of the ways agents type it.
        assert figures["n"] == 5 and figures["none_found"] == 0, (kind, figures)
        assert figures["plan_nodes"], f"{kind}: nothing explained"
    # A name search reads the words by index, never the whole table of words.
    name_plan = kinds["misspelt"]["plan_nodes"]
    assert any("customer_name_words" in node and "Index" in node for node in name_plan), name_plan
    assert not any(node.startswith("Seq Scan on customer_name_words") for node in name_plan), name_plan
