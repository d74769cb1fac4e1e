"""Schemathesis against the running gateway, with a valid token for each role: no request it can
generate from the OpenAPI document gets a 5xx, and every response (status, content type, headers,
body) conforms to that document. The seed is printed so a failure can be replayed."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from crm_devstack.stack import Stack

pytestmark = pytest.mark.e2e

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "ignored_auth",
    ]
)
SEED = int(os.environ.get("CRM_FUZZ_SEED") or random.randrange(1, 2**31))
# A body over the gateway's cap is refused before it is read: 413 (RFC 9110) is a rejection too,
# beside the statuses schemathesis expects of invalid data by default.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
"""
EXAMPLES = os.environ.get("CRM_FUZZ_EXAMPLES", "15")
# Every phase for the widest role (admin: every operation answers) and the narrowest (sales_rep:
# most answers are scoped, 403 or 404); the other roles get the explicit examples and the
# coverage phase (each operation's boundary and invalid values), not the random fuzzing, which
# cost 2½ minutes per role in `make test` (bench/README.md, "Test suite time"). CRM_FUZZ_FULL=1
# fuzzes every role.
FULLY_FUZZED = ("admin", "sales_rep")
ALL_PHASES = "examples,coverage,fuzzing"


def phases(role: str) -> str:
    return ALL_PHASES if role in FULLY_FUZZED or os.environ.get("CRM_FUZZ_FULL") == "1" else "examples,coverage"


@pytest.mark.parametrize("role", ["admin", "sales_manager", "sales_rep", "orders_clerk", "service_agent", "marketing"])
def test_the_gateway_conforms_to_its_openapi_document(stack: Stack, role: str, tmp_path: Path) -> None:
    print(f"schemathesis seed {SEED} (replay with CRM_FUZZ_SEED={SEED}), phases {phases(role)}")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{stack.gateway_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {stack.token(role)}",
        "--checks",
        CHECKS,
        "--phases",
        phases(role),
        "--max-examples",
        EXAMPLES,
        "--seed",
        str(SEED),
        "--continue-on-failure",
        "--request-timeout",
        "20",
        # One worker: with two threads Python 3.11.7's ast.parse (which hypothesis calls to describe
        # its filters) shares one recursion counter between them and fails at random with
        # "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905).
        "--workers",
        "1",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"}
    )

    assert result.returncode == 0, f"seed {SEED}\n{_failures(result.stdout)}\n{result.stderr[-5000:]}"
    assert " passed" in result.stdout


def _failures(stdout: str) -> str:
    """The report's failures section (each clipped: a generated body can be a megabyte), else its tail."""
    start = stdout.find("FAILURES")
    if start < 0:
        return stdout[-20000:]
    end = stdout.find("WARNINGS", start)
    section = stdout[start : end if end > 0 else None]
    return "\n".join(line if len(line) <= 500 else line[:500] + "…" for line in section.splitlines())[:20000]
