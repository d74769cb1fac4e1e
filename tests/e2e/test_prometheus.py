"""A real Prometheus scrapes the running system, as in production: every service's and the
gateway's metrics endpoint is up, the chart's alert and recording rules load and evaluate cleanly
against the live series, one golden path moves the business counters, and
deploy/helm/crm/files/metrics.txt (the list dashboards and alerts are checked against) is exactly
what the services export."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from crm_devstack.stack import BACKEND_SERVICES, GATEWAY, Stack
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "deploy" / "helm" / "crm" / "files"
# Scrape jobs named as in Kubernetes (the ServiceMonitor of Service crm-<service>), which the
# alert rules rely on (CrmTargetDown selects job=~"crm-.*").
JOBS = {f"crm-{service}": service for service in (*BACKEND_SERVICES, GATEWAY)}
SCRAPE_LABELS = {"__name__", "job", "instance"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")

# What one golden path (a radio lead won, shipped, texted) adds at least.
GOLDEN_PATH_MOVES = [
    'sum(crm_http_requests_total{job="crm-gateway", method="POST", route="/api/v1/leads", status="201"})',
    'sum(crm_leads_captured_total{job="crm-leads", source="radio"})',
    'sum(crm_deals_closed_total{job="crm-sales", outcome="won"})',
    'sum(crm_orders_created_total{job="crm-orders", currency_code="ILS"})',
    'sum(crm_orders_shipped_total{job="crm-orders"})',
    'sum(crm_sms_sent_total{job="crm-notifications"})',
    'sum(crm_speed_to_lead_seconds_count{job="crm-reporting"})',
    'sum(crm_events_consumed_total{job="crm-notifications", consumer="notifications-order-shipped", outcome="ok"})',
]
ITEMS = [
    {
        "sku": "SOFA-3",
        "description": "ספה",
        "quantity": 1,
        "unit_price": {"amount_minor": 459900, "currency_code": "ILS"},
    }
]


def prometheus_binary() -> str:
    local = ROOT / ".tools" / "bin" / "prometheus"
    found = str(local) if local.exists() else shutil.which("prometheus")
    if not found:
        pytest.fail("prometheus is not installed: run scripts/deploy-tools.sh (make test does)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def prometheus(stack: Stack, workdir: Path) -> Iterator[str]:
    """A Prometheus scraping every metrics port each second and evaluating the chart's rules."""
    binary = prometheus_binary()
    shutil.copy(FILES / "alerts.yaml", workdir / "alerts.yaml")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yaml"],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{stack.ports.metrics(service)}"]}]}
            for job, service in JOBS.items()
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        except BaseException:
            print(log_path.read_text(errors="replace")[-4000:])  # shown by pytest on failure
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def api_get(prom: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await prom.get(path, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


async def scalar(prom: httpx.AsyncClient, query: str) -> float:
    result = (await api_get(prom, "/api/v1/query", query=query))["result"]
    return float(result[0]["value"][1]) if result else 0.0


async def every_target_up(prom: httpx.AsyncClient) -> dict[str, str] | None:
    try:
        response = await prom.get("/api/v1/targets", params={"state": "active"})
    except httpx.TransportError:
        return None  # Prometheus not listening yet
    if response.status_code == 503:
        return None  # listening, but its storage is still starting ("Service Unavailable")
    assert response.status_code == 200, response.text
    targets = response.json()["data"]["activeTargets"]
    health = {target["labels"]["job"]: target["health"] for target in targets}
    return health if health == dict.fromkeys(JOBS, "up") else None


async def every_rule_evaluated(prom: httpx.AsyncClient) -> list[dict[str, Any]] | None:
    groups = (await api_get(prom, "/api/v1/rules"))["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    return rules if rules and all(not rule["lastEvaluation"].startswith("0001-") for rule in rules) else None


async def golden_path(api: httpx.AsyncClient, sms: httpx.AsyncClient) -> None:
    """Capture → convert → close won → ship → the SMS arrives."""
    phone = f"052-{uuid.uuid4().int % 10_000_000:07d}"
    captured = await api.post(
        "/api/v1/leads",
        json={"full_name": "דנה לוי", "phone_number": phone, "source": "radio", "locale": "he-IL"},
    )
    assert captured.status_code == 201, captured.text
    lead = captured.json()
    converted = await api.post(f"/api/v1/leads/{lead['id']}/convert", json={"title": "סלון"})
    assert converted.status_code == 201, converted.text
    deal_id = converted.json()["id"]
    closed = await api.post(f"/api/v1/deals/{deal_id}/close", json={"outcome": "won", "items": ITEMS})
    assert closed.status_code == 200, closed.text

    async def the_order() -> dict[str, Any] | None:
        orders = (await api.get("/api/v1/orders", params={"deal_id": deal_id})).json()["orders"]
        return orders[0] if orders else None

    order = await eventually(the_order, timeout=20)
    shipped = await api.post(
        f"/api/v1/orders/{order['id']}/ship",
        json={"carrier": "UPS", "tracking_number": "1Z999", "estimated_delivery_date": "2030-01-01"},
    )
    assert shipped.status_code == 200, shipped.text

    async def the_sms() -> list[dict[str, Any]]:
        return [m for m in (await sms.get("/messages")).json() if m["to"] == lead["phone_number"]]

    await eventually(the_sms, timeout=20)


def live_labels(series: list[dict[str, str]]) -> dict[str, set[str]]:
    """Label names (beyond job and instance) of every live metric name."""
    labels: dict[str, set[str]] = {}
    for item in series:
        labels.setdefault(item["__name__"], set()).update(set(item) - SCRAPE_LABELS)
    return labels


def declared() -> dict[str, tuple[str, set[str]]]:
    metrics = {}
    for line in (FILES / "metrics.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, kind, *labels = line.split()
            metrics[name] = (kind, set(labels))
    return metrics


def check_metrics_txt(live: dict[str, set[str]]) -> list[str]:
    problems = []
    metrics = declared()
    for name, (kind, labels) in metrics.items():
        if kind == "histogram":
            missing = [name + suffix for suffix in HISTOGRAM_SUFFIXES if name + suffix not in live]
            if missing:
                problems.append(f"{name}: histogram series {missing} not exported")
            elif live[name + "_bucket"] != labels | {"le"} or live[name + "_count"] != labels:
                problems.append(
                    f"{name}: labels are {sorted(live[name + '_count'])}, metrics.txt says {sorted(labels)}"
                )
        elif name not in live:
            problems.append(f"{name}: not exported")
        elif live[name] != labels:
            problems.append(f"{name}: labels are {sorted(live[name])}, metrics.txt says {sorted(labels)}")
    # Whatever crm_* the services export is listed (prometheus_client's *_created series aside).
    for name in sorted(n for n in live if n.startswith("crm_")):
        base = next((name.removesuffix(s) for s in HISTOGRAM_SUFFIXES if name.removesuffix(s) in metrics), name)
        created_of = name.removesuffix("_created")
        if base in metrics or (name.endswith("_created") and {created_of, created_of + "_total"} & set(metrics)):
            continue
        problems.append(f"{name}: exported but not in metrics.txt")
    return problems


async def test_prometheus_scrapes_every_service_and_sees_the_golden_path(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    with prometheus(stack, tmp_path) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as prom,
            httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as api,
            httpx.AsyncClient(base_url=stack.sms_url, timeout=15) as sms,
        ):
            await eventually(lambda: every_target_up(prom), timeout=30, interval=0.25)
            before = {query: await scalar(prom, query) for query in GOLDEN_PATH_MOVES}

            await golden_path(api, sms)

            async def moved() -> bool:
                after = {query: await scalar(prom, query) for query in GOLDEN_PATH_MOVES}
                return all(after[query] >= before[query] + 1 for query in GOLDEN_PATH_MOVES)

            try:
                await eventually(moved, timeout=15, interval=0.25)
            except AssertionError:
                after = {query: await scalar(prom, query) for query in GOLDEN_PATH_MOVES}
                raise AssertionError(f"counters did not move: before {before}, after {after}") from None

            # metrics.txt is what the services export, names and labels, both ways.
            series = await api_get(prom, "/api/v1/series", **{"match[]": '{job=~"crm-.*"}', "start": time.time() - 120})
            problems = check_metrics_txt(live_labels(series))
            assert not problems, "\n".join(problems)

            # The chart's rules evaluate cleanly on live series, and their recording rules see them.
            rules = await eventually(lambda: every_rule_evaluated(prom), timeout=10, interval=0.25)
            broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
            assert not broken, broken
            for query in (
                'job:crm_http_requests_errors:ratio_rate5m{job="crm-gateway"}',
                'job:crm_grpc_server_handling_seconds:p99_rate5m{job="crm-leads"}',
            ):

                async def recorded(query: str = query) -> list[Any]:
                    return list((await api_get(prom, "/api/v1/query", query=query))["result"])

                try:
                    await eventually(recorded, timeout=10, interval=0.25)
                except AssertionError:
                    raise AssertionError(f"the recording rule has no live series: {query}") from None
    assert time.monotonic() - started < 60
