"""Campaign and source rules (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from crm_kit.errors import InvalidArgument
from crm_leads.campaigns import domain

pytestmark = pytest.mark.unit


def fields(**changes: object) -> domain.CampaignFields:
    base: dict[str, object] = {
        "name": "  רדיו  תל אביב ",
        "starts_on": date(2026, 12, 1),
        "ends_on": date(2026, 12, 31),
        "budget_minor": 5_000_000,
        "actual_cost_minor": 0,
        "budget_currency": "ils",
        "actual_cost_currency": "",
    }
    base.update(changes)
    return domain.CampaignFields(**base)  # type: ignore[arg-type]


def test_a_valid_campaign_is_normalized() -> None:
    valid = domain.validate_campaign(fields())
    assert valid.name == "רדיו תל אביב"
    assert valid.currency_code == "ILS"
    assert valid.budget_minor == 5_000_000


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_campaign(
            fields(
                name="x" * 101,
                ends_on=date(2026, 11, 1),
                budget_minor=-1,
                actual_cost_minor=10,
                actual_cost_currency="USD",
            )
        )
    assert {f for f, _ in err.value.field_violations} == {
        "name",
        "ends_on",
        "budget.amount_minor",
        "actual_cost.currency_code",
    }


def test_an_amount_needs_a_currency() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_campaign(fields(budget_currency=""))
    assert err.value.field_violations == [("budget.currency_code", "is required with an amount")]


def test_new_source_codes() -> None:
    assert domain.validate_new_source(code="podcast_2", display_name=" פודקאסט ").display_name == "פודקאסט"
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_source(code="2x", display_name="")
    assert {f for f, _ in err.value.field_violations} == {"code", "display_name"}
