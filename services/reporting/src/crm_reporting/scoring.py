"""Customer value and lead scoring rules (issue 20). Pure: no I/O; the queries compute the inputs
(the quintiles in PostgreSQL with NTILE, the counts per field value) and this module turns them
into what a person reads.

- **RFM segments**: recency, frequency and monetary scores of 1 to 5 (quintiles: 5 is the most
  recent, most frequent, highest-spending fifth) named by the usual segment table, read in order
  (the first rule that matches wins) on R and the mean of F and M.
- **Lead scoring, explainable**: naive Bayes per field, as Odoo's predictive lead scoring does — the
  probability a new lead converts from the conversion rate of each of its field values among
  decided leads (won or lost), Laplace-smoothed, and each field's reason (how much its value moves
  the odds). It starts here because it needs little data and says why; a stronger model
  (crm_reporting.lead_model) replaces it only when a time-split holdout shows it better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from crm_reporting import lead_model

# (segment, R range, FM range): the first that matches names the customer.
SEGMENTS: tuple[tuple[str, tuple[float, float], tuple[float, float]], ...] = (
    ("champions", (5, 5), (4, 5)),
    ("loyal", (3, 5), (4, 5)),
    ("cannot_lose", (1, 2), (4.5, 5)),
    ("at_risk", (1, 2), (3, 4.5)),
    ("potential_loyalist", (4, 5), (2, 3.5)),
    ("new", (5, 5), (1, 1.5)),
    ("promising", (4, 4), (1, 1.5)),
    ("needs_attention", (3, 3), (2.5, 3.5)),
    ("about_to_sleep", (3, 3), (1, 2.5)),
    ("hibernating", (2, 2), (1, 3)),
    ("lost", (1, 1), (1, 3)),
)
UNSEGMENTED = "others"


@dataclass(frozen=True)
class Rfm:
    recency: int
    frequency: int
    monetary: int

    @property
    def segment(self) -> str:
        return segment(self.recency, self.frequency, self.monetary)


def segment(recency: int, frequency: int, monetary: int) -> str:
    """The RFM segment of scores 1 to 5 each; ValueError for a score outside them."""
    if not all(1 <= s <= 5 for s in (recency, frequency, monetary)):
        raise ValueError("RFM scores are 1 to 5")
    fm = (frequency + monetary) / 2
    for name, (r_low, r_high), (fm_low, fm_high) in SEGMENTS:
        if r_low <= recency <= r_high and fm_low <= fm <= fm_high:
            return name
    return UNSEGMENTED


@dataclass(frozen=True)
class FieldCounts:
    """Decided leads with one value of one field: how many converted, how many did not."""

    won: int
    lost: int


@dataclass(frozen=True)
class LeadScore:
    probability: float
    # Per field: the factor its value multiplies the odds by (above 1 helps, below hurts), largest
    # effect first.
    reasons: tuple[tuple[str, str, float], ...]


def score_lead(
    lead: Mapping[str, str],
    counts: Mapping[str, Mapping[str, FieldCounts]],
    *,
    won: int,
    lost: int,
    smoothing: float = 1.0,
) -> LeadScore:
    """The probability `lead` (field → value) converts, from `counts` (field → value → won/lost
    among decided leads) and the totals; a value never seen leaves the odds as they are. Each field's
    likelihood ratio is its reason. ValueError without both won and lost leads."""
    if won <= 0 or lost <= 0:
        raise ValueError("lead scoring needs decided leads of both outcomes")
    log_odds = math.log(won / lost)
    reasons: list[tuple[str, str, float]] = []
    for name, value in sorted(lead.items()):
        seen = counts.get(name, {})
        found = seen.get(value)
        if found is None:
            reasons.append((name, value, 1.0))  # never seen: it says nothing either way
            continue
        values = len(seen)
        p_won = (found.won + smoothing) / (won + smoothing * values)
        p_lost = (found.lost + smoothing) / (lost + smoothing * values)
        ratio = p_won / p_lost
        log_odds += math.log(ratio)
        reasons.append((name, value, ratio))
    reasons.sort(key=lambda r: -abs(math.log(r[2])))
    return LeadScore(1 / (1 + math.exp(-log_odds)), tuple(reasons))


def quintile(rank: int, count: int) -> int:
    """NTILE(5)'s bucket of a 1-based rank among `count` (what the SQL computes), for tests and small sets."""
    if not 1 <= rank <= count:
        raise ValueError("rank is 1 to count")
    per, extra = divmod(count, 5)
    edges: Sequence[int] = [sum(per + (1 if i < extra else 0) for i in range(b)) for b in range(1, 6)]
    return next(b + 1 for b, edge in enumerate(edges) if rank <= edge)


# The lead fields the model reads: what is known of a lead at capture, kept by reporting's lead facts.
LEAD_FIELDS = ("source", "campaign", "product_line")
# Fewer decided leads of either outcome than this: no model, a clear status instead (naive Bayes
# with smoothing says something from little data, but not from a handful).
MIN_PER_OUTCOME = 20
# The latest share of decided leads (by when they were decided) held out to test the model trained
# on the earlier ones.
HOLDOUT_SHARE = 0.2


@dataclass(frozen=True)
class DecidedLead:
    """A lead whose deal was won (won) or whose deals were all lost, with its capture-time fields
    and when it was decided."""

    fields: Mapping[str, str]
    won: bool
    decided_at: float


@dataclass(frozen=True)
class LeadModel:
    won: int
    lost: int
    counts: Mapping[str, Mapping[str, FieldCounts]]
    # The area under the ROC curve of a model trained on the earlier decided leads, scoring the
    # held-out latest ones (None when the holdout lacks an outcome); and how many were held out.
    holdout_auc: float | None
    holdout_leads: int
    # naive_bayes, or logistic_regression when the challenger won on the holdout (lead_model);
    # each model's AUC on the same holdout (None: not trained, or no AUC).
    kind: str = "naive_bayes"
    naive_bayes_auc: float | None = None
    challenger_auc: float | None = None
    challenger: lead_model.Challenger | None = None

    def score(self, lead: Mapping[str, str]) -> LeadScore:
        if self.challenger is not None:
            return LeadScore(self.challenger.probability(lead), self.challenger.reasons(lead))
        return score_lead(lead, self.counts, won=self.won, lost=self.lost)


class TooLittleHistory(ValueError):
    """Fewer decided leads of an outcome than MIN_PER_OUTCOME."""

    def __init__(self, won: int, lost: int) -> None:
        super().__init__(
            f"lead scoring needs {MIN_PER_OUTCOME} won and {MIN_PER_OUTCOME} lost leads; there are {won} and {lost}"
        )
        self.won, self.lost = won, lost


def _count(leads: Sequence[DecidedLead]) -> tuple[int, int, dict[str, dict[str, FieldCounts]]]:
    tally: dict[str, dict[str, list[int]]] = {name: {} for name in LEAD_FIELDS}
    for lead in leads:
        for name in LEAD_FIELDS:
            pair = tally[name].setdefault(lead.fields.get(name, ""), [0, 0])
            pair[0 if lead.won else 1] += 1
    won = sum(1 for lead in leads if lead.won)
    counts = {name: {v: FieldCounts(w, lo) for v, (w, lo) in values.items()} for name, values in tally.items()}
    return won, len(leads) - won, counts


def auc(scored: Sequence[tuple[float, bool]]) -> float | None:
    """The area under the ROC curve of (score, converted) pairs: the chance a converted lead scores
    above one that did not (ties count half); None without both outcomes."""
    positives = sum(1 for _, converted in scored if converted)
    negatives = len(scored) - positives
    if not positives or not negatives:
        return None
    ranked = sorted(scored, key=lambda pair: pair[0])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum += average_rank * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def train(leads: Sequence[DecidedLead]) -> LeadModel:
    """The naive Bayes model of every decided lead, with its holdout AUC: trained on the earlier
    (1 - HOLDOUT_SHARE) by when they were decided and tested on the rest, a time split, so the figure
    is what the model would have done on leads it had not seen. TooLittleHistory below the minimum."""
    won, lost, counts = _count(leads)
    if won < MIN_PER_OUTCOME or lost < MIN_PER_OUTCOME:
        raise TooLittleHistory(won, lost)
    ordered = sorted(leads, key=lambda lead: lead.decided_at)
    cut = len(ordered) - max(1, int(len(ordered) * HOLDOUT_SHARE))
    earlier, later = ordered[:cut], ordered[cut:]
    train_won, train_lost, train_counts = _count(earlier)
    holdout = None
    if train_won and train_lost:
        scored = [
            (score_lead(lead.fields, train_counts, won=train_won, lost=train_lost).probability, lead.won)
            for lead in later
        ]
        holdout = auc(scored)
    model = LeadModel(won, lost, counts, holdout, len(later), naive_bayes_auc=holdout)
    return _challenged(model, earlier, later, train_won, train_lost, leads)


def _challenged(
    model: LeadModel,
    earlier: Sequence[DecidedLead],
    later: Sequence[DecidedLead],
    train_won: int,
    train_lost: int,
    leads: Sequence[DecidedLead],
) -> LeadModel:
    """The model with the challenger's holdout AUC; the challenger serving when it beat naive Bayes
    there by MIN_AUC_GAIN with enough history (crm_reporting.lead_model)."""
    if not lead_model.enough(model.won, model.lost) or not (train_won and train_lost):
        return model
    trial = lead_model.fit([(lead.fields, lead.won) for lead in earlier])
    challenger_auc = auc([(trial.probability(lead.fields), lead.won) for lead in later])
    model = replace(model, challenger_auc=challenger_auc)
    if challenger_auc is None or model.naive_bayes_auc is None:
        return model
    if challenger_auc < model.naive_bayes_auc + lead_model.MIN_AUC_GAIN:
        return model
    serving = lead_model.fit([(lead.fields, lead.won) for lead in leads])
    return replace(model, kind="logistic_regression", holdout_auc=challenger_auc, challenger=serving)
