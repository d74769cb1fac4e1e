"""The service images' Dockerfile (one, at the repository root, built with --build-arg SERVICE):
it passes hadolint at its strictest threshold (style findings fail too) and keeps the facts the
charts rely on. tests/images builds and runs it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import DeployKit

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint(kit: DeployKit) -> None:
    result = kit.run(kit.tool("hadolint"), "--no-color", "--failure-threshold", "style", DOCKERFILE, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_the_charts_expect() -> None:
    """The charts run uid/gid 10001 with a read-only root and pass `serve` or `migrate` to the
    image's command (the service's own, crm-service); the provisioner runs `python -m …`."""
    text = DOCKERFILE.read_text()
    assert re.search(r"^USER 10001$", text, re.MULTILINE), "non-root user 10001"
    assert 'ENTRYPOINT ["crm-service"]' in text and 'CMD ["serve"]' in text
    assert 'ln -s "crm-${SERVICE}" /app/.venv/bin/crm-service' in text
    # Every base is an argument whose default is a tagged image (make images builds the base from
    # Debian's packages and passes it); the final stage is the base, with no build tools.
    defaults = dict(re.findall(r"^ARG (BASE_IMAGE|UV_IMAGE)=(\S+)$", text, re.MULTILINE))
    assert defaults["BASE_IMAGE"] == "python:3.11-slim-bookworm"
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", defaults["UV_IMAGE"])
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${UV_IMAGE}", "${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert ":latest" not in text
    assert 'uv sync --frozen --no-dev --no-editable --package "crm-${SERVICE}"' in text


def test_every_service_has_a_console_command_for_its_image() -> None:
    """crm-service links to crm-<name>: each service's pyproject declares that script."""
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
    assert len(services) == 9
    for name in services:
        pyproject = (ROOT / "services" / name / "pyproject.toml").read_text()
        assert f'crm-{name} = "crm_{name}.main:main"' in pyproject, name
