"""The consent rules per country as configuration: Israel's and Iran's shipped, another country's
from a file, a file that cannot be right refused before the service starts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crm_customers import consent_rules, domain
from crm_customers.main import CustomersSettings
from crm_kit.errors import InvalidArgument

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
IL, IR = consent_rules.load("IL"), consent_rules.load("ir")


def change(rules: consent_rules.ConsentRules, *, source: str, granted: bool = True, evidence: str = "") -> Any:
    return domain.consent_change(
        channel="sms",
        purpose="marketing",
        granted=granted,
        source=source,
        evidence=evidence,
        occurred=NOW,
        now=NOW,
        rules=rules,
    )


def violated(call: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as refused:
        call()
    return dict(refused.value.field_violations)


def test_israel_wants_written_or_recorded_proof_of_a_yes_to_advertising() -> None:
    assert IL.country == "IL" and "30A" in IL.law
    assert change(IL, source="written", evidence="form-17.pdf").granted
    assert "IL rules" in violated(lambda: change(IL, source="reply", evidence="sms-in-881"))["source"]
    assert "evidence" in violated(lambda: change(IL, source="web_form"))


def test_iran_counts_a_reply_of_12_as_a_yes() -> None:
    assert IR.country == "IR"
    assert change(IR, source="reply", evidence="inbound 12, msg 5521").granted
    assert "evidence" in violated(lambda: change(IR, source="reply"))


@pytest.mark.parametrize("rules", [IL, IR], ids=["IL", "IR"])
def test_a_refusal_is_honoured_from_any_source_and_an_agent_s_say_so_never_grants(rules: Any) -> None:
    for source in domain.CONSENT_SOURCES:
        assert change(rules, source=source, granted=False).granted is False
    assert "source" in violated(lambda: change(rules, source="agent", evidence="the customer said so"))


def test_the_defaults_come_from_the_rules(tmp_path: Path) -> None:
    states = {(s.channel, s.purpose): s.granted for s in domain.consent_states([], IL)}
    assert states[("sms", "service")] is True and states[("email", "marketing")] is False
    opt_in_only = {**json.loads(consent_rules.SHIPPED["IL"].read_text()), "country": "XX"}
    opt_in_only["defaults"] = {"service": False, "marketing": False}
    path = tmp_path / "xx.json"
    path.write_text(json.dumps(opt_in_only))
    rules = consent_rules.load(str(path))
    assert rules.country == "XX"
    assert not any(s.granted for s in domain.consent_states([], rules))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["marketing_grant"].update(sources=["web_form", "carrier_pigeon"]), "unknown sources"),
        (lambda d: d["marketing_grant"].update(sources=["agent"]), "no proof"),
        (lambda d: d["defaults"].update(marketing="yes"), "true or false"),
        (lambda d: d.pop("defaults"), "missing"),
    ],
    ids=["unknown-source", "agent-grants", "not-a-bool", "no-defaults"],
)
def test_a_rules_file_that_cannot_be_right_is_refused(tmp_path: Path, edit: Any, message: str) -> None:
    data = json.loads(consent_rules.SHIPPED["IL"].read_text())
    edit(data)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data))
    with pytest.raises(consent_rules.InvalidConsentRules, match=message):
        consent_rules.load(str(path))
    with pytest.raises(ValueError, match=message):
        CustomersSettings(consent_rules=str(path))
    with pytest.raises(ValueError, match="neither a shipped country"):
        CustomersSettings(consent_rules="XX")
