"""The Helm charts (deploy/helm): lint, render, validate against Kubernetes 1.33, checkov, and
what a platform engineer relies on in the rendered objects: restricted pods, default-deny
network policies with exactly the architecture's flows, secrets only by reference, migrations as
hooks, one value for every service."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from crm_console.settings import ConsoleSettings
from crm_gateway.settings import GatewaySettings
from crm_support.main import SupportSettings

if TYPE_CHECKING:
    from conftest import DeployKit, Rendering

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
HELM_DIR = ROOT / "deploy" / "helm"
PRODUCTION_VALUES = HELM_DIR / "crm" / "values-production.yaml"
BACKENDS = ("leads", "sales", "customers", "orders", "support", "notifications", "reporting")
# The public HTTP servers: the gateway (the API) and the console (web pages over the API).
PUBLIC = ("gateway", "console")
SERVICES = (*PUBLIC, *BACKENDS)
# The services on the chassis' settings, which speak gRPC and NATS (the console does neither).
MESSAGING = ("gateway", *BACKENDS)
CHARTS = ("crm-lib", *SERVICES, "crm")
RELEASE = NAMESPACE = "crm"
KUBERNETES = "1.33"
GRPC, HTTP, METRICS = 50051, 8080, 9100
# The console listens where a local run does (its settings' defaults).
CONSOLE_HTTP, CONSOLE_METRICS = 8081, 9108
HTTP_PORT = {"gateway": HTTP, "console": CONSOLE_HTTP}
METRICS_PORT = {s: CONSOLE_METRICS if s == "console" else METRICS for s in SERVICES}
# Who calls whom over gRPC (docs/architecture.md).
CALLERS = {
    **{b: {"gateway"} for b in BACKENDS},
    "customers": {"gateway", "notifications"},
    # an A/B test's revenue winner: each variant's revenue
    "reporting": {"gateway", "notifications"},
}
CALLS = {"gateway": set(BACKENDS), "notifications": {"customers", "reporting"}}
# And over HTTP: the console calls the gateway's public API with the signed-in user's token.
HTTP_CALLS = {"console": {"gateway"}}
SECRET_ENV = {
    "CRM_DATABASE_URL": set(BACKENDS),
    "CRM_SMS_API_KEY": {"notifications"},
    # Each backend's own NATS user, the gateway's (its Idempotency-Key store), and the provisioner's.
    "CRM_NATS_USER": {*BACKENDS, "gateway", "nats-provisioner"},
    "CRM_NATS_PASSWORD": {*BACKENDS, "gateway", "nats-provisioner"},
    # The leads database, read by sales' one-off deal copy Job only (DEAL_COPY, off by default).
    "CRM_LEGACY_LEADS_DATABASE_URL": {"sales"},
    # The key sealing the console's session cookie (it holds the user's token).
    "CRM_CONSOLE_SESSION_KEY": {"console"},
    # The attachments bucket's keys: support's server only, and only with an s3:// objectStore.url.
    "CRM_OBJECT_STORE_ACCESS_KEY_ID": {"support"},
    "CRM_OBJECT_STORE_SECRET_ACCESS_KEY": {"support"},
    # The SMTP relay's password: notifications' server only, and only with smtp.username.
    "CRM_SMTP_PASSWORD": {"notifications"},
    # What signs each promotion recipient's unsubscribe link: notifications' server only.
    "CRM_UNSUBSCRIBE_SECRET": {"notifications"},
    # What the SMS provider signs its receipts and replies with: the gateway checks them.
    "CRM_SMS_CALLBACK_SECRET": {"gateway"},
}
OBJECT_STORE_KEYS = ("CRM_OBJECT_STORE_ACCESS_KEY_ID", "CRM_OBJECT_STORE_SECRET_ACCESS_KEY")
# The hook Job that creates the CRM stream and the Idempotency-Key bucket (no service may).
PROVISIONER = "nats-provisioner"
# The hook Job copying the deals leads kept into sales, once, during the upgrade to sales.
DEAL_COPY = "crm-sales-copy-deals-from-leads"
# The hook Job recording the conversions of the deals old leads pods made, before DEAL_COPY.
RECORD_CONVERSIONS = "crm-leads-record-legacy-conversions"
RECOMMENDED_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}


def fullname(service: str) -> str:
    return f"crm-{service}"


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    only: dict[str, Any] = containers[0]
    return only


def env_of(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(workload).get("env", [])}


def service_of(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/name"])


def service_of_or_none(obj: dict[str, Any]) -> str | None:
    labels: dict[str, str] = obj["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/name")


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are expected, got {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def policies_for(r: Rendering, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [p for p in r.of_kind("NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


def rule_peers(r: Rendering, labels: dict[str, str], direction: str, port: int) -> list[dict[str, Any]]:
    """The peers the NetworkPolicies allow for these pods in one direction on one TCP port."""
    side = "from" if direction == "ingress" else "to"
    peers = []
    for policy in policies_for(r, labels):
        for rule in policy["spec"].get(direction, []):
            ports = rule.get("ports")
            assert ports, f"{policy['metadata']['name']}: a {direction} rule without ports allows every port"
            assert rule.get(side), f"{policy['metadata']['name']}: a {direction} rule without peers allows everyone"
            if any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports):
                peers.extend(rule[side])
    return peers


def server_labels(r: Rendering, service: str) -> dict[str, str]:
    return pod_labels(r.get("Deployment", fullname(service)))


# --- the chart sources --------------------------------------------------------------------------


def test_values_schemas_are_generated_from_schemas_py(kit: DeployKit) -> None:
    result = kit.run(sys.executable, HELM_DIR / "schemas.py", "--check", check=False)
    assert result.returncode == 0, result.stderr


def test_global_components_block_is_the_same_in_every_chart() -> None:
    """A service chart released on its own must default exactly like it does under the umbrella."""
    blocks = {
        chart: yaml.safe_load((HELM_DIR / chart / "values.yaml").read_text())["global"]["components"]
        for chart in (*SERVICES, "crm")
    }
    for chart, block in blocks.items():
        assert block == blocks["crm"], f"{chart}/values.yaml global.components differs from crm/values.yaml"


def test_every_service_chart_is_one_liners_calling_the_library() -> None:
    for service in SERVICES:
        chart = yaml.safe_load((HELM_DIR / service / "Chart.yaml").read_text())
        assert chart["version"] == "0.1.0" and chart["appVersion"]
        assert chart["dependencies"] == [{"name": "crm-lib", "version": "0.1.0", "repository": "file://../crm-lib"}]
        for template in (HELM_DIR / service / "templates").iterdir():
            text = template.read_text().strip()
            assert re.fullmatch(r'\{\{- include "crm-lib\.[A-Za-z]+" \. \}\}', text), f"{template}: {text!r}"
    library = yaml.safe_load((HELM_DIR / "crm-lib" / "Chart.yaml").read_text())
    assert library["type"] == "library"


@pytest.mark.parametrize(
    ("chart", "values"),
    [(c, None) for c in CHARTS] + [("crm", PRODUCTION_VALUES)],
    ids=[*CHARTS, "crm-production"],
)
def test_lint_strict(kit: DeployKit, charts: Path, chart: str, values: Path | None) -> None:
    extra = ["--values", str(values)] if values else []
    result = kit.run(kit.tool("helm"), "lint", "--strict", "--kube-version", KUBERNETES, HELM_DIR / chart, *extra)
    assert "0 chart(s) failed" in result.stdout, result.stdout


# --- validation by the real tools ------------------------------------------------------------------


def test_umbrella_validates_against_kubernetes(kit: DeployKit, rendering: Rendering, tmp_path: Path) -> None:
    path = tmp_path / f"{rendering.name}.yaml"
    path.write_text(rendering.text)
    kit.kubernetes_validate(path)


def test_every_service_chart_renders_and_validates_on_its_own(kit: DeployKit, charts: Path, tmp_path: Path) -> None:
    """What a team releases on its own: the service chart with its defaults."""
    texts = []
    for service in SERVICES:
        result = kit.run(
            kit.tool("helm"),
            "template",
            fullname(service),
            HELM_DIR / service,
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBERNETES,
        )
        objects = [o for o in yaml.safe_load_all(result.stdout) if o]
        assert {o["kind"] for o in objects} >= {"Deployment", "Service", "ServiceAccount", "NetworkPolicy"}
        texts.append(result.stdout)
    path = tmp_path / "services.yaml"
    path.write_text("\n---\n".join(texts))
    kit.kubernetes_validate(path)


@pytest.fixture(scope="module", params=["default", "production", "deal_copy"])
def checkov_report(
    request: pytest.FixtureRequest, kit: DeployKit, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """checkov once per rendering, with deploy/helm/.checkov.yaml (its skips carry their reasons)."""
    rendering: Rendering = request.getfixturevalue(f"{request.param}_rendering")
    path = tmp_path_factory.mktemp("checkov") / f"{rendering.name}.yaml"
    path.write_text(rendering.text)
    return kit.checkov(path)


def test_checkov_finds_nothing(kit: DeployKit, checkov_report: list[dict[str, Any]]) -> None:
    by_type = {r["check_type"]: r for r in checkov_report}
    kubernetes = by_type["kubernetes"]["summary"]
    assert kubernetes["passed"] > 500 and kubernetes["parsing_errors"] == 0
    failures = kit.checkov_failures(checkov_report)
    assert not failures, "\n".join(failures)


# --- what the rendered objects promise -------------------------------------------------------------


def assert_restricted(workload: dict[str, Any]) -> None:
    """Pod Security Standard "restricted", a service account without a token, bounded resources."""
    name = workload["metadata"]["name"]
    spec = pod_spec(workload)
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }, name
    assert spec["automountServiceAccountToken"] is False, name
    assert spec["enableServiceLinks"] is False, name
    for key in ("hostNetwork", "hostPID", "hostIPC", "initContainers"):
        assert key not in spec, f"{name}: {key}"
    c = container(workload)
    assert c["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }, name
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], name
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"], name
    resources = c["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"]), name
    assert c["imagePullPolicy"] == "IfNotPresent", name
    assert re.fullmatch(r"[\w./-]+/crm-[a-z]+:[\w.-]+(@sha256:[a-f0-9]{64})?", c["image"]), c["image"]
    assert not c["image"].endswith(":latest"), name


def test_every_pod_is_restricted(rendering: Rendering) -> None:
    # a migration per backend, and the NATS provisioning
    assert len(rendering.of_kind("Deployment")) == len(SERVICES) and len(rendering.of_kind("Job")) == len(BACKENDS) + 1
    for workload in rendering.workloads():
        assert_restricted(workload)


def test_deployments_spread_and_stop_gracefully(rendering: Rendering) -> None:
    for deployment in rendering.of_kind("Deployment"):
        spec = pod_spec(deployment)
        constraints = spec["topologySpreadConstraints"]
        assert [t["topologyKey"] for t in constraints] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        selector = deployment["spec"]["selector"]
        for t in constraints:
            assert t["whenUnsatisfiable"] == "ScheduleAnyway" and t["labelSelector"] == selector
        c = container(deployment)
        # the console has no drain setting of its own: the chart's grace covers uvicorn's
        grace = float(env_of(deployment).get("CRM_SHUTDOWN_GRACE_SECONDS", {"value": 10})["value"])
        pause = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert spec["terminationGracePeriodSeconds"] > grace + pause
        assert c["args"] == ["serve"]


def test_recommended_labels_everywhere(rendering: Rendering) -> None:
    ours = [o for o in rendering.objects if o["metadata"].get("labels", {}).get("app.kubernetes.io/name") in SERVICES]
    assert len(ours) >= 6 * 5
    for obj in ours:
        labels = obj["metadata"]["labels"]
        assert RECOMMENDED_LABELS <= set(labels), f"{obj['kind']} {obj['metadata']['name']}: {labels}"
        assert labels["app.kubernetes.io/part-of"] == "crm" and labels["app.kubernetes.io/instance"] == RELEASE
        assert obj["metadata"]["namespace"] == NAMESPACE
    for workload in rendering.workloads():
        assert RECOMMENDED_LABELS <= set(pod_labels(workload))


def test_service_accounts_do_not_automount(rendering: Rendering) -> None:
    accounts = rendering.of_kind("ServiceAccount")
    assert {a["metadata"]["name"] for a in accounts} == {fullname(s) for s in SERVICES} | {
        f"{fullname(b)}-migration" for b in BACKENDS
    } | {fullname(PROVISIONER)}
    for account in accounts:
        assert account["automountServiceAccountToken"] is False
    for workload in rendering.workloads():
        assert pod_spec(workload)["serviceAccountName"] in {a["metadata"]["name"] for a in accounts}


def test_services_expose_exactly_the_server_and_metrics_ports(rendering: Rendering) -> None:
    for service in SERVICES:
        svc = rendering.get("Service", fullname(service))
        main = ("http", HTTP_PORT[service]) if service in PUBLIC else ("grpc", GRPC)
        assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [main, ("metrics", METRICS_PORT[service])]
        assert svc["spec"]["type"] == "ClusterIP"
        # Backends are headless: gRPC clients balance round-robin over the pods DNS returns.
        assert svc["spec"].get("clusterIP") == (None if service in PUBLIC else "None")
        assert selects({"matchLabels": svc["spec"]["selector"]}, server_labels(rendering, service))


# --- network policies ------------------------------------------------------------------------------


def test_every_pod_is_under_a_default_deny_policy_for_ingress_and_egress(rendering: Rendering) -> None:
    for workload in rendering.workloads():
        labels = pod_labels(workload)
        deny = [
            p
            for p in policies_for(rendering, labels)
            if p["spec"]["policyTypes"] == ["Ingress", "Egress"]
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
            and not p["metadata"].get("annotations")  # a hook policy is deleted after the hooks
        ]
        assert deny, f"no default-deny (ingress and egress) policy selects {workload['metadata']['name']}"


def test_every_service_has_its_allow_policy(rendering: Rendering) -> None:
    for service in SERVICES:
        policy = rendering.get("NetworkPolicy", fullname(service))
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert selects(policy["spec"]["podSelector"], server_labels(rendering, service))


def peer_services(rendering: Rendering, peers: list[dict[str, Any]]) -> set[str]:
    """The services whose server pods these peers are; anything else fails."""
    found = set()
    for peer in peers:
        assert set(peer) == {"podSelector"}, f"a gRPC peer must be a pod of this namespace, got {peer}"
        matched = [s for s in SERVICES if selects(peer["podSelector"], server_labels(rendering, s))]
        assert len(matched) == 1, f"{peer} selects {matched}"
        found.add(matched[0])
    return found


def test_only_the_callers_reach_a_backends_grpc_port(rendering: Rendering) -> None:
    for backend in BACKENDS:
        peers = rule_peers(rendering, server_labels(rendering, backend), "ingress", GRPC)
        assert peer_services(rendering, peers) == CALLERS[backend], backend
    for public in PUBLIC:
        assert rule_peers(rendering, server_labels(rendering, public), "ingress", GRPC) == []


def test_services_call_exactly_the_architectures_flows(rendering: Rendering) -> None:
    for service in SERVICES:
        peers = rule_peers(rendering, server_labels(rendering, service), "egress", GRPC)
        assert peer_services(rendering, peers) == CALLS.get(service, set()), service
        # the CRM_<SERVICE>_ADDR of every callee: its Service's name and gRPC port
        env = env_of(rendering.get("Deployment", fullname(service)))
        addresses = {name for name in env if name.endswith("_ADDR")}
        assert addresses == {f"CRM_{c.upper()}_ADDR" for c in CALLS.get(service, set())}
        for callee in CALLS.get(service, set()):
            assert env[f"CRM_{callee.upper()}_ADDR"]["value"] == f"{fullname(callee)}:{GRPC}"
            rendering.get("Service", fullname(callee))


def test_public_listeners_are_reached_from_the_ingress_controller_and_their_http_callers(
    rendering: Rendering,
) -> None:
    """The gateway's API from the ingress controller and the console's pods; the console's pages
    from the ingress controller only; nothing else reaches either http port."""
    controller = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    for public in PUBLIC:
        peers = rule_peers(rendering, server_labels(rendering, public), "ingress", HTTP_PORT[public])
        assert peers[0] == controller, public
        callers = {s for s, callees in HTTP_CALLS.items() if public in callees}
        assert peer_services(rendering, peers[1:]) == callers, public
    for service in SERVICES:  # and the metrics port from the monitoring namespace only
        for peer in rule_peers(rendering, server_labels(rendering, service), "ingress", METRICS_PORT[service]):
            assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}


def test_the_console_calls_the_gateways_service_over_http(rendering: Rendering) -> None:
    """Its only in-cluster flow: the gateway's pods on the http port, at the gateway's Service."""
    labels = server_labels(rendering, "console")
    assert peer_services(rendering, rule_peers(rendering, labels, "egress", HTTP)) == {"gateway"}
    env = env_of(rendering.get("Deployment", fullname("console")))
    service = rendering.get("Service", fullname("gateway"))
    http = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    assert env["CRM_CONSOLE_GATEWAY_URL"]["value"] == f"http://{fullname('gateway')}:{http}"


def test_the_console_is_configured_only_with_its_own_settings(rendering: Rendering) -> None:
    """Every variable the chart gives the console is a setting of the console (CRM_CONSOLE_*, its
    own pydantic-settings class), and the chart's ports are the settings' defaults (a pod listens
    where a local run does); no chassis, NATS or gRPC variable reaches it."""
    deployment = rendering.get("Deployment", fullname("console"))
    env = env_of(deployment)
    fields = ConsoleSettings.model_fields
    for name in env:
        assert name.startswith("CRM_CONSOLE_"), name
        assert name.removeprefix("CRM_CONSOLE_").lower() in fields, f"{name} is not a console setting"
    assert int(env["CRM_CONSOLE_HTTP_PORT"]["value"]) == fields["http_port"].default == CONSOLE_HTTP
    assert int(env["CRM_CONSOLE_METRICS_PORT"]["value"]) == fields["metrics_port"].default == CONSOLE_METRICS
    assert env["CRM_CONSOLE_HTTP_HOST"]["value"] == env["CRM_CONSOLE_METRICS_HOST"]["value"] == "0.0.0.0"
    assert env["CRM_CONSOLE_ENVIRONMENT"]["value"] == "production"
    assert env["CRM_CONSOLE_SECURE_COOKIES"]["value"] == "true"
    assert env["CRM_CONSOLE_PUBLIC_URL"]["value"].startswith("https://")
    mounts = {m["name"] for m in container(deployment)["volumeMounts"]}
    assert mounts == {"tmp"}, "no gRPC or NATS certificates in the console's pod"


def test_egress_is_exactly_dns_database_nats_otlp_and_the_external_dependencies(rendering: Rendering) -> None:
    production = rendering.name == "production"
    for service in SERVICES:
        policy = rendering.get("NetworkPolicy", fullname(service))
        ports = sorted((p["protocol"], p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"])
        expected = [("TCP", 53), ("UDP", 53)]
        expected += [("TCP", GRPC)] * len(CALLS.get(service, ()))
        expected += [("TCP", HTTP_PORT[callee]) for callee in HTTP_CALLS.get(service, ())]
        if service in BACKENDS:
            expected.append(("TCP", 5432))
        if service in MESSAGING:
            expected.append(("TCP", 4222))  # NATS: events, and the gateway's Idempotency-Key bucket
            if production:
                expected.append(("TCP", 4317))
        # the token issuer's JWKS / its sign-in (discovery, code exchange) / the SMS provider /
        # the attachments' bucket (production values set one; the default has none)
        if service in ("gateway", "console", "notifications") or (production and service == "support"):
            expected.append(("TCP", 443))
        if production and service == "notifications":
            expected.append(("TCP", 587))  # the SMTP relay (production values set one; the default none)
        assert ports == sorted(expected), service
        for rule in policy["spec"]["egress"]:
            for peer in rule["to"]:
                if "ipBlock" in peer and peer["ipBlock"]["cidr"] == "0.0.0.0/0":
                    assert "169.254.0.0/16" in peer["ipBlock"]["except"], "cloud metadata must stay unreachable"


def test_backend_database_peer_is_its_own_cloudnativepg_cluster(rendering: Rendering) -> None:
    """By default the pods of its own cluster; in production (database.cloudnativepg) its pooler's."""
    for backend in BACKENDS:
        peers = rule_peers(rendering, server_labels(rendering, backend), "egress", 5432)
        if rendering.name == "production":
            expected = {"cnpg.io/poolerName": f"{fullname(backend)}-db-pooler"}
        else:
            expected = {"cnpg.io/cluster": f"{fullname(backend)}-db"}
        assert peers == [{"podSelector": {"matchLabels": expected}}]


# --- secrets ---------------------------------------------------------------------------------------

DOWNWARD = {"metadata.namespace", "metadata.name", "spec.nodeName"}
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
SECRETISH_NAME = re.compile(r"(KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL)", re.IGNORECASE)


def _check_value_from(service: str, name: str, source: dict[str, Any]) -> None:
    """An env value from elsewhere: the downward API (where the pod runs, for its spans), or a
    Secret's key for exactly the variables that hold secrets."""
    if "fieldRef" in source:
        assert source["fieldRef"]["fieldPath"] in DOWNWARD, name
        return
    assert set(source) == {"secretKeyRef"}, name
    assert service in SECRET_ENV.get(name, set()), f"{service}: {name} must not come from a Secret"
    ref = source["secretKeyRef"]
    assert set(ref) == {"name", "key"} and ref["name"] and ref["key"]


def test_no_secret_objects_and_no_secret_values(rendering: Rendering) -> None:
    assert not rendering.of_kind("Secret")
    for workload in rendering.workloads():
        service = service_of(workload)
        for name, entry in env_of(workload).items():
            if "valueFrom" in entry:
                _check_value_from(service, name, entry["valueFrom"])
                continue
            value = str(entry["value"])
            assert name not in SECRET_ENV, f"{service}: {name} as a plain value"
            assert not CREDENTIALS_IN_URL.search(value), f"{service}: {name} holds credentials"
            if SECRETISH_NAME.search(name):
                assert name.endswith("_FILE") and value.startswith("/etc/crm/"), f"{service}: {name}={value!r}"
        for name, services in SECRET_ENV.items():
            # A migration Job does not reach NATS, so it gets no NATS credentials.
            migration = workload["kind"] == "Job" and service != PROVISIONER
            if name == "CRM_LEGACY_LEADS_DATABASE_URL" and workload["metadata"]["name"] != DEAL_COPY:
                continue
            if name == "CRM_SMTP_PASSWORD":
                login = "CRM_SMTP_USERNAME" in env_of(workload)
                assert (name in env_of(workload)) == login, f"{service}: {name}"
                assert not (migration and login), f"{service}: the migration Job gets no relay login"
                continue
            if name in OBJECT_STORE_KEYS:
                bucket = str(env_of(workload).get("CRM_OBJECT_STORE_URL", {}).get("value", ""))
                assert (name in env_of(workload)) == bucket.startswith("s3:"), f"{service}: {name}"
                assert not (migration and bucket), f"{service}: the migration Job gets no bucket"
                continue
            if service in services and not (migration and name.startswith("CRM_NATS_")):
                assert "valueFrom" in env_of(workload)[name], f"{service}: {name}"


def test_production_secrets_are_the_named_existing_secrets(production_rendering: Rendering) -> None:
    for backend in BACKENDS:
        env = env_of(production_rendering.get("Deployment", fullname(backend)))
        # CloudNativePG's generated Secret of the crm-databases chart's cluster, through its pooler.
        assert env["CRM_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": f"crm-{backend}-db-app", "key": "uri"}
        assert env["CRM_DATABASE_HOST"]["value"] == f"crm-{backend}-db-pooler:5432"
    sms = env_of(production_rendering.get("Deployment", "crm-notifications"))["CRM_SMS_API_KEY"]
    assert sms["valueFrom"]["secretKeyRef"] == {"name": "crm-notifications-sms", "key": "api-key"}
    session = env_of(production_rendering.get("Deployment", "crm-console"))["CRM_CONSOLE_SESSION_KEY"]
    assert session["valueFrom"]["secretKeyRef"] == {"name": "crm-console-session", "key": "session-key"}
    relay = env_of(production_rendering.get("Deployment", "crm-notifications"))["CRM_SMTP_PASSWORD"]
    assert relay["valueFrom"]["secretKeyRef"] == {"name": "crm-notifications-smtp", "key": "password"}
    store = env_of(production_rendering.get("Deployment", "crm-support"))["CRM_OBJECT_STORE_SECRET_ACCESS_KEY"]
    assert store["valueFrom"]["secretKeyRef"] == {"name": "crm-support-s3", "key": "secret-access-key"}


# --- probes ----------------------------------------------------------------------------------------


def test_backends_probe_natively_over_grpc_and_the_public_servers_over_http(default_rendering: Rendering) -> None:
    """Readiness asks whether the service can work (a backend's health service ""), startup and
    liveness only whether the process serves (service "liveness"): an outage of a dependency takes
    a pod out of its Service and never restarts it."""
    for service in SERVICES:
        c = container(default_rendering.get("Deployment", fullname(service)))
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = c[kind]
            if service in PUBLIC:
                path = "/readyz" if kind == "readinessProbe" else "/healthz"
                assert probe["httpGet"] == {"path": path, "port": "http"}, kind
            else:
                health = "" if kind == "readinessProbe" else "liveness"
                assert probe["grpc"] == {"port": GRPC, "service": health}, f"{service} {kind}"
                assert set(probe) & {"exec", "httpGet", "tcpSocket"} == set()


def test_with_grpc_tls_the_backends_probe_with_their_certificate(production_rendering: Rendering) -> None:
    """The kubelet's gRPC probe cannot speak TLS, so with mTLS on a backend probes itself through
    its certificate (exec); the secret is mounted read-only and the settings point into it."""
    for service in MESSAGING:
        deployment = production_rendering.get("Deployment", fullname(service))
        c, env = container(deployment), env_of(deployment)
        assert {"name": "grpc-tls", "mountPath": "/etc/crm/grpc-tls", "readOnly": True} in c["volumeMounts"]
        volume = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == "grpc-tls")
        assert volume["secret"]["secretName"] == f"{fullname(service)}-grpc-tls"
        assert env["CRM_GRPC_TLS_CERT_FILE"]["value"] == "/etc/crm/grpc-tls/tls.crt"
        assert env["CRM_GRPC_TLS_KEY_FILE"]["value"] == "/etc/crm/grpc-tls/tls.key"
        assert env["CRM_GRPC_TLS_CA_FILE"]["value"] == "/etc/crm/grpc-tls/ca.crt"
        if service in BACKENDS:
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                command = c[kind]["exec"]["command"]
                assert command[:2] == ["python", "-c"] and command[3] == fullname(service)
                assert command[5] == ("" if kind == "readinessProbe" else "liveness"), f"{service} {kind}"


def test_with_mtls_a_backend_serves_only_its_callers_certificates(production_rendering: Rendering) -> None:
    """The allowed client names are the flow table's callers by Service name (the name their
    certificates are issued for); the gateway and the console serve no gRPC and get none."""
    for service in SERVICES:
        env = env_of(production_rendering.get("Deployment", fullname(service)))
        if service in PUBLIC:
            assert "CRM_GRPC_ALLOWED_CLIENT_NAMES" not in env
            continue
        allowed = json.loads(env["CRM_GRPC_ALLOWED_CLIENT_NAMES"]["value"])
        assert sorted(allowed) == sorted(fullname(caller) for caller in CALLERS[service]), service


def test_in_a_pod_the_listeners_bind_every_interface(default_rendering: Rendering) -> None:
    """The settings default to loopback (make run); a pod is reached on its own IP."""
    for service in MESSAGING:  # the console's own: test_the_console_is_configured_only_with_its_own_settings
        env = env_of(default_rendering.get("Deployment", fullname(service)))
        assert env["CRM_METRICS_HOST"]["value"] == "0.0.0.0"
        if service in BACKENDS:
            assert env["CRM_GRPC_HOST"]["value"] == "0.0.0.0"
            assert "CRM_GRPC_ALLOWED_CLIENT_NAMES" not in env, "no client names without mTLS"


def _pki(directory: Path, name: str) -> dict[str, str]:
    """A CA and one certificate for `name` (server and client usage, like a cert-manager
    Certificate for a service that both serves and calls), as the Secret's files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def build(subject: str, issuer: str, key: Any, signer: Any, *, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("crm test CA", "crm test CA", ca_key, ca_key, ca=True)
    cert = build(name, "crm test CA", key, ca_key, ca=False)
    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "tls.crt": cert.public_bytes(serialization.Encoding.PEM),
        "tls.key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    for file, content in files.items():
        (directory / file).write_bytes(content)
    return {
        "CRM_GRPC_TLS_CERT_FILE": str(directory / "tls.crt"),
        "CRM_GRPC_TLS_KEY_FILE": str(directory / "tls.key"),
        "CRM_GRPC_TLS_CA_FILE": str(directory / "ca.crt"),
    }


async def test_tls_probe_command_checks_a_real_mtls_server(production_rendering: Rendering, tmp_path: Path) -> None:
    """The exec probes of the production rendering, run as they are against the chassis' gRPC
    server with mTLS and the rendered allowed client names (the probe's certificate, the pod's own,
    is not among them: health answers it anyway): readiness 0 while SERVING, not 0 when NOT_SERVING
    or under another name; liveness 0 while the process serves, ready or not."""
    from crm_kit.grpc_server import GrpcServer
    from crm_kit.settings import TlsFiles
    from crm_kit.testing import free_port

    service = fullname("customers")
    deployment = production_rendering.get("Deployment", service)
    probe = container(deployment)["readinessProbe"]
    allowed = json.loads(env_of(deployment)["CRM_GRPC_ALLOWED_CLIENT_NAMES"]["value"])
    assert service not in allowed
    command = [sys.executable, *probe["exec"]["command"][1:]]
    tls_env = _pki(tmp_path, service)
    port = free_port()
    ready = True

    async def check() -> bool:
        return ready

    server = GrpcServer(
        port,
        "crm.test",
        [check],
        tls=TlsFiles(
            tls_env["CRM_GRPC_TLS_CERT_FILE"], tls_env["CRM_GRPC_TLS_KEY_FILE"], tls_env["CRM_GRPC_TLS_CA_FILE"]
        ),
        allowed_client_names=allowed,
    )
    env = {**os.environ, **tls_env, "CRM_GRPC_PORT": str(port)}

    async def probe_exit(*args: str) -> int:
        process = await asyncio.create_subprocess_exec(*args, env=env, stderr=asyncio.subprocess.DEVNULL)
        return await asyncio.wait_for(process.wait(), timeout=probe["timeoutSeconds"] + 10)

    await server.start()
    try:
        for _ in range(50):  # the server turns SERVING after its first readiness round
            if await probe_exit(*command) == 0:
                break
            await asyncio.sleep(0.1)
        assert await probe_exit(*command) == 0
        assert await probe_exit(*command[:3], "crm-leads", *command[4:]) != 0, "the server's name must be verified"
        ready = False
        await asyncio.sleep(1.5)  # one readiness round (1 s while ready)
        assert await probe_exit(*command) != 0
        # Liveness asks whether the process serves: still 0 while it is not ready.
        liveness = [sys.executable, *container(deployment)["livenessProbe"]["exec"]["command"][1:]]
        assert await probe_exit(*liveness) == 0
    finally:
        await server.stop(0)


# --- production values -----------------------------------------------------------------------------


def test_production_scales_and_keeps_two_pods_through_disruptions(production_rendering: Rendering) -> None:
    r = production_rendering
    for service in SERVICES:
        deployment = r.get("Deployment", fullname(service))
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        hpa = r.get("HorizontalPodAutoscaler", fullname(service))
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": fullname(service),
        }
        assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] >= 3
        pdb = r.get("PodDisruptionBudget", fullname(service))
        assert pdb["spec"]["minAvailable"] == 2
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
        env = env_of(deployment)
        if service == "console":
            assert env["CRM_CONSOLE_ENVIRONMENT"]["value"] == "production"
            assert not [name for name in env if not name.startswith("CRM_CONSOLE_")], "no NATS, gRPC or OTLP"
            continue
        assert env["CRM_ENVIRONMENT"]["value"] == "production"
        # Every service, the gateway included (its Idempotency-Key bucket), reaches NATS as its
        # own user, by reference to its own Secret (docs/security.md, "The event bus").
        assert env["CRM_STREAM_REPLICAS"]["value"] == "3"
        assert env["CRM_NATS_URL"]["value"] == "nats://nats.nats.svc.cluster.local:4222"
        for name, key in (("CRM_NATS_USER", "user"), ("CRM_NATS_PASSWORD", "password")):
            assert env[name]["valueFrom"]["secretKeyRef"] == {"name": f"{fullname(service)}-nats", "key": key}
        # and over TLS, the servers verified against the CA of its own Secret
        assert env["CRM_NATS_TLS_CA_FILE"]["value"] == "/etc/crm/nats-tls/ca.crt"
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        assert volumes["nats-tls"]["secret"]["secretName"] == f"{fullname(service)}-nats-tls"
        if service in BACKENDS:
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].endswith(":4317")
    gateway = env_of(r.get("Deployment", "crm-gateway"))
    assert gateway["CRM_HSTS"]["value"] == "true"
    assert gateway["CRM_AUTH_JWKS_URL"]["value"].startswith("https://")
    assert gateway["CRM_AUTH_ISSUER"]["value"].startswith("https://")
    assert json.loads(gateway["CRM_CORS_ALLOW_ORIGINS"]["value"]) == ["https://app.example.com"]
    # Behind the ingress, the visitor's address comes from the controller's X-Forwarded-For only.
    assert json.loads(gateway["CRM_TRUSTED_PROXIES"]["value"]) == ["10.244.0.0/16"]
    assert gateway["CRM_HTTP_HOST"]["value"] == "0.0.0.0"
    ingress = r.get("Ingress", "crm-gateway")
    assert ingress["spec"]["tls"] and ingress["spec"]["rules"][0]["host"] == "crm.example.com"
    assert sorted(i["metadata"]["name"] for i in r.of_kind("Ingress")) == ["crm-console", "crm-gateway"]
    console = r.get("Ingress", "crm-console")
    assert console["spec"]["tls"] and console["spec"]["rules"][0]["host"] == "console.example.com"
    assert console["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "crm-console",
        "port": {"name": "http"},
    }
    # the gateway's body-size annotations are its own (written from its CSV upload cap)
    assert not any(a.startswith("nginx.") for a in console["metadata"].get("annotations", {}))
    assert (
        env_of(r.get("Deployment", "crm-console"))["CRM_CONSOLE_PUBLIC_URL"]["value"] == "https://console.example.com"
    )


def test_the_production_ingress_admits_exactly_the_csv_import_limit(production_rendering: Rendering) -> None:
    """One value sets both: the ingress's body size and the gateway's CSV upload cap (an ingress
    smaller than the cap breaks large imports; a larger one spools what the gateway refuses)."""
    r = production_rendering
    gateway = env_of(r.get("Deployment", "crm-gateway"))
    annotations = r.get("Ingress", "crm-gateway")["metadata"]["annotations"]
    import_cap = int(gateway["CRM_LEAD_IMPORT_MAX_BYTES"]["value"])

    assert int(annotations["nginx.ingress.kubernetes.io/proxy-body-size"]) == import_cap
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    # The chart's defaults are the gateway's own, so a run without the chart agrees too.
    assert import_cap == GatewaySettings.model_fields["lead_import_max_bytes"].default
    assert int(gateway["CRM_MAX_BODY_BYTES"]["value"]) == GatewaySettings.model_fields["max_body_bytes"].default
    # The API's map is not served in production unless a value turns it on.
    assert gateway["CRM_API_DOCS"]["value"] == "false"


def test_the_ingress_body_size_cannot_be_set_apart_from_the_import_limit(
    kit: DeployKit, charts: Path, tmp_path: Path
) -> None:
    values = tmp_path / "annotated.yaml"
    values.write_text(
        yaml.safe_dump({"gateway": {"ingress": {"annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "1m"}}}})
    )

    error = kit.render_fails("--values", PRODUCTION_VALUES, "--values", values)

    assert "set leadImportMaxBytes" in error


def test_default_values_run_one_replica_without_pdb_or_hpa(default_rendering: Rendering) -> None:
    assert not default_rendering.of_kind("PodDisruptionBudget")
    assert not default_rendering.of_kind("HorizontalPodAutoscaler")
    assert not default_rendering.of_kind("Ingress") and not default_rendering.of_kind("ServiceMonitor")
    for deployment in default_rendering.of_kind("Deployment"):
        assert deployment["spec"]["replicas"] == 1


def test_servicemonitors_scrape_each_services_metrics_port(production_rendering: Rendering) -> None:
    monitors = production_rendering.of_kind("ServiceMonitor")
    assert sorted(m["metadata"]["name"] for m in monitors) == sorted(fullname(s) for s in SERVICES)
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        services = [
            s
            for s in production_rendering.of_kind("Service")
            if selects(monitor["spec"]["selector"], s["metadata"]["labels"])
        ]
        # the scrape job is the Service's name, crm-<service>: the name the alerts use
        assert [s["metadata"]["name"] for s in services] == [monitor["metadata"]["name"]]
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


# --- the migration hook ----------------------------------------------------------------------------


def hook(obj: dict[str, Any]) -> dict[str, str]:
    annotations: dict[str, str] = obj["metadata"].get("annotations", {})
    return annotations


def test_migrations_run_as_pre_install_and_pre_upgrade_hooks_of_the_backends_only(rendering: Rendering) -> None:
    jobs = [j for j in rendering.of_kind("Job") if service_of(j) != PROVISIONER]
    assert sorted(service_of(j) for j in jobs) == sorted(BACKENDS), "one migration per backend, none for the gateway"
    for job in jobs:
        name = job["metadata"]["name"]
        assert name == f"{fullname(service_of(job))}-migration"
        annotations = hook(job)
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        assert container(job)["args"] == ["migrate"]
        assert pod_spec(job)["restartPolicy"] == "Never"
        assert "CRM_DATABASE_URL" in env_of(job)
        # its ServiceAccount and NetworkPolicy exist before it: they are hooks with lower weights
        account = rendering.get("ServiceAccount", pod_spec(job)["serviceAccountName"])
        policies = [p for p in policies_for(rendering, pod_labels(job)) if hook(p)]
        assert len(policies) == 1
        for dependency in (account, policies[0]):
            assert hook(dependency)["helm.sh/hook"] == "pre-install,pre-upgrade"
            assert int(hook(dependency)["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
        # the migration reaches DNS and its database, nothing else
        egress_ports = sorted(p["port"] for rule in policies[0]["spec"]["egress"] for p in rule["ports"])
        assert egress_ports == [53, 53, 5432]
        assert not policies[0]["spec"].get("ingress")
    for obj in rendering.objects:
        if service_of_or_none(obj) in PUBLIC:
            assert "helm.sh/hook" not in hook(obj), f"{obj['kind']} {obj['metadata']['name']}"


def test_the_deal_copy_job_renders_only_when_enabled_and_is_restricted(
    kit: DeployKit,
    default_rendering: Rendering,
    production_rendering: Rendering,
    deal_copy_rendering: Rendering,
    tmp_path: Path,
) -> None:
    """Sales' one-off copy of the deals leads kept (docs/operations.md, "Upgrading to the sales
    service") is opt-in. Switched on, it runs `copy-deals-from-leads` after sales' migration (a
    post-install,post-upgrade hook) in a restricted pod, both database URLs by reference, and
    reaches DNS and the two PostgreSQL clusters only (checkov reads this rendering too)."""
    for off in (default_rendering, production_rendering):
        assert not [o for o in off.objects if o["metadata"]["name"] == DEAL_COPY], off.name
    r = deal_copy_rendering

    job = r.get("Job", DEAL_COPY)
    assert hook(job)["helm.sh/hook"] == "post-install,post-upgrade"
    assert hook(job)["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert_restricted(job)
    c = container(job)
    assert c["args"] == ["copy-deals-from-leads"] and "command" not in c
    assert c["image"] == container(r.get("Deployment", fullname("sales")))["image"]
    env = env_of(job)
    assert env["CRM_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "crm-sales-db-app", "key": "uri"}
    assert env["CRM_LEGACY_LEADS_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "crm-leads-db-app",
        "key": "uri",
    }
    assert not [name for name in env if name.startswith("CRM_NATS_")], "the copy publishes no event"
    # its ServiceAccount and allow policy are hooks of the same events that exist before it, and
    # the service's regular default-deny policy covers its pods
    account = r.get("ServiceAccount", pod_spec(job)["serviceAccountName"])
    policies = [p for p in policies_for(r, pod_labels(job)) if hook(p)]
    assert len(policies) == 1
    for dependency in (account, policies[0]):
        assert hook(dependency)["helm.sh/hook"] == "post-install,post-upgrade"
        assert int(hook(dependency)["helm.sh/hook-weight"]) < int(hook(job)["helm.sh/hook-weight"])
    assert not policies[0]["spec"].get("ingress")
    databases = rule_peers(r, pod_labels(job), "egress", 5432)
    # its own database through the pooler; the leads one directly (the generated URL's -rw Service)
    assert databases == [
        {"podSelector": {"matchLabels": {"cnpg.io/poolerName": "crm-sales-db-pooler"}}},
        {"podSelector": {"matchLabels": {"cnpg.io/cluster": "crm-leads-db"}}},
    ]
    egress_ports = sorted(p["port"] for rule in policies[0]["spec"]["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 5432, 5432]
    test_every_pod_is_under_a_default_deny_policy_for_ingress_and_egress(r)
    test_no_secret_objects_and_no_secret_values(r)
    path = tmp_path / "deal-copy.yaml"
    path.write_text(r.text)
    kit.kubernetes_validate(path)


def test_leads_records_legacy_conversions_before_the_deal_copy_when_enabled(
    kit: DeployKit,
    charts: Path,
    default_rendering: Rendering,
    production_rendering: Rendering,
    deal_copy_rendering: Rendering,
    tmp_path: Path,
) -> None:
    """Leads' one-off `record-legacy-conversions` (docs/operations.md, "Upgrading to the sales
    service") is opt-in. Switched on, it is a post-install,post-upgrade hook in a restricted pod
    reaching DNS and leads' own PostgreSQL only, and in one umbrella upgrade Helm runs it before
    sales' copy, which skips the deals that still lack a conversion (checkov reads this rendering)."""
    for off in (default_rendering, production_rendering):
        assert not [o for o in off.objects if o["metadata"]["name"] == RECORD_CONVERSIONS], off.name
    r = deal_copy_rendering

    job = r.get("Job", RECORD_CONVERSIONS)
    assert service_of(job) == "leads"
    assert hook(job)["helm.sh/hook"] == "post-install,post-upgrade"
    assert hook(job)["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert_restricted(job)
    c = container(job)
    assert c["args"] == ["record-legacy-conversions"] and "command" not in c
    assert c["image"] == container(r.get("Deployment", fullname("leads")))["image"]
    env = env_of(job)
    assert env["CRM_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "crm-leads-db-app", "key": "uri"}
    assert [name for name, entry in env.items() if "valueFrom" in entry] == ["CRM_DATABASE_URL"]
    # its ServiceAccount and allow policy are hooks of the same events that exist before it
    account = r.get("ServiceAccount", pod_spec(job)["serviceAccountName"])
    policies = [p for p in policies_for(r, pod_labels(job)) if hook(p)]
    assert len(policies) == 1
    for dependency in (account, policies[0]):
        assert hook(dependency)["helm.sh/hook"] == "post-install,post-upgrade"
        assert int(hook(dependency)["helm.sh/hook-weight"]) < int(hook(job)["helm.sh/hook-weight"])
    assert not policies[0]["spec"].get("ingress")
    assert rule_peers(r, pod_labels(job), "egress", 5432) == [
        {"podSelector": {"matchLabels": {"cnpg.io/poolerName": "crm-leads-db-pooler"}}}
    ]
    egress_ports = sorted(p["port"] for rule in policies[0]["spec"]["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 5432]
    # Helm runs the hooks of one event across all subcharts by weight: leads' Job, then the copy
    copy = r.get("Job", DEAL_COPY)
    assert hook(copy)["helm.sh/hook"] == hook(job)["helm.sh/hook"]
    assert int(hook(job)["helm.sh/hook-weight"]) < int(hook(copy)["helm.sh/hook-weight"])

    # the leads chart released on its own renders the same Job
    alone = kit.run(
        kit.tool("helm"),
        "template",
        fullname("leads"),
        HELM_DIR / "leads",
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBERNETES,
        "--set",
        "recordLegacyConversions.enabled=true",
    ).stdout
    jobs = [o for o in yaml.safe_load_all(alone) if o and o["kind"] == "Job"]
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted([RECORD_CONVERSIONS, f"{fullname('leads')}-migration"])
    path = tmp_path / "leads-record-conversions.yaml"
    path.write_text(alone)
    kit.kubernetes_validate(path)


# --- one value for every service -------------------------------------------------------------------


def test_one_global_value_changes_every_image(kit: DeployKit, default_rendering: Rendering) -> None:
    for workload in default_rendering.workloads():
        assert container(workload)["image"].endswith(":0.1.0")
    changed = kit.render("--set", "global.components.image.tag=2.3.4")
    images = [container(w)["image"] for w in changed.workloads()]
    assert len(images) == len(SERVICES) + len(BACKENDS) + 1  # + the NATS provisioning (the gateway's image)
    assert all(i.endswith(":2.3.4") for i in images), images
    assert {service_of(w) for w in changed.of_kind("Deployment")} == set(SERVICES)
    # a service's own value wins over the shared one
    pinned = kit.render("--set", "global.components.image.tag=2.3.4", "--set", "leads.image.tag=2.3.5")
    for workload in pinned.workloads():
        expected = "2.3.5" if service_of(workload) == "leads" else "2.3.4"
        assert container(workload)["image"].endswith(f":{expected}")


def test_a_service_can_turn_off_what_the_global_block_turns_on(kit: DeployKit, charts: Path) -> None:
    """The merge lets `false` on the service win (sprig's mergeOverwrite would not)."""
    r = kit.render(
        "--set",
        "global.components.autoscaling.enabled=true",
        "--set",
        "leads.autoscaling.enabled=false",
        "--set",
        "orders.networkPolicy.enabled=false",
    )
    assert sorted(service_of(h) for h in r.of_kind("HorizontalPodAutoscaler")) == sorted(set(SERVICES) - {"leads"})
    assert r.get("Deployment", "crm-leads")["spec"]["replicas"] == 1
    assert not [p for p in r.of_kind("NetworkPolicy") if service_of(p) == "orders"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "global.components.image.tag=latest"], "/global/components/image/tag"),
        (["--set", "leads.image.tag=latest"], "leads:\n- at '/image/tag'"),
        (["--set", "leads.database.password=hunter2"], "password"),
        (["--set", "notifications.sms.apiKey=hunter2"], "apiKey"),
        (["--set", "global.components.image.digest=sha256:" + "a" * 64], "digest"),
        (["--set", "gateway.auth.jwksUrl=http://auth.example.com/jwks"], "jwksUrl"),
        (["--set-json", "global.components.nats.networkPeers=[]"], "would allow everyone"),
        (["--set-json", "notifications.sms.networkPeers=[]"], "would allow everyone"),
        (["--set", "global.components.otlp.endpoint=http://otel:4317"], "otlp.networkPeers"),
        (["--set", "global.components.podDisruptionBudget.enabled=true"], "must be below the replicas"),
        (["--set", "leads.monitoring.serviceMonitor.enabled=true"], "must be false"),
        (["--set", "leads.podSecurity.runAsUser=0"], "/podSecurity/runAsUser"),
        (["--set", "gateway.ingress.enabled=true"], "trustedProxies is empty while the Ingress is enabled"),
        (["--set-json", 'gateway.trustedProxies=["ingress-nginx"]'], "/trustedProxies/0"),
        (["--set", "global.components.nats.auth.enabled=false"], "production needs NATS credentials"),
        (["--set", "global.components.nats.tls.enabled=false"], "production needs TLS to NATS"),
        (["--set", "leads.nats.tls.enabled=false"], "leads: production needs TLS to NATS"),
        (["--set", "console.sessionKey=c2VjcmV0"], "sessionKey"),
        (["--set", "console.secureCookies=false"], "console: production needs secureCookies=true"),
        (
            ["--set", "console.publicUrl=http://console.example.com"],
            "console: production serves the console over https",
        ),
        (["--set-json", "console.oidc.networkPeers=[]"], "would allow everyone"),
        (["--set", "leads.ingress.enabled=true"], "additional properties 'ingress' not allowed"),
    ],
    ids=[
        "latest-tag",
        "latest-tag-of-one-service",
        "database-password-in-values",
        "sms-key-in-values",
        "shared-digest",
        "plain-http-jwks",
        "empty-nats-peers",
        "empty-sms-peers",
        "otlp-without-peers",
        "pdb-blocking-drains",
        "second-servicemonitor",
        "root-user",
        "ingress-without-trusted-proxies",
        "trusted-proxy-not-a-cidr",
        "production-nats-without-credentials",
        "production-nats-without-tls",
        "production-nats-without-tls-for-one-service",
        "console-session-key-in-values",
        "console-cookies-over-http-in-production",
        "console-public-url-over-http-in-production",
        "empty-oidc-peers",
        "ingress-of-a-backend",
    ],
)
def test_the_charts_refuse(kit: DeployKit, charts: Path, args: list[str], message: str) -> None:
    error = kit.render_fails(*args)
    assert message in error, error


def test_nats_tls_files_come_from_the_services_own_secret(kit: DeployKit, charts: Path) -> None:
    r = kit.render(
        "--set",
        "global.components.nats.tls.enabled=true",
        "--set",
        "global.components.nats.tls.certKey=tls.crt",
        "--set",
        "global.components.nats.tls.keyKey=tls.key",
    )
    deployment = r.get("Deployment", "crm-orders")
    env = env_of(deployment)
    assert env["CRM_NATS_TLS_CA_FILE"]["value"] == "/etc/crm/nats-tls/ca.crt"
    assert env["CRM_NATS_TLS_CERT_FILE"]["value"] == "/etc/crm/nats-tls/tls.crt"
    assert env["CRM_NATS_TLS_KEY_FILE"]["value"] == "/etc/crm/nats-tls/tls.key"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["nats-tls"]["secret"]["secretName"] == "crm-orders-nats-tls"
    assert {"name": "nats-tls", "mountPath": "/etc/crm/nats-tls", "readOnly": True} in container(deployment)[
        "volumeMounts"
    ]


def test_plaintext_nats_in_production_only_with_a_mesh_that_says_so(kit: DeployKit, charts: Path) -> None:
    """A service mesh that wraps every connection in mTLS is the one way to run production without
    the chart's NATS TLS, and it has to be said explicitly."""
    r = kit.render(
        "--set", "global.components.nats.tls.enabled=false", "--set", "global.components.nats.tls.serviceMesh=true"
    )
    for workload in r.workloads():
        assert "CRM_NATS_TLS_CA_FILE" not in env_of(workload), workload["metadata"]["name"]


# --- the NATS provisioning hook --------------------------------------------------------------------


def test_only_the_provisioning_hook_creates_the_stream_and_the_bucket(rendering: Rendering) -> None:
    """Before the services start, a hook Job creates or updates the CRM stream and the gateway's
    Idempotency-Key bucket as the NATS `provisioner` user (no service may), with the gateway's
    image and settings, reaching DNS and NATS only."""
    job = rendering.get("Job", f"crm-{PROVISIONER}")
    assert hook(job)["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert hook(job)["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    c = container(job)
    assert c["command"] == ["python", "-m", "crm_kit.nats_access"] and c["args"] == ["provision"]
    assert c["image"] == container(rendering.get("Deployment", "crm-gateway"))["image"]
    env, gateway = env_of(job), env_of(rendering.get("Deployment", "crm-gateway"))
    assert env["CRM_SERVICE_NAME"]["value"] == "provisioner"
    for name, key in (("CRM_NATS_USER", "user"), ("CRM_NATS_PASSWORD", "password")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "crm-provisioner-nats", "key": key}
    for name in ("CRM_NATS_URL", "CRM_STREAM_REPLICAS", "CRM_ENVIRONMENT"):
        assert env[name] == gateway[name], name
    if rendering.name == "production":
        assert env["CRM_NATS_TLS_CA_FILE"]["value"] == "/etc/crm/nats-tls/ca.crt"
        volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
        assert volumes["nats-tls"]["secret"]["secretName"] == "crm-provisioner-nats-tls"
    # its ServiceAccount and allow policy are hooks that exist before it; a regular default-deny
    # policy covers its pods too
    account = rendering.get("ServiceAccount", pod_spec(job)["serviceAccountName"])
    policies = [p for p in policies_for(rendering, pod_labels(job)) if hook(p)]
    assert len(policies) == 1
    for dependency in (account, policies[0]):
        assert hook(dependency)["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(hook(dependency)["helm.sh/hook-weight"]) < int(hook(job)["helm.sh/hook-weight"])
    egress_ports = sorted(p["port"] for rule in policies[0]["spec"]["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 4222]
    assert not policies[0]["spec"].get("ingress")
    nats_rule = policies[0]["spec"]["egress"][1]
    assert nats_rule["to"] == rule_peers(rendering, server_labels(rendering, "gateway"), "egress", 4222)


def test_the_provisioning_hook_can_be_left_to_an_operator(kit: DeployKit, charts: Path) -> None:
    r = kit.render("--set", "natsProvisioning.enabled=false")
    assert not [o for o in r.objects if service_of_or_none(o) == PROVISIONER]


def test_the_company_reaches_sales_quotes_and_reporting_periods(kit: DeployKit, default_rendering: Rendering) -> None:
    """One company block: its time zone is sales' and reporting's calendar, its details print on
    quotes; an empty detail leaves sales' own default and other services get none of it."""
    for service in SERVICES:
        env = env_of(default_rendering.get("Deployment", fullname(service)))
        zone = env.get("CRM_COMPANY_TIME_ZONE", {}).get("value")
        assert zone == ("Asia/Jerusalem" if service in ("sales", "reporting") else None), service
        assert not {name for name in env if name.startswith("CRM_COMPANY_") and name != "CRM_COMPANY_TIME_ZONE"}
    tehran = kit.render(
        "--set", "global.components.company.timeZone=Asia/Tehran",
        "--set", "global.components.company.name=مبلمان البرز",
        "--set-string", "sales.company.taxId=10101234567",
    )  # fmt: skip
    sales = env_of(tehran.get("Deployment", fullname("sales")))
    reporting = env_of(tehran.get("Deployment", fullname("reporting")))
    assert {k: sales[k]["value"] for k in ("CRM_COMPANY_TIME_ZONE", "CRM_COMPANY_NAME", "CRM_COMPANY_TAX_ID")} == {
        "CRM_COMPANY_TIME_ZONE": "Asia/Tehran",
        "CRM_COMPANY_NAME": "مبلمان البرز",
        "CRM_COMPANY_TAX_ID": "10101234567",
    }
    assert reporting["CRM_COMPANY_TIME_ZONE"]["value"] == "Asia/Tehran"
    assert "not match" in kit.render_fails("--set", "global.components.company.timeZone=Asia Tehran")


def test_the_sla_scan_interval_reaches_support_only(kit: DeployKit, default_rendering: Rendering) -> None:
    """slaScanIntervalSeconds is support's CRM_SLA_SCAN_INTERVAL_SECONDS, defaulting as the service
    does; no other service gets it, and an interval that would spin the scan is refused."""
    default = SupportSettings.model_fields["sla_scan_interval_seconds"].default
    for workload in default_rendering.workloads():
        value = env_of(workload).get("CRM_SLA_SCAN_INTERVAL_SECONDS", {}).get("value")
        if service_of(workload) == "support":
            assert value is not None and float(value) == default, workload["metadata"]["name"]
        else:
            assert value is None, workload["metadata"]["name"]
    # --set would pass 7.5 as a string (helm types only integers and booleans there).
    faster = kit.render("--set-json", "support.slaScanIntervalSeconds=7.5")
    assert env_of(faster.get("Deployment", fullname("support")))["CRM_SLA_SCAN_INTERVAL_SECONDS"]["value"] == "7.5"
    assert "slaScanIntervalSeconds" in kit.render_fails("--set", "support.slaScanIntervalSeconds=0")


def test_e_mail_settings_and_the_relay_egress_only_with_a_relay(kit: DeployKit, default_rendering: Rendering) -> None:
    """notifications gets the survey link's base always; the relay's settings and egress only with
    smtp.host; a login only over TLS, its password by reference."""
    env = env_of(default_rendering.get("Deployment", fullname("notifications")))
    assert env["CRM_SURVEY_BASE_URL"]["value"] == "https://console.example.com"
    assert not [n for n in env if n.startswith("CRM_SMTP_")]
    assert rule_peers(default_rendering, server_labels(default_rendering, "notifications"), "egress", 587) == []

    relay = [{"ipBlock": {"cidr": "192.0.2.10/32"}}]
    r = kit.render(
        "--set", "notifications.smtp.host=smtp.example.com",
        "--set", "notifications.smtp.username=crm",
        "--set-json", f"notifications.smtp.networkPeers={json.dumps(relay)}",
    )  # fmt: skip
    env = env_of(r.get("Deployment", fullname("notifications")))
    assert {k: env[k]["value"] for k in ("CRM_SMTP_HOST", "CRM_SMTP_PORT", "CRM_SMTP_SECURITY")} == {
        "CRM_SMTP_HOST": "smtp.example.com",
        "CRM_SMTP_PORT": "587",
        "CRM_SMTP_SECURITY": "starttls",
    }
    assert env["CRM_SMTP_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": f"{fullname('notifications')}-smtp", "key": "password"}
    }
    assert rule_peers(r, server_labels(r, "notifications"), "egress", 587) == relay
    clear = kit.render_fails(
        "--set", "notifications.smtp.host=smtp.example.com",
        "--set", "notifications.smtp.username=crm",
        "--set", "notifications.smtp.security=none",
    )  # fmt: skip
    assert "in clear" in clear
    assert "smtp" in kit.render_fails("--set", "notifications.smtp.security=ssl")


def test_the_consent_rules_reach_customers_only(kit: DeployKit, default_rendering: Rendering) -> None:
    for workload in default_rendering.workloads():
        rules = env_of(workload).get("CRM_CONSENT_RULES", {}).get("value")
        assert rules == ("IL" if service_of(workload) == "customers" else None), workload["metadata"]["name"]
    iran = kit.render("--set", "customers.consentRules=IR")
    assert env_of(iran.get("Deployment", fullname("customers")))["CRM_CONSENT_RULES"]["value"] == "IR"
    assert "consentRules" in kit.render_fails("--set", "customers.consentRules=XX")


S3_URL = "s3://crm-attachments?endpoint=https://s3.example.com&region=il-central-1"


def test_the_attachments_bucket_gets_its_settings_keys_and_egress_only_when_set(
    kit: DeployKit, default_rendering: Rendering
) -> None:
    """Without objectStore.url support has no store settings and no egress to one; with an s3://
    url it gets the url, the keys by reference to the Secret, and egress to the bucket's peers on
    its port, nothing wider. An s3:// url without a Secret, or with no peers, is refused."""
    support = server_labels(default_rendering, "support")
    assert not [n for n in env_of(default_rendering.get("Deployment", fullname("support"))) if "OBJECT_STORE" in n]
    assert rule_peers(default_rendering, support, "egress", 443) == []

    minio = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "minio"}}}]
    r = kit.render(
        "--set-json", f"support.objectStore.url={json.dumps(S3_URL)}",
        "--set", "support.objectStore.existingSecret=crm-support-s3",
        "--set", "support.objectStore.port=9000",
        "--set-json", f"support.objectStore.networkPeers={json.dumps(minio)}",
    )  # fmt: skip
    env = env_of(r.get("Deployment", fullname("support")))
    assert env["CRM_OBJECT_STORE_URL"]["value"] == S3_URL
    for name, key in (("ACCESS_KEY_ID", "access-key-id"), ("SECRET_ACCESS_KEY", "secret-access-key")):
        assert env[f"CRM_OBJECT_STORE_{name}"]["valueFrom"] == {"secretKeyRef": {"name": "crm-support-s3", "key": key}}
    assert rule_peers(r, server_labels(r, "support"), "egress", 9000) == minio
    for other in ("gateway", "notifications", "customers"):
        assert rule_peers(r, server_labels(r, other), "egress", 9000) == [], other

    url = ("--set-json", f"support.objectStore.url={json.dumps(S3_URL)}")
    assert "existingSecret is required" in kit.render_fails(*url)
    no_peers = kit.render_fails(
        *url, "--set", "support.objectStore.existingSecret=s", "--set-json", "support.objectStore.networkPeers=[]"
    )
    assert "would allow everyone" in no_peers


def test_reportings_duckdb_copy_has_its_own_volume_and_settings(kit: DeployKit, default_rendering: Rendering) -> None:
    """The report builder's copy lives on an emptyDir of its own at the directory the service is
    told, with the values' memory and threads; with engine postgresql neither volume nor copy."""
    reporting = default_rendering.get("Deployment", fullname("reporting"))
    env = {name: e.get("value") for name, e in env_of(reporting).items()}
    assert env["CRM_REPORT_ENGINE"] == "duckdb"
    assert (env["CRM_REPORT_ENGINE_MEMORY"], env["CRM_REPORT_ENGINE_THREADS"]) == ("256MB", "2")
    mounts = {m["name"]: m["mountPath"] for m in container(reporting)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(reporting)["volumes"]}
    assert mounts["report-engine"] == env["CRM_REPORT_ENGINE_DIR"]
    assert volumes["report-engine"]["emptyDir"] == {"sizeLimit": "2Gi"}
    # The copy's memory fits in the pod's with room for the rest of the process.
    assert container(reporting)["resources"]["limits"]["memory"] == "1Gi"
    for service in BACKENDS:
        if service != "reporting":
            assert "CRM_REPORT_ENGINE" not in env_of(default_rendering.get("Deployment", fullname(service)))
    off = kit.render("--set", "reporting.reportEngine.engine=postgresql", name="report-engine-off")
    reporting = off.get("Deployment", fullname("reporting"))
    assert env_of(reporting)["CRM_REPORT_ENGINE"]["value"] == "postgresql"
    assert "report-engine" not in {v["name"] for v in pod_spec(reporting)["volumes"]}
    assert "must be one of" in kit.render_fails("--set", "reporting.reportEngine.engine=clickhouse")


def test_every_chart_states_the_kubernetes_it_needs(kit: DeployKit, charts: Path) -> None:
    """kubeVersion on every installable chart (the preStop sleep action needs 1.30): an older
    cluster is refused at install, not half-deployed."""
    for chart in (*SERVICES, "crm"):
        assert yaml.safe_load((HELM_DIR / chart / "Chart.yaml").read_text())["kubeVersion"] == ">=1.30.0-0", chart
    old = kit.run(kit.tool("helm"), "template", "crm", HELM_DIR / "crm", "--kube-version", "1.29.0", check=False)
    assert old.returncode != 0 and "kubeVersion" in old.stderr


def test_the_documented_upgrades_pass_values_files_not_reuse_values() -> None:
    """--reuse-values keeps the previous chart's defaults (a new key arrives empty): no documented
    helm command uses it."""
    for doc in (ROOT / "docs" / "operations.md", HELM_DIR / "README.md", ROOT / "README.md"):
        commands = re.findall(r"helm (?:upgrade|install)[^\n]*(?:\\\n[^\n]*)*", doc.read_text())
        assert commands or doc.name == "README.md", doc
        assert not [c for c in commands if "--reuse-values" in c], doc


def test_spans_carry_the_namespace_pod_and_node(production_rendering: Rendering) -> None:
    """With an OTLP endpoint, each process's resource names where it runs, from the downward API
    (the variables come before the one that refers to them)."""
    for service in MESSAGING:
        env = container(production_rendering.get("Deployment", fullname(service)))["env"]
        names = [e["name"] for e in env]
        fields = {
            e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
            for e in env
            if "valueFrom" in e and "fieldRef" in e["valueFrom"]
        }
        assert fields == {
            "K8S_NAMESPACE_NAME": "metadata.namespace",
            "K8S_POD_NAME": "metadata.name",
            "K8S_NODE_NAME": "spec.nodeName",
        }, service
        attributes = next(e["value"] for e in env if e["name"] == "OTEL_RESOURCE_ATTRIBUTES")
        assert attributes == (
            "k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.pod.name=$(K8S_POD_NAME),"
            "k8s.node.name=$(K8S_NODE_NAME),service.namespace=crm"
        )
        assert max(names.index(f) for f in fields) < names.index("OTEL_RESOURCE_ATTRIBUTES"), service


def test_dns_egress_also_reaches_nodelocal_dnscache(rendering: Rendering) -> None:
    """With NodeLocal DNSCache, pods ask 169.254.20.10 (a host-network agent no pod selector
    matches): the DNS rule allows it beside CoreDNS's pods, on port 53 only."""
    for service in SERVICES:
        policy = rendering.get("NetworkPolicy", fullname(service))
        [dns] = [r for r in policy["spec"]["egress"] if {p["port"] for p in r["ports"]} == {53}]
        assert {"ipBlock": {"cidr": "169.254.20.10/32"}} in dns["to"], service
        assert any("podSelector" in peer for peer in dns["to"]), service


def test_the_install_notes_tell_the_installer_what_to_do_next(
    kit: DeployKit, charts: Path, production_rendering: Rendering
) -> None:
    """NOTES.txt (helm install prints it): the rollout to wait for, the objects to look at when
    one fails — named as the chart names them —, what the gateway's /readyz says, the public URL,
    and what must be done before the first users."""
    out = kit.run(
        kit.tool("helm"), "install", RELEASE, HELM_DIR / "crm", "-n", NAMESPACE, "--dry-run=client",
        "-f", PRODUCTION_VALUES,
    ).stdout  # fmt: skip
    notes = out.split("NOTES:", 1)[1]
    assert f"kubectl -n {NAMESPACE} rollout status deployment -l app.kubernetes.io/part-of=crm" in notes
    for job in ("crm-<service>-migration", "crm-nats-provisioner"):
        assert job in notes
    assert production_rendering.get("Job", "crm-leads-migration") and production_rendering.get(
        "Job", "crm-nats-provisioner"
    )
    assert '"unavailable": []' in notes and "https://crm.example.com/api/v1" in notes
    assert "never --reuse-values" in notes and "(600 s)" in notes
    assert "PUT /api/v1/support/queues/{id}" in notes


def test_the_umbrella_takes_each_service_chart_by_range() -> None:
    """A service chart released on its own (0.1.1, 0.2.0) is picked up by the umbrella's next
    dependency update; a major version (a values change) is not."""
    from packaging.specifiers import SpecifierSet

    dependencies = yaml.safe_load((HELM_DIR / "crm" / "Chart.yaml").read_text())["dependencies"]
    for dependency in dependencies:
        if dependency["name"] == "crm-lib":
            continue
        allowed = SpecifierSet(",".join(dependency["version"].split()))
        assert {"0.1.0", "0.1.1", "0.2.0"} <= set(allowed.filter(["0.1.0", "0.1.1", "0.2.0", "1.0.0"])), dependency
        assert "1.0.0" not in allowed, dependency


def test_an_httproute_beside_the_ingress_reaches_the_public_listener(kit: DeployKit, charts: Path) -> None:
    """Gateway API: the gateway's and the console's HTTPRoute attach to the named Gateway for their
    hosts and send everything to their Service's http port; without parentRefs it is refused."""
    route_values = [
        "--values", PRODUCTION_VALUES,
        "--set", "gateway.httpRoute.enabled=true",
        "--set", "gateway.httpRoute.parentRefs[0].name=public",
        "--set", "gateway.httpRoute.parentRefs[0].namespace=gateway-system",
        "--set", "gateway.httpRoute.parentRefs[0].sectionName=https",
        "--set", "console.httpRoute.enabled=true",
        "--set", "console.httpRoute.parentRefs[0].name=public",
    ]  # fmt: skip
    rendering = kit.render(*route_values, name="httproute")
    for service, port in (("gateway", 8080), ("console", 8081)):
        route = rendering.get("HTTPRoute", fullname(service))
        assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
        assert route["spec"]["parentRefs"][0]["name"] == "public"
        [rule] = route["spec"]["rules"]
        assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
        assert rule["backendRefs"] == [{"name": fullname(service), "port": port}]
        served = rendering.get("Service", fullname(service))
        assert port in {p["port"] for p in served["spec"]["ports"]}
    assert rendering.get("HTTPRoute", fullname("gateway"))["spec"]["hostnames"] == ["crm.example.com"]
    refused = kit.render_fails("--set", "gateway.httpRoute.enabled=true", "--set", "gateway.httpRoute.parentRefs=null")
    assert "parentRefs" in refused


def test_a_release_whose_pods_could_exhaust_a_database_is_refused(
    kit: DeployKit, production_rendering: Rendering
) -> None:
    """Connection budget: every pod of the largest rollout (the autoscaler's maximum and the surge
    pod) × 2 × dbPoolSize, and the migration, within database.maxConnections — else refused with
    the arithmetic; a pooler's (or a larger database's) limit lets it through. Production values
    fit a database of its own too: 11 × 2 × 4 + 1 = 89 of 97."""
    for service in BACKENDS:
        env = env_of(production_rendering.get("Deployment", fullname(service)))
        assert env["CRM_DB_POOL_SIZE"]["value"] == "4", service
    own = ("--set", "leads.database.cloudnativepg.enabled=false")  # no pooler: the database's own limit
    kit.render("--values", PRODUCTION_VALUES, *own, name="own-database")
    too_many = ("--values", PRODUCTION_VALUES, *own, "--set", "leads.autoscaling.maxReplicas=20")
    error = kit.render_fails(*too_many)
    assert "leads: up to 169 connections to its database (21 pods in a rollout × 2 × dbPoolSize 4" in error
    assert "more than database.maxConnections 97" in error
    kit.render(*too_many, "--set", "leads.database.maxConnections=500", name="pooler")


def test_every_charts_readme_lists_its_values_as_the_schema_has_them(kit: DeployKit) -> None:
    """Each chart's README.md carries the table of its values generated from values.schema.json and
    values.yaml (python deploy/helm/readmes.py): a key added, removed or given another default
    without regenerating it fails here."""
    result = kit.run(sys.executable, HELM_DIR / "readmes.py", "--check", check=False)
    assert result.returncode == 0, result.stdout
    reporting = (HELM_DIR / "reporting" / "README.md").read_text()
    assert '| `reportEngine.memory` | string | `"256MB"` | CRM_REPORT_ENGINE_MEMORY' in reporting
    umbrella = (HELM_DIR / "crm" / "README.md").read_text()
    assert "| `global.components.dbPoolSize` | integer | `5` | CRM_DB_POOL_SIZE (backends)" in umbrella


def test_consumer_lag_scaling_watches_every_durable_consumer_of_the_code(kit: DeployKit, charts: Path) -> None:
    """autoscaling.consumerLag: each backend that consumes events gets a KEDA ScaledObject (the
    CPU target plus one nats-jetstream trigger per durable consumer the code creates), and no HPA
    beside it; the gateway, the console and the backends that consume nothing keep the CPU HPA."""
    from crm_kit.nats_access import CONSUMES, consumer_groups

    endpoint = "nats-headless.nats.svc.cluster.local:8222"
    r = kit.render(
        "--set",
        "global.components.autoscaling.enabled=true",
        "--set",
        "global.components.autoscaling.consumerLag.enabled=true",
        "--set",
        f"global.components.autoscaling.consumerLag.natsMonitoringEndpoint={endpoint}",
    )
    consuming = {s for s in BACKENDS if CONSUMES[s]}
    assert sorted(service_of(o) for o in r.of_kind("ScaledObject")) == sorted(consuming)
    assert sorted(service_of(h) for h in r.of_kind("HorizontalPodAutoscaler")) == sorted(set(SERVICES) - consuming)
    for service in consuming:
        scaled = r.get("ScaledObject", fullname(service))["spec"]
        assert scaled["scaleTargetRef"]["name"] == fullname(service)
        assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 6)
        cpu, *lag = scaled["triggers"]
        assert cpu == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
        assert [t["metadata"]["consumer"] for t in lag] == list(consumer_groups(service, CONSUMES[service]))
        for trigger in lag:
            assert trigger["type"] == "nats-jetstream"
            assert trigger["metadata"]["natsServerMonitoringEndpoint"] == endpoint
            assert (trigger["metadata"]["stream"], trigger["metadata"]["account"]) == ("CRM", "$G")
            assert trigger["metadata"]["lagThreshold"] == "100"
    refused = kit.render_fails(
        "--set",
        "global.components.autoscaling.enabled=true",
        "--set",
        "global.components.autoscaling.consumerLag.enabled=true",
    )
    assert "natsMonitoringEndpoint" in refused


def test_every_service_is_sized_from_its_measured_footprint() -> None:
    """Each chart's own resources cite bench/footprint.py's result, and the memory request covers
    the peak resident memory measured there (the request is what the scheduler reserves)."""
    for service in SERVICES:
        text = (HELM_DIR / service / "values.yaml").read_text()
        values = yaml.safe_load(text)
        assert "resources" in values, f"{service} has no resources of its own"
        cited = re.search(r"bench/(results/footprint-[\w.-]+\.json)", text) or re.search(r"bench/footprint\.py", text)
        assert cited, f"{service}'s resources cite no measurement"
        result = sorted((ROOT / "bench/results").glob("footprint-*.json"))[-1]
        peak_mb = json.loads(result.read_text())["processes"][service]["rss_peak_mb"]
        request = values["resources"]["requests"]["memory"]
        assert request.endswith("Mi") and int(request[:-2]) * 1.048576 >= peak_mb, (service, request, peak_mb)


def test_the_databases_chart_makes_a_cluster_pooler_and_backup_per_backend(kit: DeployKit) -> None:
    """crm-databases: per backend a CloudNativePG Cluster <system>-<service>-db (database and owner
    named after the service), its PgBouncer Pooler in transaction mode and, with backup on, a
    ScheduledBackup and the Cluster's object store; lint --strict, and refused without a store."""
    chart = HELM_DIR / "crm-databases"
    helm = kit.tool("helm")
    kit.run(helm, "lint", "--strict", chart)
    backup = ["--set", "backup.enabled=true", "--set", "backup.destinationPath=s3://backups/crm"]
    backup += ["--set", "backup.s3CredentialsSecret=crm-backup-s3"]
    text = kit.run(helm, "template", "dbs", chart, "-n", "crm", *backup).stdout
    objects = [o for o in yaml.safe_load_all(text) if o]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    assert [c["metadata"]["name"] for c in by_kind["Cluster"]] == [f"crm-{s}-db" for s in BACKENDS]
    for cluster in by_kind["Cluster"]:
        service = service_of(cluster)
        assert cluster["spec"]["bootstrap"]["initdb"] == {"database": service, "owner": service}
        assert cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"] == "s3://backups/crm"
    poolers = {p["spec"]["cluster"]["name"]: p for p in by_kind["Pooler"]}
    assert sorted(poolers) == sorted(f"crm-{s}-db" for s in BACKENDS)
    for name, pooler in poolers.items():
        assert pooler["metadata"]["name"] == f"{name}-pooler"
        assert (pooler["spec"]["type"], pooler["spec"]["pgbouncer"]["poolMode"]) == ("rw", "transaction")
    assert sorted(b["spec"]["cluster"]["name"] for b in by_kind["ScheduledBackup"]) == sorted(poolers)
    refused = kit.run(helm, "template", "dbs", chart, "--set", "backup.enabled=true", check=False)
    assert refused.returncode != 0 and "backup.destinationPath is required" in refused.stderr
    assert kit.run(helm, "template", "dbs", chart, "--kube-version", "1.29.0", check=False).returncode != 0


def test_a_service_reads_the_generated_database_secret_through_the_pooler(kit: DeployKit, charts: Path) -> None:
    """database.cloudnativepg: the pods (and the migration) take CloudNativePG's generated URL
    (<fullname>-db-app, key uri) and the pooler's host, may reach only the pooler's pods on 5432,
    and the pooler's client limit is the connection budget."""
    args = []
    for service in BACKENDS:
        args += ["--set", f"{service}.database.cloudnativepg.enabled=true"]
    # Past the 97 connections of a database of its own, within the pooler's 1,000.
    args += ["--set", "leads.autoscaling.enabled=true", "--set", "leads.autoscaling.maxReplicas=30"]
    r = kit.render(*args)
    for service in BACKENDS:
        name = fullname(service)
        for workload in (r.get("Deployment", name), r.get("Job", f"{name}-migration")):
            env = env_of(workload)
            assert env["CRM_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": f"{name}-db-app", "key": "uri"}
            assert env["CRM_DATABASE_HOST"]["value"] == f"{name}-db-pooler:5432"
        peers = rule_peers(r, server_labels(r, service), "egress", 5432)
        assert peers == [{"podSelector": {"matchLabels": {"cnpg.io/poolerName": f"{name}-db-pooler"}}}]
    refused = kit.render_fails(*args, "--set", "leads.database.cloudnativepg.poolerMaxClientConnections=100")
    assert "more than database.maxConnections 100" in refused
