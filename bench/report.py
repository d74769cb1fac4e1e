"""The Markdown table of a result, ratios to the floor, and the comparison with the previous result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Figures compared between runs, with the direction that is better.
LOWER_IS_BETTER = ("p50_ms", "p95_ms", "p99_ms")
HIGHER_IS_BETTER = ("throughput_per_s", "rate_per_s")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def ratios(s: dict[str, Any]) -> dict[str, float | None]:
    """Each figure that has a floor counterpart, divided by that floor."""
    path = s["floor"]["path"]
    f1, f32 = path["clients_1"], path["clients_32"]
    out: dict[str, float | None] = {}
    for key, cap in s["capture"].items():
        floor = f1 if cap["clients"] == 1 else f32
        out[f"capture_{key}_throughput_vs_floor_path"] = _ratio(
            cap["throughput_per_s"], floor["http"]["throughput_per_s"]
        )
        out[f"capture_{key}_p99_vs_floor_path"] = _ratio(cap["p99_ms"], floor["http"]["p99_ms"])
    fixed = s["pipeline"]["fixed"]["e2e_reporting"]
    out["pipeline_e2e_p99_vs_floor_path_1"] = _ratio(fixed["p99_ms"], f1["e2e"]["p99_ms"])
    out["pipeline_e2e_p99_vs_floor_path_32"] = _ratio(fixed["p99_ms"], f32["e2e"]["p99_ms"])
    out["pipeline_max_sustained_vs_floor_path_32_throughput"] = _ratio(
        s["pipeline"]["max_sustained"]["rate_per_s"], f32["http"]["throughput_per_s"]
    )
    golden = s["golden"]
    out["golden_capture_p50_vs_floor_path_1"] = _ratio(golden["capture_http"]["p50_ms"], f1["http"]["p50_ms"])
    consumed = golden["capture_to_lead_assigned_consumed"]
    out["golden_consumed_p50_vs_floor_path_1"] = _ratio(consumed["p50_ms"], f1["e2e"]["p50_ms"])
    out["golden_consumed_p99_vs_floor_path_1"] = _ratio(consumed["p99_ms"], f1["e2e"]["p99_ms"])
    # Ship → SMS crosses the same kinds of hops as the floor path's end to end (HTTP, row +
    # outbox, JetStream, consumer) plus a gRPC call and the provider: the nearest floor there is.
    ship = s["fulfilment"]["ship_to_sms"]
    out["fulfilment_ship_to_sms_p99_vs_floor_path_32"] = _ratio(ship["p99_ms"], f32["e2e"]["p99_ms"])
    # Deal lists and the board against the same SQL straight over asyncpg (older results have none).
    lists = s.get("deal_lists")
    if lists:
        for key, floor_key in DEAL_LIST_FLOORS.items():
            out[f"deal_lists_{key}_p50_vs_sql"] = _ratio(lists[key]["p50_ms"], lists["floor"][floor_key]["p50_ms"])
    # Reads have no floor path; the single-row insert rate is the nearest database floor.
    for key in ("timeline", "sources"):
        out[f"read_{key}_throughput_vs_pg_insert_16"] = _ratio(
            s["read"][key]["throughput_per_s"], s["floor"]["pg_insert_16"]["throughput_per_s"]
        )
    return out


# Each deal-list figure and the SQL floor it stands on (bench/deal_lists.py).
DEAL_LIST_FLOORS = {
    "board_admin": "board_sums",
    "board_manager": "board_sums",
    "list_first_page": "list_page",
    "list_deep_pages": "list_page",
    "list_team_and_stage": "list_page",
}
DEAL_LIST_LABELS = {
    "board_admin": "GET /pipelines/{id}/board (admin: all)",
    "board_manager": "GET /pipelines/{id}/board (manager: a team)",
    "list_first_page": "GET /deals, first page of 50",
    "list_deep_pages": "GET /deals, pages anywhere in the list",
    "list_team_and_stage": "GET /deals?owner_team_id&stage_id",
}


def _x(value: float | None) -> str:
    return f"{value}×" if value is not None else ""


def _num(value: Any) -> str:
    return "" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:g}"


class _Rows:
    """The table's rows: a latency figure (with percentiles) or a plain throughput figure each."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def lat(self, name: str, load: str, d: dict[str, Any], vs: str = "", extra: str = "") -> None:
        self.rows.append(
            (
                name,
                load,
                d.get("n", ""),
                d.get("throughput_per_s"),
                d.get("p50_ms"),
                d.get("p95_ms"),
                d.get("p99_ms"),
                d.get("errors", d.get("lost", "")),
                d.get("loadgen_cpu_pct"),
                vs,
                extra,
            )
        )

    def thr(self, name: str, load: str, count: int, per_s: float, vs: str = "") -> None:
        self.rows.append((name, load, count, per_s, None, None, None, "", None, vs, ""))

    def markdown(self) -> str:
        head = "| scenario | load | n | req/s | p50 ms | p95 ms | p99 ms | errors/lost | gen CPU % | vs floor |"
        lines = [head, "|" + "---|" * 10]
        for row in self.rows:
            lines.append("| " + " | ".join(_num(v) if not isinstance(v, str) else v for v in row[:10]) + " |")
        return "\n".join(lines)


def _floor_rows(t: _Rows, fl: dict[str, Any]) -> None:
    for clients, label in ((1, "1 client"), (16, "16 clients")):
        run = fl[f"pg_insert_{clients}"]
        t.thr("floor: PostgreSQL insert (asyncpg)", label, run["inserts"], run["throughput_per_s"])
    for key, label in (
        ("publish_one_by_one", "publish one-by-one"),
        ("publish_async", "publish_async"),
        ("pull_consume", "pull consumer"),
    ):
        js = fl["jetstream"][key]
        t.thr(f"floor: JetStream {label}", "", js["messages"], js["throughput_per_s"])
    for key, load in (("clients_1", "1 client"), ("clients_32", "32 clients")):
        t.lat("floor path: HTTP", load, fl["path"][key]["http"])
        t.lat("floor path: end to end (→ 2nd DB)", load, fl["path"][key]["e2e"])


def _golden_and_capture_rows(t: _Rows, s: dict[str, Any], r: dict[str, Any]) -> None:
    g = s["golden"]
    t.lat(
        "golden: capture HTTP",
        "1 client, sequential",
        g["capture_http"],
        _x(r["golden_capture_p50_vs_floor_path_1"]) + " p50",
    )
    t.lat(
        "golden: capture → LeadAssigned consumed",
        "1 client, sequential",
        g["capture_to_lead_assigned_consumed"],
        _x(r["golden_consumed_p99_vs_floor_path_1"]) + " p99",
    )
    t.lat("golden: ship → SMS", "1 client, sequential", g["ship_to_sms_received"])
    for key, cap in s["capture"].items():
        t.lat(
            "capture: POST /api/v1/leads",
            f"{cap['clients']} clients",
            cap,
            _x(r[f"capture_{key}_throughput_vs_floor_path"]) + " req/s",
        )
    # Older result files have no keyed run.
    for cap in s.get("capture_keyed", {}).values():
        t.lat("capture with Idempotency-Key (shared store)", f"{cap['clients']} clients", cap, "")


def _pipeline_rows(t: _Rows, pipeline: dict[str, Any], r: dict[str, Any]) -> None:
    p = pipeline["fixed"]
    rate = f"{_num(p['rate_per_s'])}/s open loop"
    t.lat("pipeline: capture HTTP", rate, p["http"])
    t.lat(
        "pipeline: capture → LeadAssigned consumed (reporting)",
        rate,
        p["e2e_reporting"],
        f"{_x(r['pipeline_e2e_p99_vs_floor_path_1'])} / {_x(r['pipeline_e2e_p99_vs_floor_path_32'])} p99 (1c/32c)",
    )
    t.lat("pipeline: capture → customer linked (customers)", rate, p["e2e_customers"])
    ms = pipeline["max_sustained"]
    t.rows.append(
        (
            f"pipeline: highest rate with e2e p99 < {_num(ms['p99_limit_ms'])} ms",
            f"steps of {_num(ms['step_s'])} s",
            len(ms["steps"]),
            ms["rate_per_s"],
            None,
            None,
            None,
            "",
            None,
            _x(r["pipeline_max_sustained_vs_floor_path_32_throughput"]) + " floor req/s",
            "",
        )
    )


def _fulfilment_rows(t: _Rows, s: dict[str, Any], r: dict[str, Any]) -> None:
    for key in ("fulfilment", "fulfilment_200"):
        if key not in s:
            continue
        f = s[key]
        load = f"{_num(f['rate_per_s'])}/s open loop"
        t.lat("fulfilment: close won → order created", "8 clients", f["close_to_order_created"])
        t.lat("fulfilment: ship HTTP", load, f["ship_http"])
        if "outbox_lag_order_shipped" in f:
            t.lat("fulfilment: outbox lag (OrderShipped recorded → stored)", load, f["outbox_lag_order_shipped"])
        t.lat(
            "fulfilment: ship → SMS at provider",
            load,
            f["ship_to_sms"],
            _x(r.get("fulfilment_ship_to_sms_p99_vs_floor_path_32")) + " p99 (32c e2e)" if key == "fulfilment" else "",
        )


def _read_rows(t: _Rows, read: dict[str, Any], r: dict[str, Any]) -> None:
    for key, label in (("timeline", "GET /customers/{id}/timeline"), ("sources", "GET /reports/sources")):
        t.lat(
            f"read: {label}",
            f"{read[key]['clients']} clients",
            read[key],
            _x(r.get(f"read_{key}_throughput_vs_pg_insert_16")) + " req/s (PG insert 16c)",
        )


def _quote_pdf_rows(t: _Rows, quote_pdf: dict[str, Any]) -> None:
    """Render time per document (one at a time, in the bench process); the size in the load column."""
    for locale, sizes in quote_pdf.items():
        for d in sizes.values():
            load = (
                f"{d['lines']} lines, {d['pages']} p., {d['pdf_bytes'] / 1000:.1f} kB, CPU p50 {d['cpu_p50_ms']:g} ms"
            )
            t.lat(f"quote PDF: render ({locale})", load, d)


def _deal_list_rows(t: _Rows, lists: dict[str, Any], r: dict[str, Any]) -> None:
    seed = lists["seed"]
    size = f"{seed['deals']:,} deals, {seed['stage_history_rows']:,} history rows"
    for key, label in (("board_sums", "board sums (one statement)"), ("list_page", "a keyset page")):
        floor = lists["floor"][key]
        t.lat(f"floor: {label}, SQL over asyncpg", f"{floor['clients']} clients, {size}", floor)
    for key, label in DEAL_LIST_LABELS.items():
        run = lists[key]
        vs = _x(r.get(f"deal_lists_{key}_p50_vs_sql")) + " p50 (SQL floor)"
        t.lat(f"deal lists: {label}", f"{run['clients']} clients", run, vs)


def table(result: dict[str, Any]) -> str:
    """One Markdown row per measured figure."""
    s, r = result["scenarios"], result["ratios"]
    t = _Rows()
    _floor_rows(t, s["floor"])
    _golden_and_capture_rows(t, s, r)
    _pipeline_rows(t, s["pipeline"], r)
    _fulfilment_rows(t, s, r)
    _read_rows(t, s["read"], r)
    if "deal_lists" in s:  # older result files have none
        _deal_list_rows(t, s["deal_lists"], r)
    _quote_pdf_rows(t, s.get("quote_pdf", {}))  # older result files have none
    return t.markdown()


def flatten(tree: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in ("steps", "ratios"):
                continue
            yield from flatten(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield prefix, float(tree)


def comparable(result: dict[str, Any]) -> dict[str, float]:
    """Figures that have a better direction, keyed by path; the first bench's layout mapped onto ours."""
    scenarios = result.get("scenarios", {})
    if "golden" not in scenarios:  # 2026-11-26 layout: the golden path's figures at the top level
        scenarios = {"golden": scenarios}
    return {k: v for k, v in flatten(scenarios) if k.rsplit(".", 1)[-1] in LOWER_IS_BETTER + HIGHER_IS_BETTER}


def previous(results_dir: Path, current: Path) -> Path | None:
    """The newest other result file of this bench (by its recorded date, then file time): named
    `<date>-<commit>.json`, not the sized benches' `<bench>-…` files beside it."""
    candidates: list[tuple[str, float, Path]] = []
    for path in results_dir.glob("[0-9][0-9][0-9][0-9]-*.json"):
        if path.resolve() == current.resolve():
            continue
        try:
            stamp = str(json.loads(path.read_text()).get("date", ""))
        except (json.JSONDecodeError, OSError):
            continue
        candidates.append((stamp, path.stat().st_mtime, path))
    return max(candidates)[2] if candidates else None


def regressions(old: dict[str, Any], new: dict[str, Any], threshold: float = 0.10) -> list[str]:
    """Every figure in both results that got worse by more than ``threshold``."""
    before, after = comparable(old), comparable(new)
    lines: list[str] = []
    for key in sorted(before.keys() & after.keys()):
        a, b = before[key], after[key]
        if a <= 0:
            continue
        lower = key.rsplit(".", 1)[-1] in LOWER_IS_BETTER
        change = (b - a) / a
        if (lower and change > threshold) or (not lower and -change > threshold):
            lines.append(f"- {key}: {a:g} → {b:g} ({change:+.0%}, {'lower' if lower else 'higher'} is better)")
    return lines


def cpu_table(result: dict[str, Any]) -> str:
    """CPU per captured lead (ms), per process and in total, at each capture concurrency: from the
    first request until every consumer had caught up (``bench/cpu.py``)."""
    levels = {
        key: cap["cpu_per_lead"] for key, cap in result["scenarios"].get("capture", {}).items() if "cpu_per_lead" in cap
    }
    if not levels:
        return ""
    names = sorted({n for cpu in levels.values() for n in cpu["per_process_ms"]})
    names.sort(key=lambda n: -max(cpu["per_process_ms"].get(n, 0.0) for cpu in levels.values()))
    head = "| CPU ms per lead | total | " + " | ".join(names) + " |"
    rule = "|---" * (len(names) + 2) + "|"
    rows = [head, rule]
    for key, cpu in levels.items():
        cells = [f"{cpu['per_process_ms'].get(n, 0.0):.2f}" for n in names]
        rows.append(f"| capture {key} ({cpu['items']} leads) | **{cpu['total_ms']:.2f}** | " + " | ".join(cells) + " |")
    return "\n".join(rows)
