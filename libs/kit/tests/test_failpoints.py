"""Failpoints: the CRM_FAILPOINTS parser, the no-op when disarmed, and a real SIGKILL on the N-th hit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from crm_kit import failpoints
from crm_kit.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_parse_names_and_hit_counts() -> None:
    assert failpoints.parse("") == {}
    assert failpoints.parse(" , ") == {}
    assert failpoints.parse("outbox.after_publish") == {"outbox.after_publish": 1}
    assert failpoints.parse(" bus.after_commit_before_ack = 3 , notifications.after_intent ") == {
        "bus.after_commit_before_ack": 3,
        "notifications.after_intent": 1,
    }


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("outbox.after_publsh", "unknown failpoint"),
        ("outbox.after_publish=0", "at least 1"),
        ("outbox.after_publish=-2", "at least 1"),
        ("outbox.after_publish=two", "whole number"),
        ("outbox.after_publish=", "whole number"),
        ("outbox.after_publish,outbox.after_publish=2", "listed twice"),
    ],
)
def test_parse_refuses_typos(spec: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        failpoints.parse(spec)


def test_every_known_failpoint_parses() -> None:
    assert failpoints.parse(",".join(failpoints.POINTS)) == dict.fromkeys(failpoints.POINTS, 1)


def test_a_disarmed_failpoint_does_nothing() -> None:
    # This test process runs without CRM_FAILPOINTS.
    assert failpoints.armed() == {}
    for name in failpoints.POINTS:
        failpoints.failpoint(name)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("CRM_FAILPOINTS", "CRM_ENVIRONMENT")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


HIT_THREE_TIMES = (
    "from crm_kit.failpoints import failpoint\n"
    "for i in range(1, 4):\n"
    "    print(i, flush=True)\n"
    "    failpoint('outbox.after_publish')\n"
    "print('survived', flush=True)\n"
)


def test_an_armed_failpoint_kills_the_process_on_its_nth_hit() -> None:
    result = _run(HIT_THREE_TIMES, CRM_FAILPOINTS="outbox.after_publish=2")
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.split() == ["1", "2"]
    assert "failpoint outbox.after_publish hit 2: SIGKILL" in result.stderr


def test_another_armed_failpoint_leaves_this_one_alone() -> None:
    result = _run(HIT_THREE_TIMES, CRM_FAILPOINTS="notifications.after_intent")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "2", "3", "survived"]


def test_a_malformed_spec_fails_at_import() -> None:
    result = _run("import crm_kit.failpoints", CRM_FAILPOINTS="outbox.after_publish=x")
    assert result.returncode == 1
    assert "whole number" in result.stderr


def test_production_never_arms_a_failpoint() -> None:
    result = _run(HIT_THREE_TIMES, CRM_FAILPOINTS="outbox.after_publish", CRM_ENVIRONMENT="production")
    assert result.returncode == 0, result.stderr
    assert "survived" in result.stdout


def test_production_settings_refuse_failpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_FAILPOINTS", "outbox.after_publish")
    with pytest.raises(ValueError, match="CRM_FAILPOINTS"):
        ServiceSettings(service_name="test", environment="production")
    assert ServiceSettings(service_name="test", environment="test").failpoints == "outbox.after_publish"
    monkeypatch.delenv("CRM_FAILPOINTS")
    assert ServiceSettings(service_name="test", environment="production").failpoints == ""
