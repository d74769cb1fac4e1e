"""Attribution: how much of a conversion (a won deal, its revenue) each touch on the way earned.
Pure: no I/O; the report builder feeds it the journeys it reads from the fact tables.

A journey is the touches of one lead in time order (captures and returns by source and campaign,
promotion messages and clicks), whether it converted, and the milestones that the position-based
models weigh (the touch that created the lead, the one before the deal was opened). Every model
gives each journey's conversion a credit of exactly 1 split over its touches' channels (a channel
is whatever the report groups by: a source, a campaign, "promotion:<id>").

Rule-based models (what Salesforce's and Dynamics' marketing analytics offer, and Bizible before
them):

- ``first`` / ``last``: all to the first / the last touch.
- ``linear``: equal shares.
- ``u_shaped``: 40 % to the first touch, 40 % to the lead-creation touch (the last touch when the
  first created the lead), 20 % shared by the rest (one touch: all; two: half each).
- ``w_shaped``: 30 % each to the first, lead-creation and opportunity-creation touches, 10 % shared
  by the rest; milestones that fall on one touch add up.
- ``full_path``: 22.5 % each to the first, lead-creation, opportunity-creation and last touches
  (the one before the win), 10 % shared by the rest.
- ``time_decay``: a touch's weight halves every ``half_life_days`` before the conversion.

Data-driven: ``markov`` — the removal effect of a first-order Markov chain over every journey,
converted or not (Anderl et al. 2016, "Mapping the customer journey"): the chain's conversion
probability from the start, and again with each channel removed (its transitions go to "null");
each channel's credit is its share of the summed removal effects, times the conversions. It needs
both converting and non-converting journeys; with too few (``MIN_MARKOV_JOURNEYS``) it says so
rather than inventing figures.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

RULE_MODELS = ("first", "last", "linear", "u_shaped", "w_shaped", "full_path", "time_decay")
MODELS = (*RULE_MODELS, "markov")
DEFAULT_HALF_LIFE_DAYS = 7.0
MIN_MARKOV_JOURNEYS = 30
START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


@dataclass(frozen=True)
class Touch:
    channel: str
    at: datetime


@dataclass(frozen=True)
class Journey:
    """One lead's touches in time order, and whether (and when) it converted. `lead_index` and
    `opportunity_index` name the milestone touches (default: the first and the last)."""

    touches: tuple[Touch, ...]
    converted_at: datetime | None = None
    value: float = 1.0
    lead_index: int | None = None
    opportunity_index: int | None = None


class TooLittleData(ValueError):
    """The data-driven model cannot be fitted to so few journeys; the rule-based ones still answer."""


def _weights(model: str, journey: Journey, half_life_days: float) -> list[float]:
    n = len(journey.touches)
    if n == 1:
        return [1.0]
    lead = journey.lead_index if journey.lead_index is not None else 0
    opportunity = journey.opportunity_index if journey.opportunity_index is not None else n - 1
    if model == "first":
        return [1.0] + [0.0] * (n - 1)
    if model == "last":
        return [0.0] * (n - 1) + [1.0]
    if model == "linear":
        return [1.0 / n] * n
    if model == "time_decay":
        return _time_decay(journey, half_life_days)
    shares = {
        "u_shaped": ((0, 0.4), (lead if lead != 0 else n - 1, 0.4)),
        "w_shaped": ((0, 0.3), (lead, 0.3), (opportunity, 0.3)),
        "full_path": ((0, 0.225), (lead, 0.225), (opportunity, 0.225), (n - 1, 0.225)),
    }[model]
    return _positions(n, shares)


def _positions(n: int, shares: Sequence[tuple[int, float]]) -> list[float]:
    """Fixed shares to milestone positions (added where they coincide); the rest split evenly over
    the other touches, or, when every touch is a milestone, over the milestones in proportion."""
    weights = [0.0] * n
    for index, share in shares:
        weights[min(max(index, 0), n - 1)] += share
    milestones = {i for i, w in enumerate(weights) if w}
    others = [i for i in range(n) if i not in milestones]
    rest = 1.0 - sum(weights)
    if others:
        for i in others:
            weights[i] += rest / len(others)
    else:
        total = sum(weights)
        weights = [w / total for w in weights]
    return weights


def _time_decay(journey: Journey, half_life_days: float) -> list[float]:
    end = journey.converted_at or journey.touches[-1].at
    raw = [0.5 ** (max((end - t.at).total_seconds(), 0.0) / 86_400 / half_life_days) for t in journey.touches]
    total = sum(raw)
    return [w / total for w in raw]


def rule_credit(
    model: str, journeys: Sequence[Journey], *, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> dict[str, float]:
    """Each channel's share of the converted journeys' value under a rule-based model."""
    if model not in RULE_MODELS:
        raise ValueError(f"unknown rule-based model {model!r}; one of {', '.join(RULE_MODELS)}")
    if half_life_days <= 0:
        raise ValueError("half_life_days must be above 0")
    credit: dict[str, float] = defaultdict(float)
    for journey in journeys:
        if journey.converted_at is None or not journey.touches:
            continue
        for touch, weight in zip(journey.touches, _weights(model, journey, half_life_days), strict=True):
            if weight:
                credit[touch.channel] += weight * journey.value
    return dict(credit)


@dataclass
class _Chain:
    """Transition counts between states (channels, start, conversion, null)."""

    counts: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))

    def add(self, journey: Journey) -> None:
        path = [START, *(t.channel for t in journey.touches), CONVERSION if journey.converted_at else NULL]
        for here, there in itertools.pairwise(path):
            self.counts[here][there] += 1

    def conversion_probability(self, removed: str | None = None, sweeps: int = 500) -> float:
        """The probability of reaching the conversion from the start (value iteration over the
        absorbing chain); a removed channel leads nowhere (its transitions go to null)."""
        p: dict[str, float] = defaultdict(float)
        p[CONVERSION] = 1.0
        states = [s for s in self.counts if s != removed]
        for _ in range(sweeps):
            moved = 0.0
            for state in states:
                out = self.counts[state]
                total = sum(out.values())
                value = sum(n * (0.0 if nxt == removed else p[nxt]) for nxt, n in out.items()) / total if total else 0.0
                moved = max(moved, abs(value - p[state]))
                p[state] = value
            if moved < 1e-12:
                break
        return p[START]


def markov_credit(journeys: Sequence[Journey]) -> dict[str, float]:
    """Each channel's share of the converted journeys' value by its removal effect; TooLittleData
    below MIN_MARKOV_JOURNEYS journeys or without both outcomes."""
    usable = [j for j in journeys if j.touches]
    converted = [j for j in usable if j.converted_at is not None]
    if len(usable) < MIN_MARKOV_JOURNEYS or not converted or len(converted) == len(usable):
        raise TooLittleData(
            f"the data-driven model needs at least {MIN_MARKOV_JOURNEYS} journeys, converted and not "
            f"({len(usable)} journeys, {len(converted)} converted): use a rule-based model"
        )
    chain = _Chain()
    for journey in usable:
        chain.add(journey)
    base = chain.conversion_probability()
    channels = sorted({t.channel for j in usable for t in j.touches})
    effects = {c: max(0.0, 1.0 - chain.conversion_probability(removed=c) / base) if base else 0.0 for c in channels}
    total_effect = sum(effects.values())
    value = sum(j.value for j in converted)
    if not total_effect:
        return {c: value / len(channels) for c in channels}
    return {c: value * e / total_effect for c, e in effects.items() if e}


def credit(
    model: str, journeys: Sequence[Journey], *, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> dict[str, float]:
    """Each channel's share of the converted journeys' value under `model` (see MODELS)."""
    if model == "markov":
        return markov_credit(journeys)
    return rule_credit(model, journeys, half_life_days=half_life_days)


def compare(
    models: Sequence[str], journeys: Sequence[Journey], *, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> dict[str, dict[str, float] | str]:
    """Several models side by side: each model's credit per channel, or why it has none (the
    data-driven model with too little data)."""
    found: dict[str, dict[str, float] | str] = {}
    for model in models:
        try:
            found[model] = credit(model, journeys, half_life_days=half_life_days)
        except TooLittleData as exc:
            found[model] = str(exc)
    return found


@dataclass(frozen=True)
class ChannelCredit:
    deals: float
    # Revenue credited per currency (minor units).
    revenue: dict[str, float]


def credit_by_channel(
    model: str, journeys: Sequence[tuple[Journey, str]], *, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> dict[str, ChannelCredit]:
    """Under `model`: each channel's credited won deals (each worth 1) and revenue per currency
    (each deal its value in its currency). `journeys` are (journey, its deal's currency); the
    journeys that did not convert only inform the data-driven model."""
    lost = [j for j, _ in journeys if j.converted_at is None]
    won = [(j, currency) for j, currency in journeys if j.converted_at is not None]
    deals = credit(model, [replace(j, value=1.0) for j, _ in won] + lost, half_life_days=half_life_days)
    revenue: dict[str, dict[str, float]] = defaultdict(dict)
    for currency in sorted({c for _, c in won}):
        mine = [j for j, c in won if c == currency]
        for channel, amount in credit(model, mine + lost, half_life_days=half_life_days).items():
            revenue[channel][currency] = amount
    return {
        channel: ChannelCredit(deals.get(channel, 0.0), revenue.get(channel, {}))
        for channel in sorted(set(deals) | set(revenue))
    }
