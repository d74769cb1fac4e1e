"""Sales domain rules: a deal's life (open → won or lost) and what a close must carry. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from crm_kit.errors import FailedPrecondition, InvalidArgument

TITLE_MAX = 200


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class NewDeal:
    """A deal to open, with the facts of the converted lead it starts from."""

    deal_id: str
    lead_id: str
    title: str
    owner_rep_id: str
    owner_team_id: str
    source: str
    campaign: str
    # Since when lead_id is its lead (None: now).
    lead_since: datetime | None = None


@dataclass(frozen=True)
class Item:
    sku: str
    description: str
    quantity: int
    unit_price_minor: int
    currency_code: str


def validate_new_deal(deal: NewDeal) -> NewDeal:
    """The deal to open, its title trimmed to the column; INVALID_ARGUMENT names missing ids."""
    violations = [(name, "is required") for name in ("deal_id", "lead_id") if not getattr(deal, name).strip()]
    if not deal.title.strip():
        violations.append(("title", "is required"))
    if violations:
        raise InvalidArgument("invalid deal", field_violations=violations)
    return NewDeal(
        deal_id=deal.deal_id.strip(),
        lead_id=deal.lead_id.strip(),
        title=deal.title.strip()[:TITLE_MAX],
        owner_rep_id=deal.owner_rep_id,
        owner_team_id=deal.owner_team_id,
        source=deal.source,
        campaign=deal.campaign,
        lead_since=deal.lead_since,
    )


class MergeOrder(StrEnum):
    """Where a LeadsMerged stands against the deal's lead (move_deal_to_lead)."""

    APPLY = "apply"  # the deal is on the merged lead: move it
    DONE = "done"  # the deal's lead was set at or after the merge: already in it
    WAIT = "wait"  # an earlier merge (or the deal's opening) has not been applied yet


def merge_order(
    *, deal_lead: str | None, deal_lead_since: datetime | None, merged_lead: str, merged_at: datetime
) -> MergeOrder:
    """Merges can arrive out of order (a held event is retried while later ones go on, replicas):
    a merge moves the deal only from the lead it merged away, and one older than the deal's lead is
    already reflected in it (a copy from leads, or a later open)."""
    if deal_lead == merged_lead:
        return MergeOrder.APPLY
    if deal_lead is not None and deal_lead_since is not None and merged_at <= deal_lead_since:
        return MergeOrder.DONE
    return MergeOrder.WAIT


def _item_violations(i: int, item: Item) -> list[tuple[str, str]]:
    violations: list[tuple[str, str]] = []
    if not item.sku.strip():
        violations.append((f"items[{i}].sku", "is required"))
    if item.quantity < 1:
        violations.append((f"items[{i}].quantity", "must be at least 1"))
    if item.unit_price_minor < 0:
        violations.append((f"items[{i}].unit_price.amount_minor", "must not be negative"))
    if len(item.currency_code) != 3 or not item.currency_code.isalpha():
        violations.append((f"items[{i}].unit_price.currency_code", "must be an ISO 4217 code"))
    return violations


def validate_close(status: DealStatus, won: bool, items: list[Item]) -> tuple[int, str]:
    """Check a close is allowed; returns the total (minor units, currency) of a won deal."""
    if status is not DealStatus.OPEN:
        raise FailedPrecondition(f"deal is already {status.value}", reason="DEAL_ALREADY_CLOSED")
    if not won:
        return 0, ""
    if not items:
        raise InvalidArgument("a won deal needs its line items", field_violations=[("items", "at least one item")])
    violations = [v for i, item in enumerate(items) for v in _item_violations(i, item)]
    currencies = {item.currency_code.upper() for item in items}
    if len(currencies) > 1:
        violations.append(("items", "all items must share one currency"))
    if violations:
        raise InvalidArgument("invalid line items", field_violations=violations)
    return sum(i.quantity * i.unit_price_minor for i in items), currencies.pop()


def clean_item(item: Item) -> Item:
    """An item as stored and published: trimmed text, upper-case currency."""
    return Item(
        sku=item.sku.strip(),
        description=item.description.strip(),
        quantity=item.quantity,
        unit_price_minor=item.unit_price_minor,
        currency_code=item.currency_code.upper(),
    )
