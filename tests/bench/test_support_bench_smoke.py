"""`make bench-support` in its quick mode: every list, the board and the SLA scan ran through the
service's own code and counted what they should.

Times are never asserted: this machine's figures are for bench/README.md, not for a test.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"bench_{name}"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e
def test_the_support_bench_lists_tickets_and_scans_every_due_one(tmp_path: Path) -> None:
    out = _load("support").main(["--quick", "--results-dir", str(tmp_path)])

    at = json.loads(Path(out).read_text())["sizes"]["2000"]
    assert at["tickets"] == 2000 and at["open_tickets"] > 0
    assert at["history_rows"] > at["tickets"], "a ticket has a history row per status change"
    lists = at["lists"]
    assert set(lists) == {"agent_queue", "team_view", "at_risk", "customer", "second_page"}
    for kind, figures in lists.items():
        assert figures["n"] == 20, (kind, figures)
        assert figures["plans"], f"{kind}: nothing explained"
    # Customers are drawn from existing tickets and every reach has tickets: no page is empty.
    assert all(f["empty_pages"] == 0 for k, f in lists.items() if k != "customer"), lists
    assert lists["agent_queue"]["rows_mean"] == 50
    # The ticket list reads one page by an index of the open tickets, never the whole table.
    agent_plan = [n for p in lists["agent_queue"]["plans"] for n in p["nodes"]]
    assert any("ix_tickets_assignee_open" in n or "ix_tickets_queue_open" in n for n in agent_plan), agent_plan

    assert at["board"]["gauges"]["n"] > 0 and at["board"]["gauges"]["plans"]
    assert at["clocks"]["open"]["calls"] > 0 and at["clocks"]["resolved"]["calls"] > 0

    scan = at["scan"]
    # After the outage every open ticket is due and looked at once; right after, none is.
    assert scan["all_due"]["looked_at"] == scan["open_tickets"] == at["open_tickets"]
    assert scan["all_due"]["outbox_events"] == scan["all_due"]["levels_raised"]
    assert scan["idle"]["looked_at"] == 0
    assert scan["one_percent_due"]["looked_at"] == scan["one_percent_due"]["made_due"]
