"""The command line a launcher uses for every service."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crm_gateway.main import main

pytestmark = pytest.mark.unit


def test_migrate_does_nothing_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crm_gateway", "migrate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0
    assert result.stdout == ""


def test_unknown_command_exits_with_usage() -> None:
    with pytest.raises(SystemExit, match="usage"):
        main(["frobnicate"])
