"""The service images (`make test-images`): each one built by `make images` from a base made of
Debian's own packages, checked for what it holds, and then the whole system run from them.

No container runtime starts here (crun and runc cannot set rlimits on these machines), so each
image's filesystem runs under bubblewrap: read-only root, uid/gid 10001, a private /tmp, the
image's own environment, entrypoint and working directory (crm_devstack.images)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_devstack import images
from crm_devstack.stack import BACKEND_SERVICES, Ports, Stack
from crm_kit.testing import eventually

# The first test waits for every image to be built (about 6 minutes cold), past the suite's 300 s.
pytestmark = [pytest.mark.images, pytest.mark.timeout(1800)]

# Distributions only a developer or a test needs: none may be in an image.
DEV_DISTRIBUTIONS = {
    "pytest",
    "pytest-asyncio",
    "pytest-timeout",
    "hypothesis",
    "ruff",
    "mypy",
    "import-linter",
    "testcontainers",
    "playwright",
    "crm-devstack",
    "crm-admin",
    "schemathesis",
    "uv",
    "pip",
}


@pytest.fixture(scope="session")
def built() -> images.BuildResult:
    if missing := images.missing_tools():
        pytest.fail(f"missing {', '.join(missing)}: scripts/image-tools.sh installs them (make test-images runs it)")
    return images.build_all()


@pytest.fixture(scope="session")
def roots(built: images.BuildResult) -> Iterator[dict[str, Path]]:
    with images.ImageLauncher({s: i.reference for s, i in built.images.items()}, binds=[]) as launcher:
        yield {service: launcher.root(service) for service in built.images}


# Every module of the service's package imports inside its image: a dependency the service's own
# pyproject.toml forgets (present in a developer's workspace only), or a system library a wheel
# loads at import (WeasyPrint's Pango), fails here and not in a cluster.
IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in names:
    if not name.endswith(".__main__"):
        importlib.import_module(name)
print(len(names))
"""


def site_packages(root: Path) -> Path:
    (found,) = root.glob("app/.venv/lib/python3*/site-packages")
    return found


@pytest.mark.parametrize("service", images.SERVICES)
def test_image_config(built: images.BuildResult, service: str) -> None:
    """Runs as the charts expect (uid 10001, `python -m crm_<name> serve`, production settings) and
    says where it comes from (OCI labels: this commit, the release's version, the source)."""
    config = images.inspect(built.images[service].reference)["Config"]
    assert config["User"] == "10001"
    assert config["Entrypoint"] == ["crm-service"] and config["Cmd"] == ["serve"]
    environment = "CRM_CONSOLE_ENVIRONMENT" if service == "console" else "CRM_ENVIRONMENT"
    assert f"{environment}=production" in config["Env"]
    ports = {"gateway": {"8080/tcp", "9100/tcp"}, "console": {"8081/tcp", "9108/tcp"}}
    assert set(config["ExposedPorts"]) == ports.get(service, {"50051/tcp", "9100/tcp"})
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == images.revision()
    assert labels["org.opencontainers.image.version"] == images.app_version()
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.title"] == f"crm-{service}"


@pytest.mark.parametrize("service", images.SERVICES)
def test_image_holds_the_service_and_nothing_else(roots: dict[str, Path], service: str) -> None:
    """Built on the Debian base (its /usr/bin/python3, no /usr/local Python); a non-editable install
    (the package's code, migrations included, is in site-packages, and no source tree is);
    no tests and no development tools."""
    root = roots[service]
    assert "VERSION_CODENAME=bookworm" in (root / "etc/os-release").read_text()
    assert os.readlink(root / "app/.venv/bin/python") == "/usr/bin/python3"
    assert not (root / "usr/local/bin/python3").exists() and not (root / "src").exists()
    packages = site_packages(root)
    assert (packages / f"crm_{service}" / "main.py").is_file()
    assert os.readlink(root / "app/.venv/bin/crm-service") == f"crm-{service}"
    assert not list(packages.glob("*.pth")), "an editable install points outside the image"
    if service in BACKEND_SERVICES:
        assert list((packages / f"crm_{service}/migrations/versions").glob("*.py"))
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in packages.glob("*.dist-info")}
    assert not installed & DEV_DISTRIBUTIONS
    assert not [p for p in packages.glob("crm*/**/tests") if p.is_dir()]
    assert not list(packages.glob("crm*/**/test_*.py"))


@pytest.mark.parametrize("service", images.SERVICES)
def test_every_module_imports_inside_the_image(built: images.BuildResult, roots: dict[str, Path], service: str) -> None:
    config = images.inspect(built.images[service].reference)["Config"]
    argv = ["python", "-c", IMPORT_EVERY_MODULE, f"crm_{service}"]
    result = images.run_in_image(roots[service], config, argv)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) >= 3


@pytest.mark.parametrize("service", images.SERVICES)
def test_the_runtime_user_cannot_change_the_code(roots: dict[str, Path], service: str) -> None:
    """Everything under /app belongs to root and nothing there is writable by group or others (the
    process runs as uid 10001 with a read-only root; this holds with a writable one too)."""
    app = roots[service] / "app"
    wrong = []
    for path in [app, *app.rglob("*")]:
        info = path.lstat()
        if (info.st_uid, info.st_gid) != (0, 0) or (not path.is_symlink() and info.st_mode & 0o022):
            wrong.append(f"{path.relative_to(app)} {info.st_uid}:{info.st_gid} {oct(info.st_mode)}")
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("service", images.SERVICES)
def test_sbom_lists_what_the_image_holds(built: images.BuildResult, roots: dict[str, Path], service: str) -> None:
    image = built.images[service]
    document = json.loads(image.sbom_path.read_text())
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.5")
    assert document["metadata"]["component"]["name"] == f"crm-{service}"
    purls = {c["purl"].split("?")[0] for c in document["components"]}
    assert f"pkg:pypi/crm-{service}@{images.app_version()}" in purls
    assert any(p.startswith("pkg:deb/debian/python3.11@") for p in purls)
    assert any(p.startswith("pkg:deb/debian/ca-certificates@") for p in purls)
    root = roots[service]
    dists = len(list(site_packages(root).glob("*.dist-info")))
    dpkg = (root / "var/lib/dpkg/status").read_text().count("Status: install ok installed")
    assert (image.python_distributions, image.debian_packages) == (dists, dpkg)
    report = json.loads((image.sbom_path.parent / "report.json").read_text())
    assert report["images"][service]["size_bytes"] == image.size_bytes > 0


# ------------------------------------------------------------------ the whole system from its images


@pytest.fixture(scope="module")
def image_stack(built: images.BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every CRM process, the migrations and the NATS provisioning run from the images (PostgreSQL,
    NATS and the SMS and mail fakes are the stack's own, as in the e2e layer)."""
    state = Path(tmp_path_factory.mktemp("crm-images"))
    references = {service: image.reference for service, image in built.images.items()}
    # The state directory holds what the stack hands its processes as files (the development
    # issuer's key, the support service's attachments): mounted at the same path.
    with images.ImageLauncher(references, binds=[state]) as launcher:
        system = Stack(state, Ports.free(), launcher=launcher)
        asyncio.run(system.start())
        try:
            yield system
        finally:
            asyncio.run(system.stop())


@pytest.fixture
async def api(image_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=image_stack.gateway_url, timeout=30, headers=image_stack.auth_headers()
    ) as client:
        yield client


def test_every_process_runs_inside_its_image(image_stack: Stack) -> None:
    """Each service is its image's own interpreter and code under bubblewrap (read-only root: the
    mounted image), uid 10001, not the test's Python."""
    launcher = image_stack.launcher
    assert isinstance(launcher, images.ImageLauncher)
    for name in (*BACKEND_SERVICES, "gateway", "console"):
        command = list(image_stack.processes[name].args)
        bwrap = command.index(shutil.which("bwrap"))
        assert command[bwrap + 1 : bwrap + 4] == ["--ro-bind", str(launcher.root(name)), "/"], command
        assert command[command.index("--uid") + 1] == "10001"
        assert command[-3:] == ["--", "crm-service", "serve"], command  # the image's entrypoint
        assert image_stack.processes[name].poll() is None


async def test_a_radio_lead_to_one_sms_from_the_images(api: httpx.AsyncClient, image_stack: Stack) -> None:
    """Capture, routing, a won deal, its order, the shipment and exactly one SMS: every service and
    every event path, from the images."""
    phone = f"052-{uuid.uuid4().int % 10_000_000:07d}"
    body = {"full_name": "רונית אברהם", "phone_number": phone, "source": "radio", "request_id": str(uuid.uuid4())}
    lead = await api.post("/api/v1/leads", json={**body, "locale": "he-IL"})
    assert lead.status_code == 201, lead.text
    assert lead.json()["assignment"]["team_id"] == "team-media"
    deal = await api.post(f"/api/v1/leads/{lead.json()['id']}/convert", json={"title": "סלון חדש"})
    assert deal.status_code == 201, deal.text
    items = [{"sku": "SOFA-3", "quantity": 1, "unit_price": {"amount_minor": 459900, "currency_code": "ILS"}}]
    closed = await api.post(f"/api/v1/deals/{deal.json()['id']}/close", json={"outcome": "won", "items": items})
    assert closed.status_code == 200, closed.text

    async def the_order() -> list[dict[str, Any]]:
        return list((await api.get("/api/v1/orders", params={"deal_id": deal.json()["id"]})).json()["orders"])

    (order,) = await eventually(the_order, timeout=60)
    eta = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    shipped = await api.post(
        f"/api/v1/orders/{order['id']}/ship",
        json={"carrier": "דואר ישראל", "tracking_number": "RR123456789IL", "estimated_delivery_date": eta},
    )
    assert shipped.status_code == 200, shipped.text
    e164 = lead.json()["phone_number"]

    async def messages() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=image_stack.sms_url) as sms:
            return [m for m in (await sms.get("/messages")).json() if m["to"] == e164]

    sent = await eventually(messages, timeout=60)
    assert len(sent) == 1 and "ההזמנה" in sent[0]["body"]


async def test_the_sales_image_renders_a_hebrew_quote_pdf(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """The sales image's own Pango, HarfBuzz and Noto faces (the Dockerfile installs them for it) lay out
    and embed the Hebrew quote."""
    product = await api.post(
        "/api/v1/products",
        json={"sku": f"IMG-{uuid.uuid4().hex[:8]}", "names": {"he": "כיסא ארגונומי"}, "unit": "unit"},
    )
    assert product.status_code == 201, product.text
    since = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    item = {"product_id": product.json()["id"], "unit_price": {"amount_minor": 129_900}}
    price_list = await api.post(
        "/api/v1/price-lists",
        json={
            "name": f"מחירון {uuid.uuid4().hex[:6]}",
            "currency_code": "ILS",
            "country_code": "IL",
            "valid_from": since,
            "items": [item],
        },
    )
    assert price_list.status_code == 201, price_list.text
    phone = f"052-{uuid.uuid4().int % 10_000_000:07d}"
    lead = await api.post(
        "/api/v1/leads",
        json={"full_name": "דנה לוי", "phone_number": phone, "source": "referral", "request_id": str(uuid.uuid4())},
    )
    assert lead.status_code == 201, lead.text
    deal = await api.post(f"/api/v1/leads/{lead.json()['id']}/convert", json={"title": "ריהוט"})
    assert deal.status_code == 201, deal.text
    quote = await api.post(
        f"/api/v1/deals/{deal.json()['id']}/quotes",
        json={"price_list_id": price_list.json()["id"], "lines": [{"product_id": product.json()["id"], "quantity": 2}]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert quote.status_code == 201, quote.text
    pdf = await api.get(f"/api/v1/quotes/{quote.json()['id']}.pdf")
    assert pdf.status_code == 200, pdf.text
    (tmp_path / "quote.pdf").write_bytes(pdf.content)
    fonts, text = poppler(tmp_path / "quote.pdf")
    assert re.search(r"\+Noto-?Sans-?Hebrew\s.*\syes\s", fonts), fonts  # embedded
    assert "כיסא ארגונומי" in text


def poppler(pdf: Path) -> tuple[str, str]:
    """The PDF's embedded fonts (pdffonts) and its text layer (pdftotext)."""
    fonts = subprocess.run(["pdffonts", pdf], capture_output=True, check=True, text=True).stdout
    text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, check=True, text=True).stdout
    return fonts, text
