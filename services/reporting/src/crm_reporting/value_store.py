"""Figures of customer value (crm_reporting.value scores them): each buyer's last purchase, won
deals and their sum through the customer's acquiring lead (as the at-risk signals read them), the
quintile cut points of all buyers in one statement, and the most common currency of won deals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from crm_kit.db import UnitOfWork

_BUYERS = """
SELECT c.customer_id, min(d.closed_at) AS first_purchase, max(d.closed_at) AS last_purchase,
       count(*) AS purchases, sum(d.total_minor) AS value_minor
FROM customer_facts c
JOIN deal_facts d ON d.lead_id = c.lead_id AND d.won
{reach}
GROUP BY c.customer_id
"""
_EDGES = text(
    f"""
WITH buyers AS ({_BUYERS.format(reach="")})
SELECT count(*) AS buyers,
       percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (
           ORDER BY floor(extract(epoch FROM CAST(:now AS timestamptz) - last_purchase) / 86400)) AS recency,
       percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY purchases) AS frequency,
       percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY value_minor) AS monetary,
       (SELECT mode() WITHIN GROUP (ORDER BY currency_code) FROM deal_facts WHERE won) AS currency
FROM buyers
"""
)
_ONE = text(
    """
SELECT min(d.closed_at) AS first_purchase, max(d.closed_at) AS last_purchase, count(*) AS purchases,
       coalesce(sum(d.total_minor), 0) AS value_minor
FROM customer_facts c JOIN deal_facts d ON d.lead_id = c.lead_id AND d.won
WHERE c.customer_id = :customer_id
"""
)
# Every buyer within a reach (their acquiring lead's current owner: a rep's, a team's; none: everyone's).
_IN_REACH = text(
    _BUYERS.format(
        reach="""LEFT JOIN lead_facts l ON l.lead_id = c.lead_id
WHERE (CAST(:rep_id AS text) IS NULL OR l.owner_rep_id = :rep_id)
  AND (CAST(:team_id AS text) IS NULL OR l.owner_team_id = :team_id)"""
    )
)


@dataclass(frozen=True)
class Found:
    """What the cut points are learned from, and the currency amounts are shown in."""

    buyers: int
    recency: list[float]
    frequency: list[float]
    monetary: list[float]
    currency: str


async def edges(uow: UnitOfWork, now: datetime) -> Found:
    row = (await uow.conn.execute(_EDGES, {"now": now})).one()
    return Found(
        row.buyers, list(row.recency or []), list(row.frequency or []), list(row.monetary or []), row.currency or ""
    )


async def one(uow: UnitOfWork, customer_id: str) -> Any:
    """The customer's first and last purchase, purchases and value (purchases 0: never bought)."""
    return (await uow.conn.execute(_ONE, {"customer_id": customer_id})).one()


async def in_reach(uow: UnitOfWork, *, rep_id: str, team_id: str) -> list[Any]:
    return list(await uow.conn.execute(_IN_REACH, {"rep_id": rep_id or None, "team_id": team_id or None}))
