"""Reporting rules: report periods, speed-to-lead, deal totals and the per-source report. Pure, no I/O.

Attribution: a lead counts for the source it was captured from, in the period that contains
its capture time. A deal counts for the source carried on its DealClosed event (the lead's
source, denormalised by leads at close time), or failing that the source of its lead's
facts, in the period that contains its close time. The two are independent period
activity, not a cohort: a lead captured in March and won in April is a March lead and an
April win. A deal whose source is unknown is reported under `unknown`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from crm_kit.errors import InvalidArgument

UNKNOWN_SOURCE = "unknown"


@dataclass(frozen=True)
class Period:
    """A half-open period [start, end); None on either side means unbounded."""

    start: datetime | None = None
    end: datetime | None = None


def validate_period(start: datetime | None, end: datetime | None) -> Period:
    """The report period; a start after the end is the caller's mistake."""
    if start is not None and end is not None and start > end:
        raise InvalidArgument(
            "start_time must not be after end_time",
            reason="INVALID_PERIOD",
            field_violations=[("start_time", "must not be after end_time")],
        )
    return Period(start, end)


def speed_to_assign_seconds(captured_at: datetime | None, assigned_at: datetime | None) -> float | None:
    """Seconds from capture to assignment once both are known, else None."""
    if captured_at is None or assigned_at is None:
        return None
    # Producers' clocks may disagree by a little; a lead is never assigned before it exists.
    return max(0.0, (assigned_at - captured_at).total_seconds())


class MixedCurrencies(ValueError):
    """A deal without a total whose items are priced in more than one currency."""


@dataclass(frozen=True)
class ItemAmount:
    quantity: int
    unit_price_minor: int
    currency_code: str


def deal_total(total_minor: int, total_currency: str, items: Sequence[ItemAmount]) -> tuple[int, str]:
    """The deal's value (minor units, currency): its stated total, else the sum of its items."""
    if total_currency:
        return total_minor, total_currency.upper()
    if not items:
        return 0, ""
    currencies = {item.currency_code.upper() for item in items}
    if len(currencies) > 1:
        raise MixedCurrencies(f"items are priced in {', '.join(sorted(currencies))}")
    return sum(item.quantity * item.unit_price_minor for item in items), currencies.pop()


@dataclass(frozen=True)
class DealAggregate:
    """Deals of one source, outcome and currency closed in the period."""

    source: str
    won: bool
    currency_code: str
    deals: int
    total_minor: int


@dataclass(frozen=True)
class TicketAggregate:
    """Tickets opened in the period by customers acquired from one source, complaints or not."""

    source: str
    complaint: bool
    tickets: int


@dataclass
class SourceRow:
    source: str
    leads: int = 0
    won_deals: int = 0
    lost_deals: int = 0
    revenue: dict[str, int] = field(default_factory=dict)
    # Tickets (and of them complaints) opened in the period by the source's customers.
    tickets: int = 0
    complaints: int = 0

    def revenue_by_currency(self) -> list[tuple[str, int]]:
        """Revenue as (currency, minor units), sorted by currency code."""
        return sorted(self.revenue.items())


def build_source_report(
    lead_counts: Mapping[str, int], deals: Iterable[DealAggregate], tickets: Iterable[TicketAggregate] = ()
) -> list[SourceRow]:
    """One row per source with leads, deals or tickets, sorted by source; revenue counts won deals
    only. A ticket counts for the source of the lead that made its customer (`unknown` for a
    customer made without a lead, or one reporting has not heard of yet)."""
    rows: dict[str, SourceRow] = {}

    def row(source: str) -> SourceRow:
        key = source or UNKNOWN_SOURCE
        return rows.setdefault(key, SourceRow(key))

    for source, count in lead_counts.items():
        if count:
            row(source).leads += count
    for deal in deals:
        if not deal.deals:
            continue
        target = row(deal.source)
        if not deal.won:
            target.lost_deals += deal.deals
            continue
        target.won_deals += deal.deals
        if deal.currency_code:
            target.revenue[deal.currency_code] = target.revenue.get(deal.currency_code, 0) + deal.total_minor
    for aggregate in tickets:
        if aggregate.tickets:
            target = row(aggregate.source)
            target.tickets += aggregate.tickets
            target.complaints += aggregate.tickets if aggregate.complaint else 0
    return [rows[source] for source in sorted(rows)]


# ---------------------------------------------------------------- campaigns: cost and return
#
# A campaign's cost is its whole actual cost (CampaignChanged), whatever the report period; its
# leads, won deals and revenue are those of the period, attributed through the lead's campaign id
# (a deal belongs to the campaign of its lead).


@dataclass
class CampaignRow:
    campaign_id: str
    source: str
    name: str
    budget_minor: int = 0
    cost_minor: int = 0
    currency_code: str = ""
    leads: int = 0
    won_deals: int = 0
    lost_deals: int = 0
    revenue: dict[str, int] = field(default_factory=dict)

    def revenue_by_currency(self) -> list[tuple[str, int]]:
        return sorted(self.revenue.items())

    def cost_per_lead_minor(self) -> int | None:
        """The cost divided by the leads, rounded half up; None without leads or cost."""
        if not self.leads or not self.cost_minor:
            return None
        return (2 * self.cost_minor + self.leads) // (2 * self.leads)

    def return_on_cost(self) -> float:
        """Revenue in the cost's currency per unit of cost; 0 without a cost."""
        if not self.cost_minor or not self.currency_code:
            return 0.0
        return self.revenue.get(self.currency_code, 0) / self.cost_minor


def add_deals(rows: Mapping[str, CampaignRow], campaign_id: str, deal: DealAggregate) -> None:
    """Count a campaign's deals of one outcome and currency into its row (if it has one)."""
    row = rows.get(campaign_id)
    if row is None or not deal.deals:
        return
    if not deal.won:
        row.lost_deals += deal.deals
        return
    row.won_deals += deal.deals
    if deal.currency_code:
        row.revenue[deal.currency_code] = row.revenue.get(deal.currency_code, 0) + deal.total_minor
