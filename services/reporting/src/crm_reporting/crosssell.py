"""Cross-sell and upsell: product affinities from what customers bought (issue 20). Pure: no I/O;
the queries read each buyer's products and this module learns the rules and picks suggestions.

Association rules over baskets, as market-basket analysis has done since Agrawal et al. (1993): a
basket is everything one buyer (a lead: a known person's returns touch their lead) ever bought,
one entry per product (its SKU). For products A and B:

- support(A→B) = buyers of both / all buyers;
- confidence(A→B) = buyers of both / buyers of A ("31 % of those who bought a sofa bought a rug");
- lift(A→B) = confidence / (buyers of B / all buyers): above 1, buying A makes B likelier than it
  is for anyone.

A rule is kept only with at least `MIN_PAIR_BUYERS` buyers of both (a rule from two people is an
anecdote), a lift above 1 (B is popular anyway says nothing about A), and a confidence of at
least `MIN_CONFIDENCE`. A customer's suggestions are the products they have not bought, each by its
strongest rule from a product they have (highest confidence, then lift), at most `MAX_SUGGESTIONS`.
Below `MIN_BUYERS` buyers the model says so rather than suggesting.

Cost: a basket of k products adds k·(k-1) pair counts, so baskets are capped at
`MAX_BASKET_PRODUCTS` (the most recent purchases): memory is the pairs seen, never the buyers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

MIN_BUYERS = 20
MIN_PAIR_BUYERS = 5
MIN_CONFIDENCE = 0.05
MAX_SUGGESTIONS = 5
MAX_BASKET_PRODUCTS = 50


class TooLittleHistory(Exception):
    def __init__(self, buyers: int) -> None:
        super().__init__(f"{buyers} buyers; the rules need at least {MIN_BUYERS}")
        self.buyers = buyers


@dataclass(frozen=True)
class Rule:
    """Buyers of `antecedent` also bought `consequent`."""

    antecedent: str
    consequent: str
    together: int
    antecedent_buyers: int
    consequent_buyers: int
    buyers: int

    @property
    def support(self) -> float:
        return self.together / self.buyers

    @property
    def confidence(self) -> float:
        return self.together / self.antecedent_buyers

    @property
    def lift(self) -> float:
        return self.confidence / (self.consequent_buyers / self.buyers)


@dataclass(frozen=True)
class Suggestion:
    rule: Rule
    # When the customer bought the rule's antecedent (their latest purchase of it).
    because_bought_at: datetime


@dataclass(frozen=True)
class Affinities:
    buyers: int
    # The product's latest name (a line's description) by SKU.
    names: Mapping[str, str]
    # Per antecedent, its rules strongest first.
    rules: Mapping[str, Sequence[Rule]]

    @property
    def rule_count(self) -> int:
        return sum(len(found) for found in self.rules.values())

    def suggest(self, owned: Mapping[str, datetime], limit: int | None = MAX_SUGGESTIONS) -> list[Suggestion]:
        """The products not in `owned` (SKU → when last bought), each by its strongest rule from an
        owned product; strongest first (all of them with `limit` None)."""
        best: dict[str, Suggestion] = {}
        for sku, bought_at in owned.items():
            for rule in self.rules.get(sku, ()):
                if rule.consequent in owned:
                    continue
                held = best.get(rule.consequent)
                if held is None or _strength(rule) > _strength(held.rule):
                    best[rule.consequent] = Suggestion(rule, bought_at)
        return sorted(best.values(), key=lambda s: (_strength(s.rule), s.rule.consequent), reverse=True)[:limit]


def _strength(rule: Rule) -> tuple[float, float, int]:
    return (rule.confidence, rule.lift, rule.together)


@dataclass(frozen=True)
class Purchase:
    """One buyer's product: its SKU, name and when they last bought it."""

    buyer: str
    sku: str
    name: str
    at: datetime


def learn(purchases: Iterable[Purchase]) -> Affinities:
    """The rules from every buyer's products; TooLittleHistory below `MIN_BUYERS` buyers."""
    baskets: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    names: dict[str, tuple[datetime, str]] = {}
    for p in purchases:
        if not p.sku:
            continue
        baskets[p.buyer].append((p.at, p.sku))
        if p.name and (p.sku not in names or names[p.sku][0] <= p.at):
            names[p.sku] = (p.at, p.name)
    if len(baskets) < MIN_BUYERS:
        raise TooLittleHistory(len(baskets))
    singles: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for bought in baskets.values():
        products = list(dict.fromkeys(sku for _, sku in sorted(bought, reverse=True)))[:MAX_BASKET_PRODUCTS]
        singles.update(products)
        pairs.update((a, b) for a in products for b in products if a != b)
    found: dict[str, list[Rule]] = defaultdict(list)
    for (a, b), together in pairs.items():
        if together < MIN_PAIR_BUYERS:
            continue
        rule = Rule(a, b, together, singles[a], singles[b], len(baskets))
        if rule.lift > 1 and rule.confidence >= MIN_CONFIDENCE:
            found[a].append(rule)
    for rules in found.values():
        rules.sort(key=_strength, reverse=True)
    return Affinities(len(baskets), {sku: name for sku, (_, name) in names.items()}, dict(found))
