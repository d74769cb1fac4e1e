"""The stronger lead-scoring model and the rule that lets it replace naive Bayes (issue 20). Pure.

Naive Bayes (crm_reporting.scoring) treats each capture-time field as independent evidence, so it
cannot see that radio sells kitchens while the web sells sofas. The challenger is a logistic
regression (scikit-learn, L2) over the fields one-hot *and* their pairs (source × product line,
source × campaign, campaign × product line). It replaces naive Bayes only when both hold:

- **enough history**: at least 1,000 decided leads with 120 of each outcome (the bar Salesforce
  sets before its own model; below it the challenger is not even trained);
- **it does better on leads it has not seen**: on the same time split as naive Bayes' holdout
  (trained on the earlier 80 % of decided leads, scoring the latest 20 %), its AUC beats naive
  Bayes' by at least 0.01.

Its reasons are per field, like naive Bayes': the factor on the odds is e to the field's own
coefficient plus half of each pair's it is in (a value never seen adds nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression

MIN_LEADS, MIN_PER_OUTCOME = 1000, 120
MIN_AUC_GAIN = 0.01
FIELDS = ("source", "campaign", "product_line")
PAIRS = (("source", "product_line"), ("source", "campaign"), ("campaign", "product_line"))


def enough(won: int, lost: int) -> bool:
    return won + lost >= MIN_LEADS and won >= MIN_PER_OUTCOME and lost >= MIN_PER_OUTCOME


def _features(fields: Mapping[str, str]) -> dict[str, float]:
    found = {f"{name}={fields.get(name, '')}": 1.0 for name in FIELDS}
    for a, b in PAIRS:
        found[f"{a}={fields.get(a, '')}&{b}={fields.get(b, '')}"] = 1.0
    return found


@dataclass(frozen=True)
class Challenger:
    vectorizer: Any
    model: Any

    def probability(self, fields: Mapping[str, str]) -> float:
        return float(self.model.predict_proba(self.vectorizer.transform([_features(fields)]))[0][1])

    def reasons(self, fields: Mapping[str, str]) -> tuple[tuple[str, str, float], ...]:
        """(field, value, factor on the odds) per field, largest effect first."""
        weights = dict(zip(self.vectorizer.get_feature_names_out(), self.model.coef_[0], strict=True))
        found = []
        for name in FIELDS:
            value = fields.get(name, "")
            log_odds = float(weights.get(f"{name}={value}", 0.0))
            for a, b in PAIRS:
                if name in (a, b):
                    log_odds += 0.5 * float(weights.get(f"{a}={fields.get(a, '')}&{b}={fields.get(b, '')}", 0.0))
            found.append((name, value, math.exp(log_odds)))
        found.sort(key=lambda r: -abs(math.log(r[2])))
        return tuple(found)


def fit(leads: Sequence[tuple[Mapping[str, str], bool]]) -> Challenger:
    vectorizer = DictVectorizer()
    matrix = vectorizer.fit_transform([_features(fields) for fields, _ in leads])
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(matrix, [1 if won else 0 for _, won in leads])
    return Challenger(vectorizer, model)
