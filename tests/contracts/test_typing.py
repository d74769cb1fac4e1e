"""The code rules `make lint` checks hold in `make test` too: mypy --strict over the chassis, the
libraries and every service's src/, the layer contracts (.importlinter), ruff with its complexity
limits, and formatting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True)


def test_every_source_tree_type_checks_strictly() -> None:
    services = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("services/*/src"))
    for tree in ["libs/kit/src", "libs/devstack/src", "libs/admin/src", *services]:
        # One run per tree, as `make lint` does: each is its own installable package.
        result = run("mypy", "--strict", "--ignore-missing-imports", tree)
        assert result.returncode == 0, f"{tree}\n{result.stdout}{result.stderr}"


def test_the_layer_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_lint_and_format_are_clean() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        result = run("ruff", *args)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_complexity_limits_refuse_a_long_branchy_function(tmp_path: Path) -> None:
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(11))
    statements = "\n".join(f"    y{i} = x + {i}" for i in range(51))
    (tmp_path / "probe.py").write_text(
        f"def branchy(x: int) -> int:\n{branches}\n    return -1\n\n\ndef long(x: int) -> None:\n{statements}\n"
    )
    result = run("ruff", "check", "--config", str(ROOT / "pyproject.toml"), "--no-cache", "probe.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "C901 `branchy` is too complex (12 > 10)" in result.stdout
    assert "PLR0915 Too many statements (51 > 50)" in result.stdout
