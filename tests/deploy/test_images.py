"""The service images: every services/*/Dockerfile passes hadolint, at its strictest threshold
(style findings fail too), and keeps the facts the charts rely on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import DeployKit

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(ROOT.glob("services/*/Dockerfile"))


def test_every_service_has_a_dockerfile() -> None:
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
    assert [p.parent.name for p in DOCKERFILES] == services


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.parent.name for p in DOCKERFILES])
def test_hadolint(kit: DeployKit, dockerfile: Path) -> None:
    result = kit.run(kit.tool("hadolint"), "--no-color", "--failure-threshold", "style", dockerfile, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.parent.name for p in DOCKERFILES])
def test_image_runs_as_the_charts_expect(dockerfile: Path) -> None:
    """The charts run uid/gid 10001 with a read-only root, `python -m crm_<name>` with `serve` or
    `migrate` as the argument: the image must agree."""
    text = dockerfile.read_text()
    name = dockerfile.parent.name
    assert re.search(r"^USER 10001$", text, re.MULTILINE), "non-root user 10001"
    assert f'ENTRYPOINT ["python", "-m", "crm_{name}"]' in text
    assert 'CMD ["serve"]' in text
    # Every base is an argument whose default is a tagged image (make images builds the base from
    # Debian's packages and passes it); the final stage is the base, with no build tools.
    defaults = dict(re.findall(r"^ARG (BASE_IMAGE|UV_IMAGE)=(\S+)$", text, re.MULTILINE))
    assert defaults["BASE_IMAGE"] == "python:3.11-slim-bookworm"
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", defaults["UV_IMAGE"])
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${UV_IMAGE}", "${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert ":latest" not in text
    assert f"uv sync --frozen --no-dev --no-editable --package crm-{name}" in text
