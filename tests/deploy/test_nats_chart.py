"""The crm-nats chart (deploy/helm/crm-nats): the official NATS chart, vendored, set up as the CRM
runs it. Its objects are checked as rendered, and the server configuration it renders is run by
a real nats-server: the CRM's provisioner creates the stream through it, and a service's user is
refused what the permission table refuses."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import re
import ssl
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import nats
import pytest
import yaml
from nats.errors import Error as NatsClientError

from crm_devstack._util import free_ports, port_accepts, stop_child
from crm_devstack.nats import nats_server_binary
from crm_kit import nats_access
from crm_kit.bus import provision_streams
from crm_kit.settings import ServiceSettings
from crm_kit.testing_tls import issue, make_ca, write

if TYPE_CHECKING:
    from conftest import DeployKit, Rendering

pytestmark = pytest.mark.deploy

HELM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "helm"
KUBERNETES = "1.33"
CHART = HELM_DIR / "crm-nats"
VENDOR = HELM_DIR / "vendor" / "nats"


def render(kit: DeployKit, *args: str) -> Rendering:
    """`helm template` of crm-nats in the namespace the guide installs it into."""
    return kit.template("crm-nats", CHART, "nats", *args, name="crm-nats")


@pytest.fixture(scope="module")
def nats_rendering(kit: DeployKit, charts: Path) -> Rendering:
    """crm-nats with its own values, rendered once for the tests that only read it."""
    return render(kit)


def test_the_values_carry_every_crm_identity_as_the_chassis_generates_them() -> None:
    """The users and their password variables are `python -m crm_kit.nats_access helm-values`'s:
    a new consumer or service changes the table, and this copy must follow."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())["nats"]
    generated = nats_access.helm_values()
    assert values["config"]["merge"] == generated["config"]["merge"], "run python -m crm_kit.nats_access helm-values"
    env = {k: v for k, v in values["container"]["env"].items() if k != "GOMEMLIMIT"}
    assert env == generated["container"]["env"]
    users = [u["user"] for u in values["config"]["merge"]["authorization"]["users"]]
    assert users == [*nats_access.IDENTITIES, nats_access.OPERATOR]


def test_the_vendored_chart_is_the_official_one_unchanged() -> None:
    """deploy/helm/vendor/nats is nats-io/k8s' chart at the version the dependency names, with its
    licence; no file of ours inside it."""
    meta = yaml.safe_load((VENDOR / "Chart.yaml").read_text())
    wanted = yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    assert wanted == [{"name": "nats", "version": meta["version"], "repository": "file://../vendor/nats"}]
    assert meta["home"] == "http://github.com/nats-io/k8s" and "Apache License" in (VENDOR / "LICENSE").read_text()
    lock = yaml.safe_load((CHART / "Chart.lock").read_text())
    assert [(d["name"], d["version"]) for d in lock["dependencies"]] == [("nats", meta["version"])]
    # Unchanged since it was copied: the digest vendor/README.md records (upstream's, without test/).
    recorded = re.search(r"^\s+nats ([0-9a-f]{64})$", (VENDOR.parent / "README.md").read_text(), re.M)
    assert recorded, "vendor/README.md records no digest for nats"
    digest = hashlib.sha256()
    for path in sorted(p for p in VENDOR.rglob("*") if p.is_file() and p.name != "LICENSE"):
        digest.update(path.relative_to(VENDOR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    assert digest.hexdigest() == recorded.group(1), "deploy/helm/vendor/nats differs from the copy recorded"


def test_three_jetstream_servers_on_separate_nodes_restricted(
    kit: DeployKit, nats_rendering: Rendering, tmp_path: Path
) -> None:
    """Three servers spread over nodes, JetStream on a 20 Gi volume each, client TLS, every
    identity's password from its own Secret, the Pod Security Standard "restricted", no service
    account token, no toolbox; lint --strict and kubernetes-validate --strict pass."""
    kit.run(kit.tool("helm"), "lint", "--strict", "--kube-version", KUBERNETES, CHART)
    objects = nats_rendering.objects
    path = tmp_path / "nats.yaml"
    path.write_text(nats_rendering.text)
    kit.kubernetes_validate(path)
    assert sorted(o["kind"] for o in objects) == [
        "ConfigMap",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "Service",
        "StatefulSet",
    ]
    statefulset = nats_rendering.one("StatefulSet")
    assert statefulset["metadata"]["name"] == "nats" and statefulset["spec"]["replicas"] == 3
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    pod = statefulset["spec"]["template"]["spec"]
    [spread] = pod["topologySpreadConstraints"]
    assert (spread["topologyKey"], spread["whenUnsatisfiable"]) == ("kubernetes.io/hostname", "DoNotSchedule")
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
    [server] = [c for c in pod["containers"] if c["name"] == "nats"]
    assert server["resources"]["requests"] == server["resources"]["limits"]
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in server["env"] if e["name"].startswith("CRM_NATS_PASSWORD_")
    }
    assert secrets == {
        nats_access.password_variable(i): {"name": f"crm-{i}-nats", "key": "password"} for i in nats_access.IDENTITIES
    }
    [operator] = [e for e in server["env"] if e["name"] == nats_access.OPERATOR_PASSWORD_VARIABLE]
    assert operator["valueFrom"]["secretKeyRef"] == {"name": "nats-admin", "key": "password"}
    # Guaranteed QoS: every container's requests equal its limits.
    assert all(c["resources"]["requests"] == c["resources"]["limits"] for c in pod["containers"])
    config = nats_rendering.one("ConfigMap")["data"]["nats.conf"]
    assert '"store_dir": "/data"' in config and '"cert_file": "/etc/nats-certs/nats/tls.crt"' in config
    # JetStream stops below the volume's size rather than at a full disk.
    assert '"max_file_store": 18Gi,' in config
    # The variables stay variables: no password in the ConfigMap.
    for identity in nats_access.IDENTITIES:
        assert f'"password": ${nats_access.password_variable(identity)},' in config


def test_checkov_finds_nothing_in_what_it_installs(kit: DeployKit, nats_rendering: Rendering, tmp_path: Path) -> None:
    """checkov with the CRM charts' configuration, on the objects as `helm install -n nats` creates
    them (the official chart leaves the namespace to Helm). Two skips sit on the StatefulSet itself,
    with their reason: the reloader sidecar has nothing to probe."""
    objects = copy.deepcopy(nats_rendering.objects)
    for o in objects:
        o["metadata"].setdefault("namespace", "nats")
    path = tmp_path / "crm-nats.yaml"
    path.write_text("\n---\n".join(yaml.safe_dump(o) for o in objects))
    reports = kit.checkov(path)
    kubernetes = next(r for r in reports if r["check_type"] == "kubernetes")["summary"]
    assert kubernetes["passed"] > 50 and kubernetes["parsing_errors"] == 0, kubernetes
    failures = kit.checkov_failures(reports)
    assert not failures, "\n".join(failures)


def test_only_the_crm_pods_reach_the_client_port(kit: DeployKit, nats_rendering: Rendering) -> None:
    """Default deny for the servers, then clients (4222) only from the CRM's pods of the client
    namespaces, routes (6222) only between the servers, DNS, and 8222 only to monitoringPeers."""
    pods = nats_rendering.one("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    policy = nats_rendering.one("NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    # It selects the servers' pods as the official chart labels them.
    servers = policy["podSelector"]["matchLabels"]
    assert servers.items() <= pods.items() and servers["app.kubernetes.io/instance"] == "crm-nats"
    clients, routes = policy["ingress"]
    assert clients == {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "crm"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "crm"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 4222}],
    }
    assert routes["ports"] == [{"protocol": "TCP", "port": 6222}]
    assert routes["from"] == [{"podSelector": {"matchLabels": servers}}]
    assert [sorted(p["port"] for p in rule["ports"]) for rule in policy["egress"]] == [[6222], [53, 53]]
    keda = '[{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}]'
    monitored = render(kit, "--set-json", f"networkPolicy.monitoringPeers={keda}").one("NetworkPolicy")["spec"]
    assert monitored["ingress"][2] == {"from": json.loads(keda), "ports": [{"protocol": "TCP", "port": 8222}]}


def test_the_production_values_point_at_what_crm_nats_installs(nats_rendering: Rendering) -> None:
    """values-production.yaml's NATS address is crm-nats' client Service in the documented
    namespace (nats), and the services' egress peers select its servers' pods there."""
    services = nats_rendering.of_kind("Service")
    [client] = [o for o in services if o["spec"].get("clusterIP") != "None"]
    pods = nats_rendering.one("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    production = yaml.safe_load((HELM_DIR / "crm" / "values-production.yaml").read_text())
    nats_values = production["global"]["components"]["nats"]
    port = next(p["port"] for p in client["spec"]["ports"] if p["name"] == "nats")
    assert nats_values["url"] == f"nats://{client['metadata']['name']}.nats.svc.cluster.local:{port}"
    [peer] = nats_values["networkPeers"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "nats"}}
    assert peer["podSelector"]["matchLabels"].items() <= pods.items()


def local_config(config: str, tmp_path: Path, ports: list[int]) -> str:
    """The rendered nats.conf with the pod's paths and ports moved into tmp_path and free ports."""
    client, monitor, _ = ports
    (tmp_path / "data").mkdir(exist_ok=True)
    replaced = (
        config.replace('"/data"', json.dumps(str(tmp_path / "data")))
        .replace("/etc/nats-certs/nats", str(tmp_path))
        .replace("/var/run/nats", str(tmp_path))
    )
    replaced = re.sub(r'"port": 4222,', f'"port": {client},', replaced)
    replaced = re.sub(r'"http_port": 8222,', f'"http_port": {monitor},', replaced)
    return re.sub(r'"max_file_store": \d+Gi,', '"max_file_store": 1Gi,', replaced)


def test_a_nats_server_runs_the_rendered_config_with_the_crm_users(
    kit: DeployKit, nats_rendering: Rendering, tmp_path: Path
) -> None:
    """The chart's clustered config passes `nats-server -t`; a single-server rendering (cluster
    off, all else the same) runs: the provisioner creates the CRM stream and the consumers over
    TLS with the password from its variable, the leads user publishes its own events and is
    refused sales', a wrong password is refused, and the operator's user removes a durable."""
    ca = make_ca("nats test CA")
    cert, key = write(tmp_path, "server", issue(ca, "nats", server=True, names=["nats"]))
    os.rename(cert, tmp_path / "tls.crt")
    os.rename(key, tmp_path / "tls.key")
    ca_file, _ = write(tmp_path, "ca", ca)
    passwords = {nats_access.password_variable(i): f"pw-{i}-{os.getpid()}" for i in nats_access.IDENTITIES}
    passwords[nats_access.OPERATOR_PASSWORD_VARIABLE] = f"pw-operator-{os.getpid()}"
    env = {**os.environ, **passwords, "SERVER_NAME": "nats-0"}
    binary = str(nats_server_binary())

    clustered = nats_rendering.one("ConfigMap")["data"]["nats.conf"]
    path = tmp_path / "clustered.conf"
    path.write_text(local_config(clustered, tmp_path, free_ports(3)))
    checked = subprocess.run([binary, "-t", "-c", str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    single = render(kit, "--set", "nats.config.cluster.enabled=false").one("ConfigMap")["data"]["nats.conf"]
    ports = free_ports(3)
    path = tmp_path / "single.conf"
    path.write_text(local_config(single, tmp_path, ports))
    log = (tmp_path / "nats.log").open("wb")
    server = subprocess.Popen([binary, "-c", str(path)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if port_accepts(ports[0]) or server.poll() is not None:
                break
            asyncio.run(asyncio.sleep(0.1))
        assert port_accepts(ports[0]), (tmp_path / "nats.log").read_text()
        asyncio.run(_provision_and_publish(f"tls://localhost:{ports[0]}", ca_file, passwords))
    finally:
        stop_child(server)
        log.close()


async def _provision_and_publish(url: str, ca_file: str, passwords: dict[str, str]) -> None:
    def settings(identity: str) -> ServiceSettings:
        return ServiceSettings(
            service_name=identity,
            nats_url=url,
            nats_user=identity,
            nats_password=passwords[nats_access.password_variable(identity)],
            nats_tls_ca_file=ca_file,
        )

    await provision_streams(settings(nats_access.PROVISIONER))
    errors: list[Exception] = []

    async def on_error(error: Exception) -> None:  # a permission violation arrives asynchronously
        errors.append(error)

    leads = await nats_access.connect(settings("leads"), allow_reconnect=False, error_cb=on_error)
    try:
        ack = await leads.jetstream().publish("crm.leads.lead_captured", b"{}")
        assert ack.stream == nats_access.STREAM
        await leads.publish("crm.sales.deal_closed", b"{}")
        await leads.flush()
        for _ in range(50):
            if errors:
                break
            await asyncio.sleep(0.05)
        assert any("permissions violation" in str(e).lower() for e in errors), errors
    finally:
        await leads.close()
    tls = ssl.create_default_context(cafile=ca_file)
    with pytest.raises(NatsClientError, match=r"(?i)authorization"):
        await nats.connect(url, user="leads", password="wrong", tls=tls, allow_reconnect=False, connect_timeout=2)
    # The operator's user does what no CRM identity may: remove a durable a release replaced.
    durable = nats_access.group_durable("sales", "leads")
    admin = await nats.connect(
        url,
        user=nats_access.OPERATOR,
        password=passwords[nats_access.OPERATOR_PASSWORD_VARIABLE],
        tls=tls,
        allow_reconnect=False,
    )
    try:
        assert await admin.jetstream().delete_consumer(nats_access.STREAM, durable)
        names = [c.name for c in await admin.jetstream().consumers_info(nats_access.STREAM)]
        assert durable not in names and nats_access.group_durable("customers", "leads") in names
    finally:
        await admin.close()
