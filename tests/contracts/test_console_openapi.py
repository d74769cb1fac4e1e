"""The console's API client is driven by its copy of the gateway's OpenAPI document
(crm_console.api): the copy must be exactly what the gateway publishes, so a renamed route or
parameter fails here instead of in a user's browser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


def test_the_consoles_copy_of_the_gateway_spec_is_current() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/console_openapi.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
