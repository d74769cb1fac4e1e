"""Customer value and lead scoring rules (issue 20). Pure: no I/O; the queries compute the inputs
(the quintiles in PostgreSQL with NTILE, the counts per field value) and this module turns them
into what a person reads.

- **RFM segments**: recency, frequency and monetary scores of 1 to 5 (quintiles: 5 is the most
  recent, most frequent, highest-spending fifth) named by the usual segment table, read in order
  (the first rule that matches wins) on R and the mean of F and M.
- **Lead scoring, explainable**: naive Bayes per field, as Odoo's predictive lead scoring does — the
  probability a new lead converts from the conversion rate of each of its field values among
  decided leads (won or lost), Laplace-smoothed, and each field's reason (how much its value moves
  the odds). It starts here because it needs little data and says why; a stronger model replaces
  it only when a time-split holdout shows it better (not built yet).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
