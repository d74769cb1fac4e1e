"""Cross-sell rules: support, confidence and lift counted per buyer (not per purchase), rules from
too few buyers or without lift dropped, a customer's suggestions are products they lack by the
strongest rule from one they have, and too little history is said, not guessed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm_reporting.crosssell import (
    MAX_BASKET_PRODUCTS,
    MIN_BUYERS,
    MIN_PAIR_BUYERS,
    Purchase,
    TooLittleHistory,
    learn,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def buyers(count: int, *skus: str, start: int = 0) -> list[Purchase]:
    return [
        Purchase(f"b{start + i}", sku, sku.lower(), T0 + timedelta(days=n))
        for i in range(count)
        for n, sku in enumerate(skus)
    ]


def shop() -> list[Purchase]:
    """40 buyers: 10 bought a sofa and a rug, 10 a sofa alone, 20 a lamp alone (one also a rug)."""
    return [
        *buyers(10, "SOFA", "RUG"),
        *buyers(10, "SOFA", start=10),
        *buyers(19, "LAMP", start=20),
        *buyers(1, "LAMP", "RUG", start=39),
    ]


def test_support_confidence_and_lift_are_counted_per_buyer() -> None:
    # Buying the sofa twice is one buyer of the sofa.
    model = learn([*shop(), Purchase("b0", "SOFA", "sofa", T0 + timedelta(days=90))])
    assert model.buyers == 40
    (rule,) = model.rules["SOFA"]
    assert (rule.consequent, rule.together, rule.antecedent_buyers, rule.consequent_buyers) == ("RUG", 10, 20, 11)
    assert rule.support == pytest.approx(10 / 40)
    assert rule.confidence == pytest.approx(0.5)
    assert rule.lift == pytest.approx(0.5 / (11 / 40))
    # The reverse rule holds too: 10 of the rug's 11 buyers had a sofa.
    assert model.rules["RUG"][0].confidence == pytest.approx(10 / 11)


def test_a_pair_of_too_few_buyers_makes_no_rule() -> None:
    model = learn(shop())
    assert "LAMP" not in model.rules  # one lamp buyer bought a rug: an anecdote
    assert all(r.together >= MIN_PAIR_BUYERS for rules in model.rules.values() for r in rules)


def test_a_rule_without_lift_is_dropped() -> None:
    # Everyone buys cushions: buying a sofa says nothing about them.
    purchases = [*buyers(10, "SOFA", "CUSHION"), *buyers(20, "CUSHION", start=10)]
    model = learn(purchases)
    assert "SOFA" not in model.rules


def test_suggestions_are_what_the_customer_lacks_by_the_strongest_rule() -> None:
    purchases = [
        *buyers(10, "SOFA", "RUG", "TABLE"),
        *buyers(10, "SOFA", "TABLE", start=10),
        *buyers(10, "BED", "RUG", start=20),
        *buyers(10, "BED", start=30),
        *buyers(10, "LAMP", start=40),
    ]
    model = learn(purchases)
    bought_sofa = T0 - timedelta(days=90)
    found = model.suggest({"SOFA": bought_sofa, "BED": T0})
    assert [s.rule.consequent for s in found] == ["TABLE", "RUG"]
    table, rug = found
    assert (table.rule.antecedent, table.rule.confidence, table.because_bought_at) == ("SOFA", 1.0, bought_sofa)
    # The rug is suggested by the sofa (10 of 20) and the bed (10 of 20): the tie goes to the
    # stronger lift, then the larger count, never twice.
    assert rug.rule.confidence == pytest.approx(0.5)
    assert [s.rule.consequent for s in model.suggest({"SOFA": T0, "TABLE": T0, "RUG": T0})] == ["BED"]
    assert model.suggest({"SOFA": T0, "TABLE": T0, "RUG": T0, "BED": T0}) == []
    assert model.suggest({"SOFA": T0}, limit=1)[0].rule.consequent == "TABLE"


def test_the_name_is_the_latest_description() -> None:
    purchases = [*buyers(20, "SOFA"), Purchase("b0", "SOFA", "Sofa, 3 seats", T0 + timedelta(days=400))]
    assert learn(purchases).names["SOFA"] == "Sofa, 3 seats"


def test_too_little_history_is_said() -> None:
    with pytest.raises(TooLittleHistory) as raised:
        learn(buyers(MIN_BUYERS - 1, "SOFA", "RUG"))
    assert raised.value.buyers == MIN_BUYERS - 1
    # Lines without a SKU are not products.
    with pytest.raises(TooLittleHistory):
        learn([*buyers(MIN_BUYERS - 1, "SOFA"), Purchase("x", "", "delivery", T0)])


def test_a_basket_counts_its_most_recent_products_only() -> None:
    huge = [Purchase("whale", f"P{n}", "", T0 + timedelta(minutes=n)) for n in range(MAX_BASKET_PRODUCTS + 10)]
    model = learn([*huge, *buyers(MIN_BUYERS, "SOFA")])
    # No pair can reach the rule minimum from one buyer; what matters is nothing blew up and the
    # oldest ten products were left out of the counts.
    assert model.buyers == MIN_BUYERS + 1 and model.rule_count == 0
