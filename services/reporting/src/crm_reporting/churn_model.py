"""A learned churn model (issue 20): logistic regression (scikit-learn) over the signals of
crm_reporting.churn, trained on the company's own history, validated on a later period, and used
only when the history is long enough — otherwise the rules answer and say why.

- **Label**: a customer who bought by a snapshot moment *churned* when they won no deal in the
  `WINDOW_DAYS` after it.
- **Time split**: the model is trained on the snapshot `2 × WINDOW_DAYS` ago (labelled by the
  window after it) and validated on the snapshot `WINDOW_DAYS` ago (labelled by the window up to
  now): AUC, top-decile lift (the churn rate among the 10 % scored riskiest over the base rate),
  calibration (5 bins of predicted against observed) and the Brier score. The model that serves is
  then refitted on that latest labelled snapshot.
- **Minimum history**: the first purchase at least twice the window ago, and `MIN_PER_CLASS`
  customers who churned and who stayed in each snapshot; else `TooLittleHistory` names what is
  missing and the rules serve.
- **Reasons**: each feature's contribution to the log-odds (coefficient × standardized value);
  the positive ones, grouped by the rule signal they belong to, share the risk's points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from crm_reporting.churn import Reason, Risk, Signals, band

WINDOW_DAYS = 180
MIN_PER_CLASS = 30
CALIBRATION_BINS = 5
# Each feature and the rule signal it explains (a reason names the signal).
FEATURES: tuple[tuple[str, str], ...] = (
    ("days_since_purchase", "no_purchase"),
    ("purchases_recent", "fewer_purchases"),
    ("purchase_rate_before", "fewer_purchases"),
    ("amount_recent", "smaller_purchases"),
    ("amount_rate_before", "smaller_purchases"),
    ("complaints_recent", "complaints"),
    ("breached_recent", "sla_breaches"),
    ("opted_out", "opted_out"),
    ("days_since_contact", "no_contact"),
    ("lost_recent", "lost_deals"),
)


class TooLittleHistory(Exception):
    """Why the model cannot be trained yet (the rules serve meanwhile)."""


def vector(s: Signals) -> list[float]:
    """The features of one customer: days and amounts on a log scale (a year's silence is not 365
    times a day's)."""
    days = float(s.days_since_purchase or 0)
    contact = float(s.days_since_contact if s.days_since_contact is not None else days)
    return [
        math.log1p(days),
        float(s.purchases_recent),
        s.purchase_rate_before,
        math.log1p(s.amount_recent / 100),
        math.log1p(s.amount_rate_before / 100),
        float(s.complaints_recent),
        float(s.breached_recent),
        1.0 if s.opted_out else 0.0,
        math.log1p(contact),
        float(s.lost_recent),
    ]


@dataclass(frozen=True)
class Snapshot:
    """Customers as of one moment, each with whether they churned in the window after it."""

    signals: Sequence[Signals]
    churned: Sequence[bool]

    def counts(self) -> tuple[int, int]:
        gone = sum(self.churned)
        return gone, len(self.churned) - gone


@dataclass(frozen=True)
class Validation:
    customers: int
    churned: int
    auc: float
    top_decile_lift: float
    brier: float
    # (mean predicted, observed rate, customers) per bin of predicted risk, lowest first.
    calibration: tuple[tuple[float, float, int], ...]


@dataclass(frozen=True)
class ChurnModel:
    pipeline: Pipeline
    trained_on: int
    validation: Validation

    def risk(self, s: Signals) -> Risk | None:
        """The probability of churning in the window, its band and reasons; None for a customer
        who never bought (as the rules)."""
        return self.risks([s])[0]

    def risks(self, customers: Sequence[Signals]) -> list[Risk | None]:
        """`risk` for many customers at once: one matrix through the model, not one call each."""
        bought = [s for s in customers if s.days_since_purchase is not None]
        found: dict[int, Risk] = {}
        if bought:
            x = np.array([vector(s) for s in bought])
            probabilities = self.pipeline.predict_proba(x)[:, 1]
            contributions = (
                self.pipeline.named_steps["scale"].transform(x) * self.pipeline.named_steps["model"].coef_[0]
            )
            for s, p, row in zip(bought, probabilities, contributions, strict=True):
                found[id(s)] = _explained(s, float(p), row)
        return [found.get(id(s)) for s in customers]


def _explained(s: Signals, probability: float, contributions: Any) -> Risk:
    """The risk with its reasons: the positive contributions grouped by rule signal, sharing the
    risk's points."""
    by_signal: dict[str, float] = {}
    values: dict[str, float] = {}
    for (feature, signal), contribution, raw in zip(FEATURES, contributions, _raw(s), strict=True):
        if contribution > 0:
            by_signal[signal] = by_signal.get(signal, 0.0) + float(contribution)
            values.setdefault(signal, raw if feature != "purchase_rate_before" else float(s.purchases_recent))
    total = sum(by_signal.values())
    reasons = sorted(
        (
            Reason(signal, round(100 * probability * share / total), values[signal])
            for signal, share in by_signal.items()
        ),
        key=lambda r: (-r.points, r.signal),
    )
    return Risk(round(probability, 4), band(probability), tuple(r for r in reasons if r.points > 0))


def _raw(s: Signals) -> list[float]:
    """The figure a reason shows for each feature (days, counts, amounts as they are)."""
    days = float(s.days_since_purchase or 0)
    return [
        days,
        float(s.purchases_recent),
        float(s.purchases_recent),
        float(s.amount_recent),
        float(s.amount_recent),
        float(s.complaints_recent),
        float(s.breached_recent),
        1.0,
        float(s.days_since_contact if s.days_since_contact is not None else days),
        float(s.lost_recent),
    ]


def _fit(snapshot: Snapshot) -> Pipeline:
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))])
    pipeline.fit(np.array([vector(s) for s in snapshot.signals]), np.array(snapshot.churned, dtype=int))
    return pipeline


def validate(pipeline: Pipeline, snapshot: Snapshot) -> Validation:
    """AUC, top-decile lift, Brier score and calibration of `pipeline` on a later snapshot."""
    y = np.array(snapshot.churned, dtype=int)
    p = pipeline.predict_proba(np.array([vector(s) for s in snapshot.signals]))[:, 1]
    order = np.argsort(-p, kind="stable")
    top = order[: max(1, len(order) // 10)]
    base = float(y.mean())
    bins = np.array_split(np.argsort(p, kind="stable"), CALIBRATION_BINS)
    return Validation(
        customers=len(y),
        churned=int(y.sum()),
        auc=round(float(roc_auc_score(y, p)), 4),
        top_decile_lift=round(float(y[top].mean()) / base, 3) if base else 0.0,
        brier=round(float(brier_score_loss(y, p)), 4),
        calibration=tuple((round(float(p[b].mean()), 4), round(float(y[b].mean()), 4), len(b)) for b in bins if len(b)),
    )


def train(history_days: int, earlier: Snapshot, later: Snapshot) -> ChurnModel:
    """Trained on `earlier`, validated on `later`, refitted on `later` to serve; TooLittleHistory
    when the history is shorter than twice the window or a snapshot lacks customers of a kind."""
    if history_days < 2 * WINDOW_DAYS:
        raise TooLittleHistory(f"{history_days} days of purchases; the model needs {2 * WINDOW_DAYS}")
    for name, snapshot in (("training", earlier), ("validation", later)):
        gone, stayed = snapshot.counts()
        if min(gone, stayed) < MIN_PER_CLASS:
            raise TooLittleHistory(
                f"the {name} period has {gone} customers who left and {stayed} who stayed; "
                f"the model needs {MIN_PER_CLASS} of each"
            )
    validation = validate(_fit(earlier), later)
    return ChurnModel(_fit(later), len(later.signals), validation)
