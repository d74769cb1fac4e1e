"""Attribution models: every model gives a conversion exactly its value, each rule-based model its
documented shares, time decay halves per half-life, and the Markov removal effect credits the
channel without which journeys do not convert — and refuses to guess from too few journeys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm_reporting import attribution
from crm_reporting.attribution import Journey, TooLittleData, Touch

pytestmark = pytest.mark.unit

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def journey(*channels: str, converted: bool = True, value: float = 1.0, **more: int) -> Journey:
    touches = tuple(Touch(c, T0 + timedelta(days=i)) for i, c in enumerate(channels))
    ended = T0 + timedelta(days=len(channels)) if converted else None
    return Journey(touches, ended, value, **more)


FIVE = journey("radio", "web", "email", "tv", "referral", lead_index=1, opportunity_index=3)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first", {"radio": 1.0}),
        ("last", {"referral": 1.0}),
        ("linear", {c: 0.2 for c in ("radio", "web", "email", "tv", "referral")}),
        ("u_shaped", {"radio": 0.4, "web": 0.4, "email": 0.2 / 3, "tv": 0.2 / 3, "referral": 0.2 / 3}),
        ("w_shaped", {"radio": 0.3, "web": 0.3, "tv": 0.3, "email": 0.05, "referral": 0.05}),
        ("full_path", {"radio": 0.225, "web": 0.225, "tv": 0.225, "referral": 0.225, "email": 0.1}),
    ],
)
def test_each_rule_based_model_gives_its_documented_shares(model: str, expected: dict[str, float]) -> None:
    found = attribution.rule_credit(model, [FIVE])
    assert found == pytest.approx(expected)
    assert sum(found.values()) == pytest.approx(1.0)


def test_short_journeys_and_milestones_on_one_touch() -> None:
    assert attribution.rule_credit("u_shaped", [journey("radio")]) == {"radio": 1.0}
    assert attribution.rule_credit("u_shaped", [journey("radio", "web")]) == pytest.approx({"radio": 0.5, "web": 0.5})
    # The lead created by the first touch, the deal opened at the last: W puts 60 % on the first.
    w = attribution.rule_credit("w_shaped", [journey("radio", "web", "tv")])
    assert w == pytest.approx({"radio": 0.6, "web": 0.1, "tv": 0.3})
    # Every touch a milestone: the shares, scaled to the whole.
    assert attribution.rule_credit("full_path", [journey("radio", "web")]) == pytest.approx({"radio": 0.5, "web": 0.5})


def test_only_converted_journeys_count_and_by_their_value() -> None:
    journeys = [journey("radio", value=4_699.0), journey("tv", converted=False), journey("radio", "tv", value=1_000.0)]
    assert attribution.rule_credit("linear", journeys) == pytest.approx({"radio": 5_199.0, "tv": 500.0})


def test_time_decay_halves_a_touchs_weight_every_half_life() -> None:
    won = T0 + timedelta(days=14)
    two = Journey((Touch("radio", T0), Touch("web", T0 + timedelta(days=7))), won)
    found = attribution.rule_credit("time_decay", [two], half_life_days=7)
    assert found == pytest.approx({"radio": 1 / 3, "web": 2 / 3})  # 0.25 vs 0.5 of weight
    with pytest.raises(ValueError, match="half_life_days"):
        attribution.rule_credit("time_decay", [two], half_life_days=0)
    with pytest.raises(ValueError, match="unknown"):
        attribution.rule_credit("markov_chain", [two])


def test_markov_credits_the_channel_journeys_need_and_refuses_too_little_data() -> None:
    # web alone never converts; radio → web converts half the time; tv alone never.
    journeys = (
        [journey("radio", "web") for _ in range(20)]
        + [journey("radio", "web", converted=False) for _ in range(20)]
        + [journey("web", converted=False) for _ in range(10)]
        + [journey("tv", converted=False) for _ in range(10)]
    )
    found = attribution.markov_credit(journeys)
    assert set(found) == {"radio", "web"}  # tv never leads to a conversion: no credit
    assert sum(found.values()) == pytest.approx(20.0)  # every conversion given out once
    # Without web nothing converts (removal effect 1); without radio the chain still converts a
    # sixth of starts through web (P 1/3 → 1/15, effect 0.8): credit in that proportion.
    assert found == pytest.approx({"radio": 20 * 0.8 / 1.8, "web": 20 * 1.0 / 1.8})
    with pytest.raises(TooLittleData, match="at least 30 journeys"):
        attribution.markov_credit(journeys[:10])
    with pytest.raises(TooLittleData):
        attribution.markov_credit([journey("radio") for _ in range(40)])  # nobody failed to convert
    side_by_side = attribution.compare(["first", "markov"], journeys[:10])
    assert side_by_side["first"] == {"radio": 10.0} and "rule-based" in str(side_by_side["markov"])


def test_credit_by_channel_counts_deals_as_one_and_revenue_in_its_currency() -> None:
    journeys = [
        (journey("radio", "web", value=4_699_00), "ILS"),
        (journey("tv", value=1_000_000), "IRR"),
        (journey("radio", converted=False), ""),
    ]
    found = attribution.credit_by_channel("linear", journeys)
    assert found["radio"].deals == pytest.approx(0.5) and found["web"].deals == pytest.approx(0.5)
    assert found["tv"].deals == pytest.approx(1.0)
    assert found["radio"].revenue == pytest.approx({"ILS": 2_349_50}) and found["tv"].revenue == {"IRR": 1_000_000}
