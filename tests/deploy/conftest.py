"""The deploy layer (`-m deploy`): the Helm charts and the images, checked with the real tools
(helm, kubernetes-validate, checkov, hadolint) that scripts/deploy-tools.sh installs. A missing
tool fails the test with that instruction; nothing is skipped.

Shared through fixtures (test modules cannot import each other under --import-mode=importlib):
`kit` (tools, commands, `helm template` of the umbrella), `charts` (dependencies packed once),
`default_rendering`, `production_rendering` and `rendering` (both), `deal_copy_rendering`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HELM_DIR = ROOT / "deploy" / "helm"
UMBRELLA = HELM_DIR / "crm"
PRODUCTION_VALUES = UMBRELLA / "values-production.yaml"
SERVICES = ("gateway", "console", "leads", "sales", "customers", "orders", "support", "notifications", "reporting")
RELEASE = "crm"
NAMESPACE = "crm"
KUBERNETES = "1.33"
INSTALL_HINT = "run scripts/deploy-tools.sh (the Makefile runs it) to install the deploy tools"


@dataclass
class Rendering:
    """`helm template` of the umbrella chart: the text and its objects."""

    name: str
    text: str
    objects: list[dict[str, Any]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def one(self, kind: str) -> dict[str, Any]:
        """The only object of a kind."""
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        """Deployments and Jobs: everything that runs a pod."""
        return self.of_kind("Deployment") + self.of_kind("Job")


class DeployKit:
    def tool(self, name: str) -> Path:
        """A deploy tool from .tools/bin, the project's virtualenv or PATH; missing → the test fails."""
        for candidate in (ROOT / ".tools" / "bin" / name, ROOT / ".venv" / "bin" / name):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
        return Path(found)

    def run(self, *args: str | Path, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, **kwargs)
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}", pytrace=False
            )
        return result

    def kubernetes_validate(self, path: Path) -> None:
        """kubernetes-validate --strict of the manifests in path against KUBERNETES."""
        result = self.run(self.tool("kubernetes-validate"), "--strict", "-k", KUBERNETES, "--quiet", path, check=False)
        out = result.stdout + result.stderr
        assert result.returncode == 0 and "ERROR" not in out and "FATAL" not in out, out
        # Only the Prometheus Operator's kinds have no schema in kubernetes-validate.
        for line in out.splitlines():
            assert not line.strip() or "with api version monitoring.coreos.com/v1" in line, line

    def checkov(self, path: Path) -> list[dict[str, Any]]:
        """checkov's reports (one per framework) on the manifests in path, with
        deploy/helm/.checkov.yaml (its skips carry their reasons)."""
        result = self.run(
            self.tool("checkov"),
            "--config-file",
            HELM_DIR / ".checkov.yaml",
            "--skip-download",
            "--output",
            "json",
            "--file",
            path,
            check=False,
            env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
        )
        assert result.returncode in (0, 1), result.stderr
        report = json.loads(result.stdout)
        return report if isinstance(report, list) else [report]

    @staticmethod
    def checkov_failures(reports: list[dict[str, Any]]) -> list[str]:
        return [
            f"{c['check_id']} {c['check_name']} — {c['resource']}"
            for r in reports
            for c in r["results"]["failed_checks"]
        ]

    def _template(self, *args: str | Path, check: bool) -> subprocess.CompletedProcess[str]:
        return self.run(
            self.tool("helm"),
            "template",
            RELEASE,
            UMBRELLA,
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBERNETES,
            *args,
            check=check,
        )

    def template(self, release: str, chart: Path, namespace: str, *args: str | Path, name: str) -> Rendering:
        """`helm template` of any chart of deploy/helm (its dependencies packed by `charts`)."""
        command = ["template", release, chart, "--namespace", namespace, "--kube-version", KUBERNETES, *args]
        text = self.run(self.tool("helm"), *command).stdout
        return Rendering(name, text, [o for o in yaml.safe_load_all(text) if o])

    def render(self, *args: str | Path, name: str = "custom") -> Rendering:
        """`helm template` of the umbrella with these extra arguments (--values, --set…)."""
        return self.template(RELEASE, UMBRELLA, NAMESPACE, *args, name=name)

    def render_fails(self, *args: str | Path) -> str:
        """`helm template` that must be refused; its error output."""
        result = self._template(*args, check=False)
        assert result.returncode != 0, f"helm template {' '.join(map(str, args))} was expected to fail"
        return result.stderr


@pytest.fixture(scope="session")
def kit() -> DeployKit:
    return DeployKit()


@pytest.fixture(scope="session")
def charts(kit: DeployKit) -> Path:
    """Packs every chart's file:// dependencies into its charts/ (git-ignored): the service charts
    first, then the umbrella, which packs the service charts as they are now, and crm-nats (the
    vendored NATS chart)."""
    helm = kit.tool("helm")
    for chart in (*SERVICES, "crm", "crm-nats"):
        kit.run(helm, "dependency", "build", "--skip-refresh", HELM_DIR / chart)
    return HELM_DIR


@pytest.fixture(scope="session")
def default_rendering(kit: DeployKit, charts: Path) -> Rendering:
    return kit.render(name="default")


@pytest.fixture(scope="session")
def production_rendering(kit: DeployKit, charts: Path) -> Rendering:
    return kit.render("--values", PRODUCTION_VALUES, name="production")


@pytest.fixture(scope="session")
def deal_copy_rendering(kit: DeployKit, charts: Path) -> Rendering:
    """Production values as in the upgrade to sales: leads' record-legacy-conversions Job and sales'
    deal copy Job switched on (both are off by default)."""
    return kit.render(
        "--values",
        PRODUCTION_VALUES,
        "--set",
        "leads.recordLegacyConversions.enabled=true",
        "--set",
        "sales.copyDealsFromLeads.enabled=true",
        name="deal-copy",
    )


@pytest.fixture(scope="session", params=["default", "production"])
def rendering(request: pytest.FixtureRequest) -> Rendering:
    chosen: Rendering = request.getfixturevalue(f"{request.param}_rendering")
    return chosen
