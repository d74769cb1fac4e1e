"""Customer value (issue 20): RFM quintile scores with their named segment, and lifetime value.
Pure: the store reads the figures, this module scores them.

- **Edges**: the quintile cut points of every buyer's recency (days since the last purchase),
  frequency (won deals) and monetary value (their sum), read in one statement and kept for a while
  (the `Retrained` cache): a customer's score is 1 + the number of cut points their figure is above
  (recency the other way: the most recent fifth scores 5), so one customer is scored without
  ranking everyone again. Ties at a cut point score the lower quintile.
- **Segment**: crm_reporting.scoring's table on R and the mean of F and M.
- **Lifetime value**: what the customer has bought to date (won deals, minor units, every currency
  summed as one: a company sells in one), and per year since their first purchase (at least one
  month counted). A predicted, discounted future value is not built: it needs a purchase model
  the history does not support yet.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from crm_reporting.scoring import Rfm

# Fewer buyers than this: no quintiles (five buyers cannot make five meaningful fifths).
MIN_BUYERS = 20
MIN_YEARS = 1 / 12


class TooFewBuyers(Exception):
    """Too few buyers to cut quintiles; the message says how many there are. `currency` is what
    amounts are shown in meanwhile."""

    def __init__(self, message: str, currency: str = "") -> None:
        super().__init__(message)
        self.currency = currency


@dataclass(frozen=True)
class Edges:
    """The four quintile cut points of each figure, ascending."""

    recency_days: tuple[float, ...]
    frequency: tuple[float, ...]
    monetary: tuple[float, ...]
    buyers: int
    # The most common currency of won deals: what amounts are shown in.
    currency: str = ""


def edges(
    buyers: int, recency: Sequence[float], frequency: Sequence[float], monetary: Sequence[float], currency: str
) -> Edges:
    """Edges from all buyers' quintile cut points; TooFewBuyers below MIN_BUYERS."""
    if buyers < MIN_BUYERS:
        raise TooFewBuyers(f"{buyers} buyers; customer value needs {MIN_BUYERS}", currency)
    return Edges(tuple(recency), tuple(frequency), tuple(monetary), buyers, currency)


def _above(value: float, cuts: Sequence[float]) -> int:
    """1 + how many cut points value is above (a value at a cut point is in the lower fifth)."""
    return 1 + bisect_left(cuts, value)


@dataclass(frozen=True)
class CustomerValue:
    rfm: Rfm
    recency_days: int
    purchases: int
    value_minor: int
    first_purchase: datetime
    last_purchase: datetime
    yearly_value_minor: int

    @property
    def segment(self) -> str:
        return self.rfm.segment


def score(
    e: Edges, *, now: datetime, first_purchase: datetime, last_purchase: datetime, purchases: int, value_minor: int
) -> CustomerValue:
    days = max(0, (now - last_purchase).days)
    recency = 6 - _above(days, e.recency_days)
    rfm = Rfm(recency, _above(purchases, e.frequency), _above(value_minor, e.monetary))
    years = max((now - first_purchase).days / 365.25, MIN_YEARS)
    return CustomerValue(
        rfm=rfm,
        recency_days=days,
        purchases=purchases,
        value_minor=value_minor,
        first_purchase=first_purchase,
        last_purchase=last_purchase,
        yearly_value_minor=round(value_minor / years),
    )
