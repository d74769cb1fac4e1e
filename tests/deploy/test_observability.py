"""The monitoring the umbrella chart ships: alert rules (promtool check + unit tests), Grafana
dashboards (valid, unique, every query parses) and the metric names both use, which must be in
deploy/helm/crm/files/metrics.txt (the e2e suite checks that list against a live scrape)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "crm"
FILES = CHART / "files"
ALERTS = FILES / "alerts.yaml"
ALERTS_TEST = FILES / "alerts_test.yaml"
METRICS_TXT = FILES / "metrics.txt"
DASHBOARDS = sorted((FILES / "dashboards").glob("*.json"))
RUNBOOK = "https://github.com/crm/crm/blob/main/docs/operations.md"
SEVERITIES = {"critical", "warning"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Series Prometheus makes itself, with the labels a query may use on them.
BUILTIN_SERIES = {"up": {"namespace", "job", "instance"}, "ALERTS": {"alertname", "alertstate", "severity", "job"}}
# job and instance from the scrape; namespace from the Prometheus Operator's ServiceMonitor.
SCRAPE_LABELS = {"namespace", "job", "instance"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
# Grafana's variables, replaced by a representative value before promtool parses a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${job}": "crm-leads",
    "$job": "crm-leads",
    "${namespace}": "crm",
    "$namespace": "crm",
}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
PROMQL_KEYWORDS |= {"offset", "inf", "nan"}


def tool(name: str) -> str:
    """A deploy tool from .tools/bin (scripts/deploy-tools.sh) or PATH; a missing one fails."""
    local = ROOT / ".tools" / "bin" / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run scripts/deploy-tools.sh (make test does)")
    return found


def run(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


# --- the declared metrics ----------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    labels: frozenset[str]


@cache
def declared_metrics() -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}
    for line in METRICS_TXT.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, kind, *labels = line.split()
        assert name not in metrics, f"{name} listed twice in metrics.txt"
        metrics[name] = Metric(name, kind, frozenset(labels))
    return metrics


# --- PromQL, read just enough to name its metrics and labels -----------------------------------


def _without_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not its functions, keywords, durations, numbers)."""
    text = _without_strings(expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":
            continue  # a number's exponent or a duration's unit
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() in PROMQL_KEYWORDS:
            continue
        names.add(match.group())
    return names


def label_names(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    text = _without_strings(expr)
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        labels |= {label.strip() for label in grouping.split(",") if label.strip()}
    return labels


def recording_rules() -> dict[str, set[str]]:
    """Recording rules of alerts.yaml with the labels they keep (their `by` clauses, without le)."""
    rules = {}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                kept = re.findall(r"\bby\s*\(([^)]*)\)", _without_strings(rule["expr"]))
                rules[rule["record"]] = {label.strip() for group_by in kept for label in group_by.split(",")} - {"le"}
    return rules


def resolve(name: str) -> tuple[str, set[str]] | None:
    """The labels a query may use on metric `name`, or None when it is not a known series."""
    declared = declared_metrics()
    if name in declared and declared[name].type != "histogram":
        return name, set(declared[name].labels) | SCRAPE_LABELS
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and base in declared and declared[base].type == "histogram":
            extra = {"le"} if suffix == "_bucket" else set()
            return base, set(declared[base].labels) | SCRAPE_LABELS | extra
    if name in (records := recording_rules()):
        return name, records[name]
    if name in BUILTIN_SERIES:
        return name, BUILTIN_SERIES[name]
    return None


def check_expression(expr: str, where: str, legend: str = "") -> list[str]:
    problems = []
    allowed: set[str] = set()
    for name in sorted(metric_names(expr)):
        resolved = resolve(name)
        if resolved is None:
            problems.append(f"{where}: {name} is not in metrics.txt, a recording rule or a built-in series")
        else:
            allowed |= resolved[1]
    for label in sorted(label_names(expr) - allowed - {"__name__"}):
        problems.append(f"{where}: label {label!r} is on none of the series of {expr!r}")
    for label in sorted(set(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend)) - allowed):
        problems.append(f"{where}: legend uses {label!r}, which {expr!r} does not have")
    return problems


def test_the_promql_reader_finds_names_and_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (job, le) (rate(crm_x_seconds_bucket{grpc_method!~"/a\\\\.b"}[5m]))) '
        "> 1e3 and on (job) up offset 5m or vector(0) / ignoring(instance) job:crm_y:ratio_rate5m"
    )
    assert metric_names(expr) == {"crm_x_seconds_bucket", "up", "job:crm_y:ratio_rate5m"}
    assert label_names(expr) == {"job", "le", "grpc_method", "instance"}


# --- alert rules -------------------------------------------------------------------------------


def alert_rules() -> Iterator[dict[str, Any]]:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        yield from (rule for rule in group["rules"] if "alert" in rule)


def test_alert_rules_pass_promtool_check() -> None:
    run(tool("promtool"), "check", "rules", str(ALERTS))


def test_alert_rules_pass_their_unit_tests() -> None:
    run(tool("promtool"), "test", "rules", ALERTS_TEST.name, cwd=FILES)


def test_every_aggregation_keeps_the_namespace_and_the_job() -> None:
    """Many environments in one Prometheus: every rule that sums or takes a maximum does it per
    namespace and job, so staging's errors never page for production's (and the reverse)."""
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            for labels in re.findall(r"\bby \(([^)]*)\)", rule["expr"]):
                names = {label.strip() for label in labels.split(",")}
                assert {"namespace", "job"} <= names, f"{rule.get('alert') or rule['record']}: by ({labels})"


def test_every_alert_has_severity_summary_description_and_its_runbook() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names must be unique (one runbook section each)"
    for rule in alert_rules():
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name
        assert annotations.get("runbook_url") == f"{RUNBOOK}#alert-{name.lower()}", name


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases: dict[str, list[bool]] = {}
    for group in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(bool(case.get("exp_alerts")))
    for name in (rule["alert"] for rule in alert_rules()):
        outcomes = cases.get(name, [])
        assert True in outcomes, f"no unit test shows {name} firing"
        assert False in outcomes, f"no unit test shows {name} silent"
    assert set(cases) <= {rule["alert"] for rule in alert_rules()}, "a unit test names an unknown alert"


def test_alerts_use_only_listed_metrics_and_their_labels() -> None:
    problems = []
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            problems += check_expression(rule["expr"], rule.get("alert") or rule["record"])
    assert not problems, "\n".join(problems)


# --- dashboards ----------------------------------------------------------------------------------


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in DASHBOARDS}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def queries(board: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, PromQL, legend) of every panel target and every query variable."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield (
                f"{board['uid']} / {panel['title']} / {target['refId']}",
                target["expr"],
                target.get("legendFormat", ""),
            )
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
            match = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", query)
            assert match, f"{board['uid']}: variable {variable['name']} is not label_values(selector, label)"
            yield f"{board['uid']} / ${variable['name']}", match.group(1), "{{" + match.group(2) + "}}"


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_the_dashboards_are_there() -> None:
    names = {path.stem for path in DASHBOARDS}
    assert names >= {
        "overview",
        "business",
        "gateway",
        "leads",
        "sales",
        "customers",
        "orders",
        "support",
        "notifications",
        "reporting",
    }


def test_dashboards_are_grafana_json_with_unique_uids() -> None:
    boards = load_dashboards()
    uids = [board.get("uid") for board in boards.values()]
    titles = [board.get("title") for board in boards.values()]
    assert all(uids) and len(uids) == len(set(uids)), uids
    assert all(titles) and len(titles) == len(set(titles)), titles
    for name, board in boards.items():
        assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"]), name
        assert isinstance(board.get("schemaVersion"), int), name
        assert board.get("panels"), f"{name} has no panels"
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in panels(board):
            where = f"{name} / {panel.get('title')}"
            assert panel.get("title") and panel.get("type"), where
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == DATASOURCE, where
            assert panel["targets"], f"{where} has no query"
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert len(ref_ids) == len(set(ref_ids)), where
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, where
                assert target["expr"].strip(), where


def test_every_dashboard_query_is_held_to_the_chosen_namespaces() -> None:
    """One Grafana over many installations: each dashboard has a namespace variable (before the
    job, whose values it narrows), and every series a query reads is held to it."""
    selector = re.compile(r"\b((?:crm_|process_)[a-zA-Z0-9_:]*|job:[a-zA-Z0-9_:]+|up)\b(\{[^}]*\})?(?!\s*\()")
    for name, board in load_dashboards().items():
        variables = [v["name"] for v in board["templating"]["list"]]
        assert variables[:2] == ["datasource", "namespace"], name
        if "job" in variables:
            job = next(v for v in board["templating"]["list"] if v["name"] == "job")
            assert '{namespace=~"$namespace"}' in job["query"], name
        for panel in panels(board):
            for target in panel.get("targets", []):
                for match in selector.finditer(target["expr"]):
                    assert 'namespace=~"$namespace"' in (match.group(2) or ""), f"{name}: {target['expr']}"


def test_dashboards_name_no_datasource_but_the_variable() -> None:
    def datasources(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "datasource":
                    yield value
                yield from datasources(value)
        elif isinstance(node, list):
            for item in node:
                yield from datasources(item)

    for name, board in load_dashboards().items():
        for datasource in datasources(board):
            assert datasource in (DATASOURCE, {"type": "grafana", "uid": "-- Grafana --"}), f"{name}: {datasource}"


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    rules: list[dict[str, Any]] = []
    for board in load_dashboards().values():
        for where, expr, _ in queries(board):
            concrete = substitute(expr)
            assert "$" not in concrete, f"{where}: unknown Grafana variable in {expr!r}"
            rules.append({"record": f"dashboard:query:{len(rules)}", "expr": concrete, "labels": {"where": where}})
    rule_file = tmp_path / "dashboards.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, allow_unicode=True))
    output = run(tool("promtool"), "check", "rules", str(rule_file))
    assert f"SUCCESS: {len(rules)} rules found" in output


def test_dashboards_use_only_listed_metrics_and_their_labels() -> None:
    problems = []
    for board in load_dashboards().values():
        for where, expr, legend in queries(board):
            problems += check_expression(substitute(expr), where, legend)
    assert not problems, "\n".join(problems)


def test_every_listed_crm_metric_is_on_some_dashboard_or_alert() -> None:
    used: set[str] = set()
    for board in load_dashboards().values():
        for _, expr, _ in queries(board):
            used |= {r[0] for name in metric_names(substitute(expr)) if (r := resolve(name))}
    for rule in yaml.safe_load(ALERTS.read_text())["groups"]:
        for item in rule["rules"]:
            used |= {r[0] for name in metric_names(item["expr"]) if (r := resolve(name))}
    unused = {name for name in declared_metrics() if name.startswith("crm_")} - used
    assert not unused, f"exported but shown nowhere: {sorted(unused)}"


# --- the chart's templates -----------------------------------------------------------------------


def render(tmp_path: Path, *sets: str) -> list[dict[str, Any]]:
    """The two monitoring templates in a minimal chart (the umbrella's subcharts are not needed)."""
    chart = tmp_path / "crm"
    (chart / "templates").mkdir(parents=True)
    shutil.copytree(FILES, chart / "files")
    for template in ("prometheusrule.yaml", "grafana-dashboards.yaml"):
        shutil.copy(CHART / "templates" / template, chart / "templates" / template)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: crm\nversion: 0.1.0\nappVersion: 0.1.0\n")
    (chart / "values.yaml").write_text(
        yaml.safe_dump(
            {
                "monitoring": {
                    "prometheusRule": {"enabled": False},
                    "dashboards": {"enabled": False, "labels": {"grafana_dashboard": "1"}},
                }
            }
        )
    )
    args = [tool("helm"), "template", "crm", str(chart), "--namespace", "crm"]
    for value in sets:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(run(*args)) if doc]


def test_monitoring_templates_render_nothing_when_off(tmp_path: Path) -> None:
    assert render(tmp_path) == []


def test_the_prometheus_rule_is_alerts_yaml(tmp_path: Path) -> None:
    docs = render(tmp_path, "monitoring.prometheusRule.enabled=true", "monitoring.prometheusRule.labels.release=kps")
    (rule,) = docs
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_alerts_link_the_chosen_runbooks_and_carry_the_extra_labels(tmp_path: Path) -> None:
    """Another environment's runbooks (a fork, a wiki) and routing labels, by values: every alert
    gets them, its own labels win, and the recording rules are left as they are."""
    docs = render(
        tmp_path,
        "monitoring.prometheusRule.enabled=true",
        "monitoring.prometheusRule.runbookBaseUrl=https://wiki.example/crm/runbooks",
        "monitoring.prometheusRule.ruleLabels.team=sales-it",
        "monitoring.prometheusRule.ruleLabels.severity=info",
    )
    (rule,) = docs
    source = yaml.safe_load(ALERTS.read_text())["groups"]
    rendered = {r.get("alert") or r["record"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    for group in source:
        for original in group["rules"]:
            name = original.get("alert") or original["record"]
            got = rendered[name]
            if "record" in original:
                assert got == original, name
                continue
            assert got["labels"] == {**original["labels"], "team": "sales-it"}, name
            anchor = original["annotations"]["runbook_url"].split("#", 1)[1]
            assert got["annotations"]["runbook_url"] == f"https://wiki.example/crm/runbooks#{anchor}", name
            assert got["expr"] == original["expr"], name


def test_a_second_set_of_dashboards_in_one_grafana_gets_its_own_uids(tmp_path: Path) -> None:
    """Without a suffix the ConfigMaps carry the files as they are; with one, every uid and title
    differs from the first set's, and nothing else does."""
    plain = {doc["metadata"]["name"]: doc for doc in render(tmp_path / "one", "monitoring.dashboards.enabled=true")}
    suffixed = render(tmp_path / "two", "monitoring.dashboards.enabled=true", "monitoring.dashboards.uidSuffix=staging")
    for doc in suffixed:
        [(file, text)] = doc["data"].items()
        board, original = json.loads(text), json.loads(plain[doc["metadata"]["name"]]["data"][file])
        assert board["uid"] == f"{original['uid']}-staging" and board["title"] == f"{original['title']} (staging)"
        assert {**board, "uid": original["uid"], "title": original["title"]} == original


def test_one_labelled_config_map_per_dashboard(tmp_path: Path) -> None:
    docs = render(tmp_path, "monitoring.dashboards.enabled=true")
    assert [doc["kind"] for doc in docs] == ["ConfigMap"] * len(DASHBOARDS)
    by_file = {}
    for doc in docs:
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((filename, content),) = doc["data"].items()
        by_file[filename] = json.loads(content)
    assert by_file == load_dashboards()
    custom = render(tmp_path / "custom", "monitoring.dashboards.enabled=true", "monitoring.dashboards.labels.team=sre")
    assert all(doc["metadata"]["labels"]["team"] == "sre" for doc in custom)


def test_every_runbook_link_has_its_section_in_the_operations_guide() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [rule["alert"] for rule in alert_rules() if f"### alert-{rule['alert'].lower()}\n" not in guide]

    assert not missing, f"docs/operations.md has no runbook section for: {missing}"


def test_the_csat_panels_compute_the_mean_survey_score(tmp_path: Path) -> None:
    """The support dashboard's CSAT, sum(score × answers) / sum(answers) spelled out per score, run
    by promtool over answers of 1 (one a minute) and 5 (three a minute) on two replicas: a mean of 4,
    with no score-2 to 4 series at all."""
    board = load_dashboards()["support.json"]
    csat = [panel["targets"][0]["expr"] for panel in panels(board) if panel["title"].startswith("CSAT")]
    assert len(csat) == 2, csat
    series = [
        ('crm_support_survey_answers_total{job="crm-support",instance="10.0.0.1:9100",score="1"}', "0+1x120"),
        ('crm_support_survey_answers_total{job="crm-support",instance="10.0.0.1:9100",score="5"}', "0+1x120"),
        ('crm_support_survey_answers_total{job="crm-support",instance="10.0.0.2:9100",score="5"}', "0+2x120"),
        ('crm_support_survey_answers_total{job="crm-other",instance="10.0.0.3:9100",score="1"}', "0+9x120"),
    ]
    (tmp_path / "none.yaml").write_text("groups: []\n")
    tests = {
        "rule_files": ["none.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": values} for name, values in series],
                "promql_expr_test": [
                    {
                        "expr": "round({}, 0.001)".format(
                            expr.replace("$__range", "1h").replace("$job", "crm-support").replace("$namespace", ".*")
                        ),
                        "eval_time": "2h",
                        "exp_samples": [{"labels": "{}", "value": 4}],
                    }
                    for expr in csat
                ],
            }
        ],
    }
    (tmp_path / "csat_test.yaml").write_text(yaml.safe_dump(tests))
    run(tool("promtool"), "test", "rules", "csat_test.yaml", cwd=tmp_path)
