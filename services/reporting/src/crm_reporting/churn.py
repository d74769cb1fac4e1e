"""At-risk customers and retention call lists (issue 20). Pure: no I/O; the queries read each
customer's signals as of a moment and this module turns them into a risk with its reasons, and a
list into its call and control groups.

**The risk, by rules** (what every score falls back to, and what serves until a learned model
has the history it needs): points for each signal the brief names, out of 100 —

| signal | points |
|---|---|
| no purchase for over a year / over 180 days | 35 / 20 |
| purchases in the last 180 days below half the customer's own earlier rate (per 180 days) | 20 |
| amount in the last 180 days below half the customer's own earlier rate | 10 |
| complaints opened in the last 90 days (the first, then 5 each, at most 25) | 15–25 |
| tickets that breached their SLA in the last 90 days | 10 |
| marketing consent withdrawn (the latest change on a channel) | 10 |
| no contact (purchase, ticket, return, message) for 90 days | 10 |
| a deal lost in the last 180 days | 10 |

The risk is points / 100, at most 1; bands: low below 0.3, medium below 0.6, high from 0.6. The
reasons are the signals that scored, largest first. Only customers who bought at least once have
a risk: one who never bought has not churned from anything.

**A list**: the customers at or above a threshold, highest risk first, up to a size. A share of
them (the control group) is held out at random — never called — so what the list brought is
measured against what the same kind of customers did uncalled. The rest go to their owner when the
owner is among the list's reps, else round robin over the reps.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

RECENT_DAYS = 180
TICKET_DAYS = 90
NO_CONTACT_DAYS = 90
LOW, HIGH = 0.3, 0.6


class Band(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def band(risk: float) -> Band:
    return Band.HIGH if risk >= HIGH else Band.MEDIUM if risk >= LOW else Band.LOW


@dataclass(frozen=True)
class Signals:
    """One customer's facts as of a moment (days are whole days before it)."""

    days_since_purchase: int | None
    # Won deals and their amount (in the customer's main currency, minor units) in the last 180
    # days, and per 180 days over the history before them (0 when none).
    purchases_recent: int
    purchase_rate_before: float
    amount_recent: int
    amount_rate_before: float
    complaints_recent: int
    breached_recent: int
    opted_out: bool
    days_since_contact: int | None
    lost_recent: int


@dataclass(frozen=True)
class Reason:
    signal: str
    points: int
    # The figure behind it (days, count), shown beside the reason.
    value: float


@dataclass(frozen=True)
class Risk:
    risk: float
    band: Band
    reasons: tuple[Reason, ...]


def _falling(recent: float, rate_before: float) -> bool:
    return rate_before > 0 and recent < rate_before / 2


def _buying(s: Signals, days: int) -> list[Reason]:
    """What the customer's purchases say: silence, and falling against their own history."""
    found: list[Reason] = []
    if days > 365:
        found.append(Reason("no_purchase", 35, days))
    elif days > RECENT_DAYS:
        found.append(Reason("no_purchase", 20, days))
    if _falling(s.purchases_recent, s.purchase_rate_before):
        found.append(Reason("fewer_purchases", 20, s.purchases_recent))
    if _falling(s.amount_recent, s.amount_rate_before):
        found.append(Reason("smaller_purchases", 10, s.amount_recent))
    if s.lost_recent:
        found.append(Reason("lost_deals", 10, s.lost_recent))
    return found


def _relationship(s: Signals) -> list[Reason]:
    """What the service desk, consent and contact say."""
    found: list[Reason] = []
    if s.complaints_recent:
        found.append(Reason("complaints", min(25, 15 + 5 * (s.complaints_recent - 1)), s.complaints_recent))
    if s.breached_recent:
        found.append(Reason("sla_breaches", 10, s.breached_recent))
    if s.opted_out:
        found.append(Reason("opted_out", 10, 1))
    if s.days_since_contact is not None and s.days_since_contact >= NO_CONTACT_DAYS:
        found.append(Reason("no_contact", 10, s.days_since_contact))
    return found


def rule_risk(s: Signals) -> Risk | None:
    """The rule-based risk and its reasons; None for a customer who never bought."""
    if s.days_since_purchase is None:
        return None
    found = sorted([*_buying(s, s.days_since_purchase), *_relationship(s)], key=lambda r: (-r.points, r.signal))
    risk = min(100, sum(r.points for r in found)) / 100
    return Risk(risk, band(risk), tuple(found))


def suggested_offer(reasons: Sequence[Reason], cross_sell_sku: str = "") -> str:
    """What the caller offers: the service put right after complaints or breaches; else the
    product the customer's purchases suggest; else a win-back offer after a long silence; else a
    loyalty check-in."""
    signals = {r.signal for r in reasons}
    if signals & {"complaints", "sla_breaches"}:
        return "service_recovery"
    if cross_sell_sku:
        return f"cross_sell:{cross_sell_sku}"
    if "no_purchase" in signals:
        return "win_back_discount"
    return "loyalty_check_in"


@dataclass(frozen=True)
class Candidate:
    customer_id: str
    owner_rep_id: str
    risk: float


@dataclass(frozen=True)
class Entry:
    customer_id: str
    control: bool
    rep_id: str


def split(candidates: Sequence[Candidate], *, control_share: float, reps: Sequence[str], seed: str) -> list[Entry]:
    """The call and control groups: a random `control_share` of the candidates (at least one when
    there are two or more and the share is above 0) is held out; each of the rest goes to their
    owner when the owner is one of `reps`, else to the next of `reps` in turn (sorted, so the turn
    is the same for the same list). `seed` (the list's id) makes the draw repeatable."""
    shuffled = list(candidates)
    random.Random(seed).shuffle(shuffled)
    held = round(len(shuffled) * control_share)
    if control_share > 0 and held == 0 and len(shuffled) >= 2:
        held = 1
    control = {c.customer_id for c in shuffled[:held]}
    ordered_reps = sorted(set(reps))
    known = set(ordered_reps)
    entries: list[Entry] = []
    turn = 0
    for c in candidates:
        if c.customer_id in control:
            entries.append(Entry(c.customer_id, True, ""))
        elif c.owner_rep_id in known:
            entries.append(Entry(c.customer_id, False, c.owner_rep_id))
        elif ordered_reps:
            entries.append(Entry(c.customer_id, False, ordered_reps[turn % len(ordered_reps)]))
            turn += 1
        else:
            entries.append(Entry(c.customer_id, False, ""))
    return entries


# ---------------------------------------------------------------- band changes (CustomerAtRisk)


@dataclass(frozen=True)
class BandChange:
    customer_id: str
    band: Band
    # "" the first time the customer is scored.
    previous: str
    risk: Risk


def band_changes(
    previous: Mapping[str, str], scored: Iterable[tuple[str, Risk]]
) -> tuple[list[tuple[str, str, float]], list[BandChange]]:
    """What the scheduled scoring keeps and publishes: the (customer, band, risk) whose band is new
    or changed since the last scoring, and a change for each — except a customer scored for the
    first time in the low band, kept quietly (nothing to warn about)."""
    keep: list[tuple[str, str, float]] = []
    changes: list[BandChange] = []
    for customer_id, risk in scored:
        before = previous.get(customer_id, "")
        if before == risk.band.value:
            continue
        keep.append((customer_id, risk.band.value, risk.risk))
        if before or risk.band != Band.LOW:
            changes.append(BandChange(customer_id, risk.band, before, risk))
    return keep, changes
