"""The service images, built and run on a machine with no container daemon and no registry.

* The base: Debian's own packages (``mmdebstrap --variant=minbase``, python3 and ca-certificates),
  imported into podman's store; users build ``FROM`` the usual slim Python image instead.
* uv for the build stage: the pinned wheel from PyPI (its digest checked), as a one-file image in
  the place of ``ghcr.io/astral-sh/uv``.
* Each service: the one ``Dockerfile`` with ``--build-arg SERVICE=<name>``, ``podman build --isolation chroot``,
  OCI labels (source, revision, version), then a CycloneDX SBOM of what the image holds (Debian
  packages and Python distributions) and its size (``report.json``).
* Running one: the OCI runtimes cannot start a container here (crun and runc fail to set rlimits),
  so `ImageLauncher` runs the image's filesystem with bubblewrap: read-only root, uid/gid 10001,
  a private /tmp, the image's own environment, entrypoint and working directory.

``python -m crm_devstack.images build`` is ``make images``; the images test layer uses the same
functions, then runs the whole system from the images (tests/images).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from crm_devstack.stack import BACKEND_SERVICES, CONSOLE, GATEWAY

ROOT = Path(__file__).resolve().parents[4]
SERVICES: tuple[str, ...] = (*BACKEND_SERVICES, GATEWAY, CONSOLE)
BASE_IMAGE = "localhost/crm-base:bookworm"
SUITE = "bookworm"
# Documentation, manual pages and translations are not read by a service: left out of the base
# (the copyright files stay, for the licences).
BASE_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
RUNTIME_UID = 10001
DOCKERFILE = ROOT / "Dockerfile"
# The ports each image declares (EXPOSE): the gateway's and the console's HTTP and metrics ports,
# else a backend's gRPC and metrics ports.
PORTS = {"gateway": "8080 9100", "console": "8081 9108"}
DEFAULT_OUT = ROOT / ".state" / "images"


class ImageError(RuntimeError):
    """A step of building or running an image failed; the message says which and why."""


def _run(command: Sequence[str], *, what: str, timeout: float = 1800) -> str:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise ImageError(f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{tail}")
    return result.stdout


def missing_tools() -> list[str]:
    """The commands building and running images need that this machine lacks (Debian packages of
    the same names; `scripts/image-tools.sh` installs them)."""
    return [tool for tool in ("mmdebstrap", "podman", "bwrap") if shutil.which(tool) is None]


def image_exists(reference: str) -> bool:
    return subprocess.run(["podman", "image", "exists", reference], check=False).returncode == 0


def app_version() -> str:
    """The release's version: the umbrella chart's appVersion (an image's default tag)."""
    match = re.search(r'^appVersion:\s*"?([^"\s]+)"?', (ROOT / "deploy/helm/crm/Chart.yaml").read_text(), re.M)
    if match is None:
        raise ImageError("deploy/helm/crm/Chart.yaml has no appVersion")
    return match.group(1)


def revision() -> str:
    """The commit the images are built from, with "-dirty" when the work tree differs from it."""
    head = _run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], what="git rev-parse").strip()
    dirty = _run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], what="git status").strip()
    return f"{head}-dirty" if dirty else head


def uv_version() -> str:
    """The uv the Dockerfile pins (ARG UV_IMAGE=ghcr.io/astral-sh/uv:<version>)."""
    match = re.search(r"^ARG UV_IMAGE=ghcr\.io/astral-sh/uv:(\S+)$", DOCKERFILE.read_text(), re.M)
    if match is None:
        raise ImageError("the Dockerfile pins no uv image")
    return match.group(1)


def build_base(*, force: bool = False) -> str:
    """The base image from Debian's packages (about a minute), unless podman already holds it."""
    if image_exists(BASE_IMAGE) and not force:
        return BASE_IMAGE
    with tempfile.TemporaryDirectory(prefix="crm-base-") as tmp:
        tarball = Path(tmp) / "base.tar"
        command = ["mmdebstrap", "--variant=minbase", "--include=python3,ca-certificates", "--mode=root"]
        command += [f"--dpkgopt={option}" for option in BASE_EXCLUDES]
        _run([*command, SUITE, str(tarball)], what="mmdebstrap of the base image")
        _run(
            ["podman", "import", "--change", 'CMD ["python3"]', str(tarball), BASE_IMAGE],
            what="podman import of the base image",
        )
    return BASE_IMAGE


def _uv_wheel(version: str) -> tuple[str, bytes]:
    """The uv wheel for this machine from PyPI's simple index (PEP 691 JSON, which mirrors serve
    too), checked against the digest the index publishes."""
    prefix = f"uv-{version}-py3-none-manylinux_2_17_{platform.machine()}."
    with httpx.Client(timeout=120, follow_redirects=True) as http:
        index = http.get("https://pypi.org/simple/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        index.raise_for_status()
        wheels = [
            f for f in index.json()["files"] if f["filename"].startswith(prefix) and f["filename"].endswith(".whl")
        ]
        if not wheels:
            raise ImageError(f"PyPI has no {prefix}*.whl")
        wheel = wheels[0]
        response = http.get(wheel["url"])
        response.raise_for_status()
        body = response.content
    if hashlib.sha256(body).hexdigest() != wheel["hashes"]["sha256"]:
        raise ImageError(f"{wheel['filename']}: its sha256 is not the one PyPI publishes")
    return wheel["filename"], body


def build_uv(*, force: bool = False) -> str:
    """A one-layer image holding /uv and /uvx, as ghcr.io/astral-sh/uv does, from the pinned wheel."""
    version = uv_version()
    reference = f"localhost/crm-uv:{version}"
    if image_exists(reference) and not force:
        return reference
    _, body = _uv_wheel(version)
    archive = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as wheel, tarfile.open(fileobj=archive, mode="w") as tar:
        for name in wheel.namelist():
            binary = name.rsplit("/", 1)[-1]
            if ".data/scripts/" in name and binary in ("uv", "uvx"):
                data = wheel.read(name)
                info = tarfile.TarInfo(binary)
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
    with tempfile.NamedTemporaryFile(suffix=".tar") as tarball:
        tarball.write(archive.getvalue())
        tarball.flush()
        _run(["podman", "import", tarball.name, reference], what="podman import of uv")
    return reference


def image_reference(service: str, version: str | None = None) -> str:
    return f"localhost/crm-{service}:{version or app_version()}"


def _ca_bundle_volume() -> list[str]:
    """This machine's CA bundle over the build's during RUN steps only (a build behind an inspecting
    proxy); nothing of it stays in a layer."""
    bundle = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
    return ["--volume", f"{bundle}:/etc/ssl/certs/ca-certificates.crt:ro"] if bundle.is_file() else []


def build_service(service: str, *, uv_image: str, rev: str, version: str) -> str:
    """`podman build` of one service's image on the Debian base; returns the image reference."""
    reference = image_reference(service, version)
    command = ["podman", "build", "--isolation", "chroot", "--quiet", *_ca_bundle_volume()]
    command += ["--file", str(DOCKERFILE), "--tag", reference]
    for name, value in (
        ("SERVICE", service),
        ("PORTS", PORTS.get(service, "50051 9100")),
        ("BASE_IMAGE", BASE_IMAGE),
        ("UV_IMAGE", uv_image),
        ("VERSION", version),
        ("REVISION", rev),
    ):
        command += ["--build-arg", f"{name}={value}"]
    try:
        _run([*command, str(ROOT)], what=f"podman build of {service}")
    except ImageError as error:
        # A build fetches from PyPI and Debian's mirror: one failed fetch is retried once, and
        # what failed is shown either way.
        print(f"images: {error}\nimages: retrying the build of {service} once", file=sys.stderr)
        time.sleep(10)
        _run([*command, str(ROOT)], what=f"podman build of {service} (second attempt)")
    return reference


@contextlib.contextmanager
def mounted(reference: str) -> Iterator[Path]:
    """The image's root filesystem, mounted read-only by podman for as long as the block runs."""
    root = Path(_run(["podman", "image", "mount", reference], what=f"podman image mount {reference}").strip())
    try:
        yield root
    finally:
        subprocess.run(["podman", "image", "unmount", reference], capture_output=True, check=False)


def inspect(reference: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(_run(["podman", "image", "inspect", reference], what="podman inspect"))
    return data[0]


# ---------------------------------------------------------------------------------------- SBOM


def debian_packages(root: Path) -> list[dict[str, str]]:
    """Installed Debian packages (name, version, architecture) from the image's dpkg status."""
    packages = []
    for stanza in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.M))
        if fields.get("Status", "").endswith(" installed"):
            packages.append(
                {"name": fields["Package"], "version": fields["Version"], "arch": fields.get("Architecture", "")}
            )
    return sorted(packages, key=lambda p: p["name"])


def python_distributions(root: Path) -> list[dict[str, str]]:
    """Python distributions installed in the image's /app/.venv (name, version, licence)."""
    distributions = []
    for metadata in sorted(root.glob("app/.venv/lib/python3*/site-packages/*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(metadata.read_text(errors="replace"), headersonly=True)
        licence = headers.get("License-Expression") or ""
        distributions.append({"name": headers["Name"], "version": headers["Version"], "license": licence})
    return distributions


def sbom(service: str, reference: str, root: Path, rev: str) -> dict[str, Any]:
    """A CycloneDX 1.5 document of one image: every Debian package and Python distribution in it."""
    components: list[dict[str, Any]] = []
    for package in debian_packages(root):
        purl = f"pkg:deb/debian/{package['name']}@{package['version']}?arch={package['arch']}&distro=debian-{SUITE}"
        components.append({"type": "library", "name": package["name"], "version": package["version"], "purl": purl})
    for dist in python_distributions(root):
        component: dict[str, Any] = {
            "type": "library",
            "name": dist["name"],
            "version": dist["version"],
            "purl": f"pkg:pypi/{dist['name'].lower().replace('_', '-')}@{dist['version']}",
        }
        if dist["license"]:
            component["licenses"] = [{"expression": dist["license"]}]
        components.append(component)
    version = reference.rsplit(":", 1)[1]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "component": {
                "type": "container",
                "name": f"crm-{service}",
                "version": version,
                "properties": [{"name": "org.opencontainers.image.revision", "value": rev}],
            },
        },
        "components": components,
    }


# -------------------------------------------------------------------------------------- build all


@dataclass
class BuiltImage:
    service: str
    reference: str
    size_bytes: int
    sbom_path: Path
    debian_packages: int
    python_distributions: int


@dataclass
class BuildResult:
    images: dict[str, BuiltImage] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def build_all(services: Sequence[str] = SERVICES, *, out: Path = DEFAULT_OUT) -> BuildResult:
    """The base, uv, then every service's image with its SBOM; writes out/report.json."""
    out.mkdir(parents=True, exist_ok=True)
    result = BuildResult()
    started = time.monotonic()
    build_base()
    uv_image = build_uv()
    result.seconds["base"] = round(time.monotonic() - started, 1)
    rev, version = revision(), app_version()
    for service in services:
        started = time.monotonic()
        reference = build_service(service, uv_image=uv_image, rev=rev, version=version)
        with mounted(reference) as root:
            document = sbom(service, reference, root, rev)
        sbom_path = out / f"crm-{service}.cdx.json"
        sbom_path.write_text(json.dumps(document, indent=1) + "\n")
        by_kind = [c["purl"].split("/", 1)[0] for c in document["components"]]
        result.images[service] = BuiltImage(
            service=service,
            reference=reference,
            size_bytes=int(inspect(reference)["Size"]),
            sbom_path=sbom_path,
            debian_packages=by_kind.count("pkg:deb"),
            python_distributions=by_kind.count("pkg:pypi"),
        )
        result.seconds[service] = round(time.monotonic() - started, 1)
    report = {
        "revision": rev,
        "base": BASE_IMAGE,
        "uv": uv_image,
        "seconds": result.seconds,
        "images": {
            name: {**image.__dict__, "sbom_path": str(image.sbom_path.relative_to(out))}
            for name, image in result.images.items()
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return result


def format_report(result: BuildResult) -> str:
    lines = [f"{'image':<36} {'size':>8} {'debian':>7} {'python':>7} {'build s':>8}"]
    for name, image in result.images.items():
        lines.append(
            f"{image.reference:<36} {image.size_bytes / 1e6:>6.0f}MB {image.debian_packages:>7}"
            f" {image.python_distributions:>7} {result.seconds[name]:>8}"
        )
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- running


def image_environment(config: Mapping[str, Any]) -> dict[str, str]:
    """The environment the image declares (ENV lines: PATH, CRM_ENVIRONMENT, ...)."""
    return dict(item.split("=", 1) for item in config.get("Env") or [])


def sandbox_command(root: Path, config: Mapping[str, Any], argv: Sequence[str], binds: Sequence[Path]) -> list[str]:
    """bubblewrap over an image's filesystem: read-only root, a private /tmp, uid/gid 10001, the
    image's working directory; `binds` are host directories mounted read-write at the same path.
    The process inside gets the environment bwrap is started with (never the command line, which
    anyone on the host can read)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    command = [bwrap, "--ro-bind", str(root), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in binds:
        command += ["--bind", str(path), str(path)]
    command += ["--unshare-user", "--uid", str(RUNTIME_UID), "--gid", str(RUNTIME_UID), "--unshare-ipc"]
    command += ["--die-with-parent", "--chdir", config.get("WorkingDir") or "/"]
    return [*command, "--", *argv]


def run_in_image(root: Path, config: Mapping[str, Any], argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """One command inside the image's sandbox, to its end, with the image's own environment."""
    command = sandbox_command(root, config, argv, [])
    return subprocess.run(command, env=image_environment(config), capture_output=True, text=True, check=False)


class ImageLauncher:
    """Runs the stack's CRM processes from their images (`crm_devstack.stack.Stack(launcher=...)`):
    ``python -m crm_<name> ...`` becomes the image's entrypoint (crm-service ...) in a sandbox, with the image's own
    environment and the CRM_* settings the stack gives; the provisioner runs in the gateway's image,
    as the chart's hook Job does. Other commands (the SMS and mail fakes) run as they are."""

    def __init__(self, references: Mapping[str, str], binds: Sequence[Path]) -> None:
        self.references = dict(references)
        self.binds = list(binds)
        self._stack = contextlib.ExitStack()
        self._roots: dict[str, tuple[Path, dict[str, Any]]] = {}

    def __enter__(self) -> ImageLauncher:
        for service, reference in self.references.items():
            root = self._stack.enter_context(mounted(reference))
            self._roots[service] = (root, inspect(reference)["Config"])
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def root(self, service: str) -> Path:
        """Where the service's image is mounted (read-only), while the launcher is open."""
        return self._roots[service][0]

    def image_of(self, module: str) -> str | None:
        if module == "crm_kit.nats_access":
            return "gateway"
        name = module.removeprefix("crm_")
        return name if module.startswith("crm_") and name in self._roots else None

    def __call__(self, command: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        if len(command) < 3 or command[1] != "-m" or (service := self.image_of(command[2])) is None:
            return command, env
        root, config = self._roots[service]
        settings = {k: v for k, v in env.items() if k.startswith(("CRM_", "OTEL_"))}
        # A service runs as the chart runs it: the image's entrypoint with the same arguments; the
        # provisioner with its own command (python -m crm_kit.nats_access).
        own = command[2] == f"crm_{service}"
        argv = [*config["Entrypoint"], *command[3:]] if own else ["python", *command[1:]]
        inner = sandbox_command(root, config, argv, self.binds)
        # bwrap does not pass a SIGTERM on: the shim below does, so a service shuts down gracefully.
        shim = [sys.executable, "-m", "crm_devstack.images", "exec", "--"]
        return [*shim, *inner], {**image_environment(config), **settings}


def _exec(inner: list[str]) -> int:
    """Run bwrap (with this process's environment, which it passes on), and pass SIGTERM and SIGINT
    on to the process inside: bwrap itself would die and take it down with SIGKILL."""
    proc = subprocess.Popen(inner)

    def forward(signum: int, _frame: FrameType | None) -> None:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        with contextlib.suppress(OSError):
            for pid in children.read_text().split():
                os.kill(int(pid), signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_devstack.images", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="the base, uv and every service's image, with SBOMs and report.json")
    build.add_argument("services", nargs="*", help=f"some of {', '.join(SERVICES)} (default: all)")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT)
    run = sub.add_parser("exec", help="(internal) run a bwrap command, passing SIGTERM to the process inside")
    run.add_argument("inner", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "exec":
        return _exec(args.inner[1:] if args.inner[:1] == ["--"] else args.inner)
    if unknown := sorted(set(args.services) - set(SERVICES)):
        parser.error(f"unknown services {unknown}; expected some of {', '.join(SERVICES)}")
    if missing := missing_tools():
        print(f"images: missing {', '.join(missing)} (scripts/image-tools.sh installs them)", file=sys.stderr)
        return 1
    result = build_all(args.services or SERVICES, out=args.out)
    print(format_report(result))
    print(f"SBOMs and report.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
