"""The learned churn model on a seeded synthetic history whose customers leave more often after
long silences and complaints: it ranks them (AUC and top-decile lift well above chance), its
calibration bins rise with the predicted risk, its reasons name the signal that drives a customer's
risk, and it refuses to train on too short a history or too few of either kind."""

from __future__ import annotations

import math
import random

import pytest

from crm_reporting.churn import Signals
from crm_reporting.churn_model import MIN_PER_CLASS, WINDOW_DAYS, Snapshot, TooLittleHistory, train

pytestmark = pytest.mark.unit


def customer(rng: random.Random) -> tuple[Signals, bool]:
    silence = rng.randint(1, 500)
    complaints = rng.choice((0, 0, 0, 1, 2))
    rate = rng.uniform(0.5, 3)
    recent = max(0, round(rate * rng.uniform(0, 1.2))) if silence < 180 else 0
    signals = Signals(
        days_since_purchase=silence,
        purchases_recent=recent,
        purchase_rate_before=rate,
        amount_recent=recent * 100000,
        amount_rate_before=rate * 100000,
        complaints_recent=complaints,
        breached_recent=0,
        opted_out=rng.random() < 0.1,
        days_since_contact=min(silence, rng.randint(1, 400)),
        lost_recent=0,
    )
    odds = -5.0 + 5.0 * math.log1p(silence) / math.log1p(500) + 1.5 * complaints
    return signals, rng.random() < 1 / (1 + math.exp(-odds))


def snapshot(seed: int, size: int = 600) -> Snapshot:
    rng = random.Random(seed)
    drawn = [customer(rng) for _ in range(size)]
    return Snapshot([s for s, _ in drawn], [c for _, c in drawn])


def test_it_ranks_a_later_period_well_above_chance_and_says_how_well() -> None:
    model = train(2 * WINDOW_DAYS, snapshot(1), snapshot(2))
    v = model.validation
    assert v.customers == 600 and 0 < v.churned < 600
    assert v.auc > 0.75 and v.top_decile_lift > 1.5 and 0 < v.brier < 0.25
    predicted = [b[0] for b in v.calibration]
    observed = [b[1] for b in v.calibration]
    assert predicted == sorted(predicted) and observed[-1] > observed[0]
    assert sum(b[2] for b in v.calibration) == 600


def test_a_complaining_customer_s_reasons_name_the_complaints() -> None:
    model = train(2 * WINDOW_DAYS, snapshot(1), snapshot(2))
    calm, _ = customer(random.Random(5))
    angry = Signals(**{**calm.__dict__, "complaints_recent": 3, "days_since_purchase": 30, "days_since_contact": 2})
    found = model.risk(angry)
    assert found is not None and found.reasons[0].signal == "complaints" and found.reasons[0].value == 3
    assert 0 < found.risk < 1 and sum(r.points for r in found.reasons) <= round(100 * found.risk) + len(found.reasons)
    assert model.risk(Signals(**{**calm.__dict__, "days_since_purchase": None})) is None


def test_too_short_a_history_or_too_few_of_a_kind_is_said() -> None:
    with pytest.raises(TooLittleHistory, match="360"):
        train(2 * WINDOW_DAYS - 1, snapshot(1), snapshot(2))
    few = snapshot(3, size=MIN_PER_CLASS)
    with pytest.raises(TooLittleHistory, match="training period"):
        train(2 * WINDOW_DAYS, few, snapshot(2))
