"""The stronger lead model: it serves only when it beats naive Bayes on the same time-split
holdout with enough history. Where the outcome hangs on a pair of fields (radio sells kitchens,
the web sells sofas) naive Bayes cannot see it and logistic regression over the pairs can; where
each field tells its own story, the simple model stays; below 1,000 decided leads the challenger is
not trained."""

from __future__ import annotations

import random

import pytest

from crm_reporting.scoring import DecidedLead, train

pytestmark = pytest.mark.unit


def history(n: int, *, paired: bool, seed: int = 7) -> list[DecidedLead]:
    rng = random.Random(seed)
    leads = []
    for i in range(n):
        source, line = rng.choice(["radio", "website"]), rng.choice(["kitchens", "sofas"])
        if paired:
            chance = 0.8 if (source, line) in (("radio", "kitchens"), ("website", "sofas")) else 0.1
        else:
            chance = 0.2 + (0.3 if source == "radio" else 0) + (0.2 if line == "kitchens" else 0)
        fields = {"source": source, "campaign": f"c{rng.randint(1, 4)}", "product_line": line}
        leads.append(DecidedLead(fields, rng.random() < chance, float(i)))
    return leads


def test_a_pair_of_fields_that_decides_makes_the_stronger_model_serve() -> None:
    model = train(history(3000, paired=True))
    assert model.kind == "logistic_regression"
    assert model.challenger_auc is not None and model.naive_bayes_auc is not None
    assert model.challenger_auc >= model.naive_bayes_auc + 0.01 and model.holdout_auc == model.challenger_auc
    good = model.score({"source": "radio", "campaign": "c1", "product_line": "kitchens"})
    bad = model.score({"source": "radio", "campaign": "c1", "product_line": "sofas"})
    assert good.probability > 0.6 > 0.2 > bad.probability
    assert {name for name, _, _ in good.reasons} == {"source", "campaign", "product_line"}


def test_independent_fields_keep_the_simple_model() -> None:
    model = train(history(3000, paired=False))
    assert model.kind == "naive_bayes" and model.challenger is None
    assert model.challenger_auc is not None, "the challenger was tried and did not win by enough"


def test_below_a_thousand_decided_leads_the_challenger_is_not_trained() -> None:
    model = train(history(600, paired=True))
    assert (model.kind, model.challenger_auc) == ("naive_bayes", None)
